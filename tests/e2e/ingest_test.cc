// URL inputs, fetched from a small HTTP server that the test runs on
// 127.0.0.1: ingest and transform tasks, address blocking without an
// allow-list (also after redirects), scheme checks, and POST /files with a
// url (waiting, then ready).
#include <atomic>
#include <thread>

#include "e2e_test.h"

namespace bitmill::e2e {
namespace {

// An httplib::Server on a free port of `host`, serving in a background
// thread until destruction.
class LocalHttpServer {
public:
    explicit LocalHttpServer(const std::string& host) : host_(host) {}
    ~LocalHttpServer() {
        server_.stop();
        if (thread_.joinable()) {
            thread_.join();
        }
    }

    httplib::Server& routes() { return server_; }

    void start() {
        port_ = server_.bind_to_any_port(host_);
        if (port_ <= 0) {
            throw std::runtime_error("cannot bind a test HTTP server on " + host_);
        }
        thread_ = std::thread([this] { server_.listen_after_bind(); });
        // The socket is bound already, so requests queue up even before
        // is_running() turns true; waiting just keeps startup ordered.
        while (!server_.is_running()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }

    std::string url(const std::string& path) const {
        return "http://" + host_ + ":" + std::to_string(port_) + path;
    }

private:
    std::string host_;
    httplib::Server server_;
    std::thread thread_;
    int port_ = 0;
};

class IngestTest : public E2eTest {
protected:
    void SetUp() override {
        VideoSpec spec;
        spec.seconds = 1;
        clip_ = makeVideo(spec);
        clip_bytes_ = readFileBytes(clip_);

        auto& routes = origin_.routes();
        routes.Get("/media/clip.mp4", [this](const httplib::Request&, httplib::Response& res) {
            ++clip_requests_;
            res.set_content(clip_bytes_, "video/mp4");
        });
        routes.Get("/slow/clip.mp4", [this](const httplib::Request&, httplib::Response& res) {
            ++clip_requests_;
            std::this_thread::sleep_for(std::chrono::milliseconds(1500));
            res.set_content(clip_bytes_, "video/mp4");
        });
        routes.Get("/redirect", [](const httplib::Request&, httplib::Response& res) {
            res.set_redirect("/media/clip.mp4", 302);
        });
        routes.Get("/redirect-out", [this](const httplib::Request&, httplib::Response& res) {
            res.set_redirect(other_.url("/media/clip.mp4"), 302);
        });
        routes.Get("/missing.mp4", [](const httplib::Request&, httplib::Response& res) {
            res.status = 404;
            res.set_content("not here", "text/plain");
        });
        origin_.start();

        // A second loopback address outside the allow-list; it counts any
        // request that slips through.
        other_.routes().Get("/media/clip.mp4", [this](const httplib::Request&,
                                                       httplib::Response& res) {
            ++blocked_requests_;
            res.set_content(clip_bytes_, "video/mp4");
        });
        other_.start();
    }

    ServerProcess& allowListServer() {
        ServerOptions options;
        options.environment["BITMILL_URL_ALLOW"] = "127.0.0.1/32";
        return startServer(options);
    }

    // Declared before the servers, whose handler threads use them until the
    // servers are destroyed.
    std::filesystem::path clip_;
    std::string clip_bytes_;
    std::atomic<int> clip_requests_{0};
    std::atomic<int> blocked_requests_{0};
    LocalHttpServer origin_{"127.0.0.1"};
    LocalHttpServer other_{"127.0.0.2"};
};

TEST_F(IngestTest, IngestFromAllowedUrlCreatesMedia) {
    ApiSession session = sessionFor(allowListServer());
    std::string url = origin_.url("/media/clip.mp4");
    Json created = session.createTask({{"kind", "ingest"}, {"url", url}});
    EXPECT_EQ(created["status"], "pending");
    ASSERT_TRUE(created["input"].is_object()) << created.dump();
    EXPECT_EQ(created["input"].value("url", ""), url) << "input is {url} before ingest";

    Json task = session.waitForTask(created["id"]);
    ASSERT_TRUE(taskCompleted(task));
    const Json& output = task["output"];
    expectFileShape(output);
    EXPECT_EQ(output["kind"], "video");
    EXPECT_EQ(output.value("width", 0), 320);
    EXPECT_EQ(output["filesize"], clip_bytes_.size());
    EXPECT_GE(clip_requests_.load(), 1);

    Json media = session.getJson("/media/" + output["media_id"].get<std::string>());
    EXPECT_EQ(media["urls"].value("original", ""), output["url"]) << media.dump();
    HttpResponse delivered = fetchUrl(output["url"]);
    ASSERT_EQ(delivered.status, 200);
    EXPECT_TRUE(delivered.body == clip_bytes_);
}

TEST_F(IngestTest, VideoTaskFromUrl) {
    ApiSession session = sessionFor(allowListServer());
    Json task = session.runTask(
        {{"kind", "video"}, {"url", origin_.url("/media/clip.mp4")}, {"width", 160}});
    ASSERT_TRUE(taskCompleted(task));
    EXPECT_EQ(task["output"].value("width", 0), 160);
    EXPECT_TRUE(isPrefixedId(task["output"]["media_id"], "med_"));
    Json media = session.getJson("/media/" + task["output"]["media_id"].get<std::string>());
    EXPECT_TRUE(media["urls"].contains("original"))
        << "the fetched input became the original: " << media.dump();
}

TEST_F(IngestTest, RedirectWithinAllowedHostIsFollowed) {
    ApiSession session = sessionFor(allowListServer());
    Json task = session.runTask({{"kind", "ingest"}, {"url", origin_.url("/redirect")}});
    ASSERT_TRUE(taskCompleted(task));
    EXPECT_EQ(task["output"]["kind"], "video");
}

TEST_F(IngestTest, LoopbackIsBlockedWithoutAllowList) {
    std::string url = origin_.url("/media/clip.mp4");
    HttpResponse response = api().api().post("/tasks", {{"kind", "ingest"}, {"url", url}});
    if (response.status == 400) {
        EXPECT_TRUE(containsText(errorMessage(response), "127.0.0.1")) << response.describe();
    } else {
        ASSERT_EQ(response.status, 201) << response.describe();
        Json task = api().waitForTask(response.json()["id"]);
        ASSERT_TRUE(taskFailedWithError(task));
        EXPECT_TRUE(containsText(task["error"], "127.0.0.1")) << task["error"];
    }
    EXPECT_EQ(clip_requests_.load(), 0) << "the blocked address must not be contacted";
    EXPECT_TRUE(isHealthy(server()));
}

TEST_F(IngestTest, RedirectToBlockedAddressFails) {
    ApiSession session = sessionFor(allowListServer());
    Json task = session.runTask({{"kind", "ingest"}, {"url", origin_.url("/redirect-out")}});
    ASSERT_TRUE(taskFailedWithError(task));
    EXPECT_TRUE(containsText(task["error"], "127.0.0.2")) << task["error"];
    EXPECT_EQ(blocked_requests_.load(), 0) << "the redirect target was fetched";
}

TEST_F(IngestTest, MissingRemoteFileFailsNaming404) {
    ApiSession session = sessionFor(allowListServer());
    Json task = session.runTask({{"kind", "ingest"}, {"url", origin_.url("/missing.mp4")}});
    ASSERT_TRUE(taskFailedWithError(task));
    EXPECT_TRUE(containsText(task["error"], "404")) << task["error"];
}

TEST_F(IngestTest, NonHttpSchemesAre400) {
    for (const char* url : {"file:///etc/passwd", "ftp://127.0.0.1/clip.mp4",
                            "gopher://127.0.0.1/x", "not a url"}) {
        HttpResponse response = api().api().post("/tasks", {{"kind", "ingest"}, {"url", url}});
        EXPECT_EQ(response.status, 400) << response.describe();
        EXPECT_TRUE(containsText(errorMessage(response), "url")) << response.describe();
    }
}

TEST_F(IngestTest, PostFilesWithUrlWaitsThenReady) {
    ApiSession session = sessionFor(allowListServer());
    HttpResponse response = session.api().post(
        "/files", {{"url", origin_.url("/slow/clip.mp4")},
                   {"folder", "ingested"},
                   {"filename", "clip.mp4"},
                   {"metadata", {{"source", "test"}}}});
    ASSERT_EQ(response.status, 201) << response.describe();
    Json file = response.json();
    EXPECT_EQ(file["status"], "waiting");
    EXPECT_TRUE(isPrefixedId(file["id"], "file_"));
    EXPECT_TRUE(isPrefixedId(file["media_id"], "med_"));
    EXPECT_EQ(file.value("metadata", Json()), Json({{"source", "test"}}));

    std::string id = file["id"];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (file["status"] == "waiting" || file["status"] == "processing") {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << file.dump();
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        file = session.getJson("/files/" + id);
    }
    EXPECT_EQ(file["status"], "ready") << file.dump();
    expectFileShape(file);
    EXPECT_EQ(file["kind"], "video");
    EXPECT_EQ(file.value("width", 0), 320);
    EXPECT_EQ(file["filesize"], clip_bytes_.size());
    EXPECT_EQ(file.value("folder", ""), "ingested");
    HttpResponse delivered = fetchUrl(file["url"]);
    EXPECT_EQ(delivered.status, 200);
    EXPECT_TRUE(containsText(file["url"], "/ingested/clip.mp4")) << file["url"];
}

TEST_F(IngestTest, PostFilesWithBlockedUrlDoesNotFetch) {
    HttpResponse response =
        api().api().post("/files", {{"url", origin_.url("/media/clip.mp4")}});
    if (response.status == 201) {
        std::string id = response.json()["id"];
        Json file = response.json();
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (file["status"] == "waiting" || file["status"] == "processing") {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << file.dump();
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            file = api().getJson("/files/" + id);
        }
        EXPECT_EQ(file["status"], "failed") << file.dump();
    } else {
        EXPECT_EQ(response.status, 400) << response.describe();
        EXPECT_TRUE(containsText(errorMessage(response), "127.0.0.1")) << response.describe();
    }
    EXPECT_EQ(clip_requests_.load(), 0);
}

}  // namespace
}  // namespace bitmill::e2e
