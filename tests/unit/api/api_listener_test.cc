// The API listener in process: a real SQLite store and local blob store in
// a temporary folder, the listener on a free port, and httplib::Client
// requests checking statuses, bodies and headers.
#include <gtest/gtest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <latch>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/api.h"
#include "api/signing.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/media_properties.h"
#include "db/open_store.h"
#include "storage/open_blob_store.h"

namespace bitmill::api {
namespace {

namespace fs = std::filesystem;

const std::regex kRfc3339Millis(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
constexpr const char* kKey = "bm_test0000000000000000000000000000000001";
constexpr const char* kOtherKey = "bm_test0000000000000000000000000000000002";
constexpr const char* kDeliveryBase = "http://files.test:8081";

class TempDir {
  public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "bitmill-api-test-XXXXXX").string();
        path_ = mkdtemp(pattern.data());
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

class ApiListenerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto store = db::openStore("", temp_.path());
        ASSERT_TRUE(store.ok()) << store.error().toLogString();
        auto blobs = storage::openBlobStore("", temp_.path());
        ASSERT_TRUE(blobs.ok()) << blobs.error().toLogString();

        context_ = std::make_shared<ApiContext>();
        context_->config.data_dir = temp_.path();
        context_->config.public_delivery_url = kDeliveryBase;
        context_->config.limits.max_request_body_bytes = 64 * 1024;
        context_->store = *store;
        context_->blobs = *blobs;
        context_->org_id = "org_0123456789abcdef";
        context_->wake_workers = [this] { ++wakes_; };

        auto project = context_->store->ensureDefaultProject();
        ASSERT_TRUE(project.ok()) << project.error().toLogString();
        project_id_ = project->id;
        key_id_ = insertKey(project_id_, kKey);

        listener_ = makeApiListener(context_);
        auto port = listener_->start("127.0.0.1", 0);
        ASSERT_TRUE(port.ok()) << port.error().toLogString();
        port_ = *port;
    }

    void TearDown() override {
        if (listener_) {
            listener_->stop();
        }
    }

    std::string insertKey(const std::string& project_id, const std::string& token) {
        domain::ApiKey key;
        key.id = "key_" + token.substr(token.size() - 16);
        key.project_id = project_id;
        key.name = "test";
        key.display_prefix = token.substr(0, 8);
        key.hash = crypto::sha256Hex(token);
        key.created_ms = nowMillis();
        auto inserted = context_->store->insertApiKey(key);
        EXPECT_TRUE(inserted.ok()) << inserted.error().toLogString();
        return key.id;
    }

    // Creates a second project: the store creates "default" on demand, so
    // renaming the first one makes the next call create another.
    std::string createOtherProject() {
        auto first = context_->store->getProject(project_id_);
        EXPECT_TRUE(first.ok());
        domain::Project renamed = *first;
        renamed.name = "first";
        EXPECT_TRUE(context_->store->updateProject(renamed).ok());
        auto other = context_->store->ensureDefaultProject();
        EXPECT_TRUE(other.ok());
        EXPECT_NE(other->id, project_id_);
        return other->id;
    }

    httplib::Client client(const std::string& key = kKey) {
        httplib::Client http("127.0.0.1", port_);
        if (!key.empty()) {
            http.set_default_headers({{"Authorization", "Bearer " + key}});
        }
        return http;
    }

    // Creates a file row through POST /files and returns its JSON.
    Json createFile(const Json& body = Json{{"url", "https://media.example.test/in.mp4"}}) {
        auto http = client();
        auto response = http.Post("/files", body.dump(), "application/json");
        EXPECT_TRUE(response);
        EXPECT_EQ(response->status, 201) << response->body;
        return Json::parse(response->body);
    }

    // Creates a file through POST /files and gives its row the state of a
    // finished ingest: status ready and the measured `props`.
    Json createReadyFile(const MediaProperties& props) {
        const Json file = createFile();
        auto row = context_->store->getFile(project_id_, file["id"].get<std::string>());
        EXPECT_TRUE(row.ok());
        row->status = "ready";
        row->props = props;
        EXPECT_TRUE(context_->store->updateFile(*row).ok());
        return file;
    }

    Json createTask(const Json& body) {
        auto http = client();
        auto response = http.Post("/tasks", body.dump(), "application/json");
        EXPECT_TRUE(response);
        EXPECT_EQ(response->status, 201) << response->body;
        return Json::parse(response->body);
    }

    TempDir temp_;
    std::shared_ptr<ApiContext> context_;
    std::unique_ptr<Listener> listener_;
    std::string project_id_;
    std::string key_id_;
    int port_ = 0;
    std::atomic<int> wakes_{0};
};

std::string messageOf(const httplib::Result& response) {
    return Json::parse(response->body).value("message", "");
}

MediaProperties videoProps(double duration) {
    MediaProperties props;
    props.kind = "video";
    props.type = "video/mp4";
    props.container = "mp4";
    props.extension = "mp4";
    props.width = 640;
    props.height = 360;
    props.duration = duration;
    props.audio_channels = 2;
    return props;
}

MediaProperties audioProps(double duration) {
    MediaProperties props;
    props.kind = "audio";
    props.type = "audio/mpeg";
    props.container = "mp3";
    props.extension = "mp3";
    props.duration = duration;
    props.audio_channels = 2;
    return props;
}

MediaProperties imageProps(const std::string& container, bool animated) {
    MediaProperties props;
    props.kind = "image";
    props.type = "image/" + container;
    props.container = container;
    props.extension = container;
    props.width = 64;
    props.height = 64;
    props.animated = animated;
    if (animated) {
        props.duration = 1.5;
    }
    return props;
}

// An HTTP response read from a raw socket.
struct RawResponse {
    int status = 0;
    std::string body;
};

// Sends `request` as written (it should carry "Connection: close") and
// reads the response until the server closes the connection. httplib's
// client always adds Content-Length, so requests without one need this.
RawResponse sendRaw(int port, const std::string& request) {
    RawResponse response;
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return response;
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    std::string received;
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
        send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
        char buffer[4096];
        ssize_t count = 0;
        while ((count = recv(fd, buffer, sizeof(buffer), 0)) > 0) {
            received.append(buffer, static_cast<size_t>(count));
        }
    }
    close(fd);
    // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody"
    if (received.size() > 12) {
        response.status = std::atoi(received.c_str() + 9);
    }
    const auto body_start = received.find("\r\n\r\n");
    if (body_start != std::string::npos) {
        response.body = received.substr(body_start + 4);
    }
    return response;
}

void expectTimestamp(const Json& value, const char* field) {
    ASSERT_TRUE(value.is_string()) << field;
    EXPECT_TRUE(std::regex_match(value.get<std::string>(), kRfc3339Millis)) << field << value;
}

TEST_F(ApiListenerTest, HealthNeedsNoKey) {
    auto http = client("");
    auto response = http.Get("/healthz");
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(Json::parse(response->body), (Json{{"status", "ok"}}));
    EXPECT_EQ(response->get_header_value("X-Request-Id").rfind("req_", 0), 0u);
}

TEST_F(ApiListenerTest, RejectsMissingWrongAndRevokedKeys) {
    for (const std::string key : {"", "bm_wrong"}) {
        auto http = client(key);
        auto response = http.Get("/tasks");
        ASSERT_TRUE(response);
        EXPECT_EQ(response->status, 401) << key;
        EXPECT_EQ(Json::parse(response->body), (Json{{"message", "missing or invalid API key"}}));
        EXPECT_FALSE(response->get_header_value("X-Request-Id").empty());
    }

    ASSERT_TRUE(context_->store->revokeApiKey(key_id_, nowMillis()).ok());
    auto http = client();
    auto response = http.Get("/tasks");
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 401);
}

TEST_F(ApiListenerTest, CreateFileReturnsWaitingFile) {
    const Json file = createFile(Json{{"url", "https://media.example.test/in.mp4"},
                                      {"folder", "clips"},
                                      {"filename", "in.mp4"},
                                      {"metadata", {{"owner", "ada"}}}});
    EXPECT_EQ(file["id"].get<std::string>().rfind("file_", 0), 0u);
    EXPECT_EQ(file["media_id"].get<std::string>().rfind("med_", 0), 0u);
    EXPECT_EQ(file["object"], "source");
    EXPECT_TRUE(file["kind"].is_string());
    EXPECT_TRUE(file["type"].is_string());
    EXPECT_EQ(file["filesize"], 0);
    EXPECT_EQ(file["status"], "waiting");
    EXPECT_EQ(file["url"], std::string(kDeliveryBase) + "/clips/in.mp4");
    EXPECT_EQ(file["metadata"]["owner"], "ada");
    EXPECT_EQ(file["original"], true);
    expectTimestamp(file["created"], "created");
    expectTimestamp(file["updated"], "updated");
    EXPECT_EQ(wakes_.load(), 1);

    // The ingest task that fills the file exists and hides its internal
    // option.
    auto http = client();
    auto tasks = http.Get("/tasks?kind=ingest");
    ASSERT_TRUE(tasks);
    const Json list = Json::parse(tasks->body);
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0]["input"]["url"], "https://media.example.test/in.mp4");
    EXPECT_FALSE(list[0]["options"].contains("file_id_to_fill"));
}

TEST_F(ApiListenerTest, CreateTaskReturnsEveryRequiredField) {
    const Json file = createReadyFile(videoProps(10));
    const Json task = createTask(
        Json{{"kind", "video"}, {"file_id", file["id"]}, {"format", "webm"}, {"ref", "small"}});
    EXPECT_EQ(task["id"].get<std::string>().rfind("task_", 0), 0u);
    EXPECT_EQ(task["object"], "task");
    EXPECT_EQ(task["kind"], "video");
    ASSERT_TRUE(task["input"].is_object());
    EXPECT_EQ(task["input"]["id"], file["id"]);
    EXPECT_EQ(task["input"]["media_id"], file["media_id"]);
    ASSERT_TRUE(task["options"].is_object());
    EXPECT_EQ(task["options"]["format"], "webm");
    EXPECT_EQ(task["options"]["ref"], "small");
    EXPECT_FALSE(task["options"].contains("kind"));
    EXPECT_FALSE(task["options"].contains("file_id"));
    EXPECT_TRUE(task["output"].is_null());
    EXPECT_EQ(task["status"], "pending");
    EXPECT_TRUE(task["progress"].is_number_integer());
    EXPECT_EQ(task["progress"], 0);
    EXPECT_TRUE(task["error"].is_null());
    EXPECT_EQ(task["created_by"], key_id_);
    expectTimestamp(task["created"], "created");
    expectTimestamp(task["updated"], "updated");
    EXPECT_TRUE(task["parent_id"].is_null());
    EXPECT_TRUE(task["workflow"].is_array());
    EXPECT_TRUE(task["started"].is_null());
    EXPECT_TRUE(task["finished"].is_null());
    EXPECT_EQ(task["attempts"], 0);
    EXPECT_EQ(wakes_.load(), 2);
}

TEST_F(ApiListenerTest, UrlTaskKeepsUrlAsInput) {
    const Json task = createTask(
        Json{{"kind", "image"}, {"url", "https://media.example.test/photo.jpg"}, {"width", 320}});
    EXPECT_EQ(task["input"], (Json{{"url", "https://media.example.test/photo.jpg"}}));
    EXPECT_EQ(task["options"]["width"], 320);
}

TEST_F(ApiListenerTest, GetListAndCancelTask) {
    const Json first = createTask(Json{{"kind", "ingest"}, {"url", "https://m.test/a.mp4"}});
    const Json second = createTask(Json{{"kind", "ingest"}, {"url", "https://m.test/b.mp4"}});
    auto http = client();

    auto got = http.Get("/tasks/" + first["id"].get<std::string>());
    ASSERT_TRUE(got);
    EXPECT_EQ(got->status, 200);
    EXPECT_EQ(Json::parse(got->body)["id"], first["id"]);

    auto listed = http.Get("/tasks?limit=1");
    ASSERT_TRUE(listed);
    EXPECT_EQ(listed->status, 200);
    const Json page = Json::parse(listed->body);
    ASSERT_TRUE(page.is_array());
    ASSERT_EQ(page.size(), 1u);
    EXPECT_EQ(page[0]["id"], second["id"]);  // newest first
    const std::string link = listed->get_header_value("Link");
    EXPECT_NE(link.find("page=2&limit=1>; rel=\"next\""), std::string::npos) << link;
    EXPECT_NE(link.find("<http://127.0.0.1:" + std::to_string(port_) + "/tasks?page=1&limit=1>"),
              std::string::npos)
        << link;

    auto past_end = http.Get("/tasks?page=5");
    ASSERT_TRUE(past_end);
    EXPECT_EQ(past_end->status, 200);
    EXPECT_EQ(Json::parse(past_end->body), Json::array());

    const std::string cancel_path = "/tasks/" + first["id"].get<std::string>() + "/cancel";
    auto cancelled = http.Post(cancel_path, "", "application/json");
    ASSERT_TRUE(cancelled);
    EXPECT_EQ(cancelled->status, 200) << cancelled->body;
    const Json cancelled_task = Json::parse(cancelled->body);
    EXPECT_EQ(cancelled_task["status"], "cancelled");
    expectTimestamp(cancelled_task["finished"], "finished");

    auto again = http.Post(cancel_path, "", "application/json");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 200);

    auto filtered = http.Get("/tasks?status=cancelled");
    ASSERT_TRUE(filtered);
    ASSERT_EQ(Json::parse(filtered->body).size(), 1u);

    auto bad_status = http.Get("/tasks?status=done");
    ASSERT_TRUE(bad_status);
    EXPECT_EQ(bad_status->status, 400);
}

TEST_F(ApiListenerTest, EnvelopeModeWrapsObjectsListsAndErrors) {
    const Json task = createTask(Json{{"kind", "ingest"}, {"url", "https://m.test/a.mp4"}});
    auto http = client();
    httplib::Headers envelope_headers{{"Authorization", std::string("Bearer ") + kKey},
                                      {"Accept-Version", "2025-01-01"}};

    auto got = http.Get("/tasks/" + task["id"].get<std::string>(), envelope_headers);
    ASSERT_TRUE(got);
    const Json body = Json::parse(got->body);
    EXPECT_EQ(body["meta"]["type"], "object");
    EXPECT_EQ(body["meta"]["project_id"], project_id_);
    EXPECT_EQ(body["meta"]["org_id"], "org_0123456789abcdef");
    EXPECT_EQ(body["meta"]["request_id"], got->get_header_value("X-Request-Id"));
    EXPECT_EQ(body["data"]["id"], task["id"]);
    EXPECT_TRUE(body["error"].is_null());
    EXPECT_EQ(body["links"]["self"], "http://127.0.0.1:" + std::to_string(port_) + "/tasks/" +
                                         task["id"].get<std::string>());

    auto listed = http.Get("/tasks", envelope_headers);
    ASSERT_TRUE(listed);
    const Json list = Json::parse(listed->body);
    EXPECT_EQ(list["meta"]["type"], "list");
    EXPECT_EQ(list["meta"]["total"], 1);
    EXPECT_EQ(list["meta"]["pages"], 1);
    EXPECT_EQ(list["data"].size(), 1u);

    auto missing = http.Get("/tasks/task_0000000000000000", envelope_headers);
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 404);
    const Json error = Json::parse(missing->body);
    EXPECT_EQ(error["meta"]["type"], "error");
    EXPECT_EQ(error["error"]["message"], "task 'task_0000000000000000' not found");

    // SDKs send a version the user set with the underscore spelling.
    auto underscore =
        http.Get("/tasks", httplib::Headers{{"Authorization", std::string("Bearer ") + kKey},
                                            {"ACCEPT_VERSION", "2025-01-01"}});
    ASSERT_TRUE(underscore);
    EXPECT_EQ(Json::parse(underscore->body)["meta"]["type"], "list");

    // /tasks-config is unwrapped in every mode.
    auto config = http.Get("/tasks-config", envelope_headers);
    ASSERT_TRUE(config);
    EXPECT_EQ(config->status, 200);
    EXPECT_TRUE(Json::parse(config->body)["video"].is_array());
}

TEST_F(ApiListenerTest, IdempotencyKeyReplaysAndConflicts) {
    auto http = client();
    const httplib::Headers headers{{"Authorization", std::string("Bearer ") + kKey},
                                   {"Idempotency-Key", "retry-1"}};
    const std::string body = Json{{"kind", "ingest"}, {"url", "https://m.test/a.mp4"}}.dump();

    auto first = http.Post("/tasks", headers, body, "application/json");
    ASSERT_TRUE(first);
    EXPECT_EQ(first->status, 201);
    auto replay = http.Post("/tasks", headers, body, "application/json");
    ASSERT_TRUE(replay);
    EXPECT_EQ(replay->status, 201);
    EXPECT_EQ(Json::parse(replay->body)["id"], Json::parse(first->body)["id"]);
    EXPECT_EQ(replay->get_header_value("Idempotent-Replayed"), "true");

    const std::string other_body =
        Json{{"kind", "ingest"}, {"url", "https://m.test/other.mp4"}}.dump();
    auto conflict = http.Post("/tasks", headers, other_body, "application/json");
    ASSERT_TRUE(conflict);
    EXPECT_EQ(conflict->status, 409);

    auto listed = http.Get("/tasks");
    ASSERT_TRUE(listed);
    EXPECT_EQ(Json::parse(listed->body).size(), 1u);
}

TEST_F(ApiListenerTest, ProjectsAreIsolated) {
    const Json task = createTask(Json{{"kind", "ingest"}, {"url", "https://m.test/a.mp4"}});
    const Json file = createFile();
    insertKey(createOtherProject(), kOtherKey);
    auto other = client(kOtherKey);

    const std::string task_id = task["id"];
    auto got = other.Get("/tasks/" + task_id);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->status, 404);
    EXPECT_EQ(messageOf(got), "task '" + task_id + "' not found");

    auto cancel = other.Post("/tasks/" + task_id + "/cancel", "", "application/json");
    ASSERT_TRUE(cancel);
    EXPECT_EQ(cancel->status, 404);

    auto listed = other.Get("/tasks");
    ASSERT_TRUE(listed);
    EXPECT_EQ(Json::parse(listed->body), Json::array());

    const std::string file_id = file["id"];
    auto file_got = other.Get("/files/" + file_id);
    ASSERT_TRUE(file_got);
    EXPECT_EQ(file_got->status, 404);
    auto file_deleted = other.Delete("/files/" + file_id);
    ASSERT_TRUE(file_deleted);
    EXPECT_EQ(file_deleted->status, 404);

    auto foreign_input = other.Post("/tasks", Json{{"kind", "video"}, {"file_id", file_id}}.dump(),
                                    "application/json");
    ASSERT_TRUE(foreign_input);
    EXPECT_EQ(foreign_input->status, 404);
    EXPECT_EQ(messageOf(foreign_input), "file '" + file_id + "' not found");
}

TEST_F(ApiListenerTest, ValidationMessages) {
    auto http = client();
    auto post = [&http](const std::string& path, const std::string& body) {
        return http.Post(path, body, "application/json");
    };

    auto unknown_kind = post("/tasks", R"({"kind":"sing","url":"https://m.test/a.mp4"})");
    ASSERT_TRUE(unknown_kind);
    EXPECT_EQ(unknown_kind->status, 400);
    EXPECT_NE(messageOf(unknown_kind).find("ingest, video, image, audio"), std::string::npos)
        << unknown_kind->body;

    auto unavailable_kind = post("/tasks", R"({"kind":"speech","url":"https://m.test/a.mp4"})");
    ASSERT_TRUE(unavailable_kind);
    EXPECT_EQ(unavailable_kind->status, 422);
    EXPECT_NE(messageOf(unavailable_kind).find("not available in this build"), std::string::npos);

    auto bad_option =
        post("/tasks", R"({"kind":"video","url":"https://m.test/a.mp4","fit":"stretch"})");
    ASSERT_TRUE(bad_option);
    EXPECT_EQ(bad_option->status, 400);
    EXPECT_NE(messageOf(bad_option).find("fit"), std::string::npos) << bad_option->body;

    auto bad_scheme = post("/tasks", R"({"kind":"ingest","url":"ftp://m.test/a.mp4"})");
    ASSERT_TRUE(bad_scheme);
    EXPECT_EQ(bad_scheme->status, 400);

    auto missing_file = post("/tasks", R"({"kind":"video","file_id":"file_0000000000000000"})");
    ASSERT_TRUE(missing_file);
    EXPECT_EQ(missing_file->status, 404);
    EXPECT_EQ(messageOf(missing_file), "file 'file_0000000000000000' not found");

    auto invalid_json = post("/tasks", "{\"kind\": ");
    ASSERT_TRUE(invalid_json);
    EXPECT_EQ(invalid_json->status, 400);
    EXPECT_EQ(messageOf(invalid_json).rfind("request body is not valid JSON: ", 0), 0u)
        << invalid_json->body;

    auto not_object = post("/media", "[1,2]");
    ASSERT_TRUE(not_object);
    EXPECT_EQ(not_object->status, 400);

    auto unknown_field = post("/files", R"({"url":"https://m.test/a.mp4","colour":"red"})");
    ASSERT_TRUE(unknown_field);
    EXPECT_EQ(unknown_field->status, 400);
    EXPECT_EQ(messageOf(unknown_field).rfind("unknown field \"colour\"", 0), 0u)
        << unknown_field->body;

    auto missing_url = post("/files", R"({"folder":"a"})");
    ASSERT_TRUE(missing_url);
    EXPECT_EQ(missing_url->status, 400);
    EXPECT_EQ(messageOf(missing_url), "missing required field \"url\"");

    auto wrong_type = post("/media", R"({"title":5})");
    ASSERT_TRUE(wrong_type);
    EXPECT_EQ(wrong_type->status, 400);
    EXPECT_EQ(messageOf(wrong_type), "invalid field \"title\": 5 is not a string");

    auto bad_folder = post("/files", R"({"url":"https://m.test/a.mp4","folder":"../up"})");
    ASSERT_TRUE(bad_folder);
    EXPECT_EQ(bad_folder->status, 400);

    auto bad_page = http.Get("/files?page=0");
    ASSERT_TRUE(bad_page);
    EXPECT_EQ(bad_page->status, 400);
    auto bad_limit = http.Get("/media?limit=101");
    ASSERT_TRUE(bad_limit);
    EXPECT_EQ(bad_limit->status, 400);

    const std::string large(70 * 1024, ' ');
    auto too_large = post("/media", "{\"title\":\"" + large + "\"}");
    ASSERT_TRUE(too_large);
    EXPECT_EQ(too_large->status, 413);
    EXPECT_FALSE(messageOf(too_large).empty());

    auto no_route = http.Get("/nothing-here");
    ASSERT_TRUE(no_route);
    EXPECT_EQ(no_route->status, 404);
    EXPECT_EQ(messageOf(no_route), "no route for GET /nothing-here");
    EXPECT_FALSE(no_route->get_header_value("X-Request-Id").empty());

    auto wrong_method = http.Put("/tasks", "", "application/json");
    ASSERT_TRUE(wrong_method);
    EXPECT_EQ(wrong_method->status, 404);
    EXPECT_EQ(messageOf(wrong_method), "no route for PUT /tasks");

    auto missing_kind = post("/tasks", R"({"url":"https://m.test/a.mp4"})");
    ASSERT_TRUE(missing_kind);
    EXPECT_EQ(missing_kind->status, 400);
    EXPECT_EQ(messageOf(missing_kind),
              "missing required field \"kind\"; accepted kinds: ingest, video, image, audio");
}

TEST_F(ApiListenerTest, DeeplyNestedBodyIsRejected) {
    // About 40 KB; 20000 levels overflowed the parser's stack and ended the
    // whole server before the depth limit existed.
    const std::string nested = std::string(20000, '[') + std::string(20000, ']');
    const Json file = createFile();
    const std::string file_id = file["id"];
    auto http = client();

    auto task = http.Post("/tasks",
                          R"({"kind":"image","file_id":")" + file_id + R"(","metadata":)" +
                              nested + "}",
                          "application/json");
    ASSERT_TRUE(task);
    EXPECT_EQ(task->status, 400);
    EXPECT_EQ(messageOf(task), "request body nests deeper than 64 levels");

    auto media = http.Post("/media", R"({"metadata":)" + nested + "}", "application/json");
    ASSERT_TRUE(media);
    EXPECT_EQ(media->status, 400);
    EXPECT_EQ(messageOf(media), "request body nests deeper than 64 levels");

    auto patch = http.Patch("/files/" + file_id, R"({"metadata":{"a":)" + nested + "}}",
                            "application/json");
    ASSERT_TRUE(patch);
    EXPECT_EQ(patch->status, 400);
    EXPECT_EQ(messageOf(patch), "request body nests deeper than 64 levels");

    auto health = http.Get("/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);

    // 64 levels in all are accepted: the body object, metadata and 62 arrays.
    const std::string deepest = std::string(62, '[') + std::string(62, ']');
    auto at_limit = http.Post("/media", R"({"metadata":{"a":)" + deepest + "}}",
                              "application/json");
    ASSERT_TRUE(at_limit);
    EXPECT_EQ(at_limit->status, 201) << at_limit->body;
}

TEST_F(ApiListenerTest, NumberOutOfRangeIsBadRequest) {
    auto http = client();
    auto task = http.Post("/tasks", R"({"kind":"image","url":"https://m.test/a.png","width":1e400})",
                          "application/json");
    ASSERT_TRUE(task);
    EXPECT_EQ(task->status, 400);
    EXPECT_NE(messageOf(task).find("number out of range"), std::string::npos) << task->body;
    EXPECT_NE(messageOf(task).find("1e400"), std::string::npos) << task->body;

    auto media = http.Post("/media", R"({"metadata":{"n":-2e308}})", "application/json");
    ASSERT_TRUE(media);
    EXPECT_EQ(media->status, 400);

    auto bad_utf8 = http.Post("/media", "{\"title\":\"\xff\"}", "application/json");
    ASSERT_TRUE(bad_utf8);
    EXPECT_EQ(bad_utf8->status, 400);

    auto listed = http.Get("/media");
    ASSERT_TRUE(listed);
    EXPECT_EQ(Json::parse(listed->body), Json::array());
}

TEST_F(ApiListenerTest, ConcurrentIdempotentPostsCreateOneTask) {
    constexpr int kRequests = 10;
    // Workers are woken after the insert, while the response is not stored
    // yet; a slow wake-up widens that window so that duplicates which are
    // not serialized all create a task.
    context_->wake_workers = [] { std::this_thread::sleep_for(std::chrono::milliseconds(100)); };
    const std::string body = Json{{"kind", "ingest"}, {"url", "https://m.test/a.mp4"}}.dump();
    std::latch start(kRequests);
    std::vector<int> statuses(kRequests);
    std::vector<std::string> ids(kRequests);
    std::vector<std::thread> threads;
    for (int i = 0; i < kRequests; ++i) {
        threads.emplace_back([&, i] {
            httplib::Client http("127.0.0.1", port_);
            const httplib::Headers headers{{"Authorization", std::string("Bearer ") + kKey},
                                           {"Idempotency-Key", "same-key"}};
            start.arrive_and_wait();
            auto response = http.Post("/tasks", headers, body, "application/json");
            if (response) {
                statuses[i] = response->status;
                ids[i] = Json::parse(response->body).value("id", "");
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }

    for (int i = 0; i < kRequests; ++i) {
        EXPECT_EQ(statuses[i], 201) << i;
    }
    EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 1u);
    auto http = client();
    auto listed = http.Get("/tasks");
    ASSERT_TRUE(listed);
    EXPECT_EQ(Json::parse(listed->body).size(), 1u);
}

TEST_F(ApiListenerTest, WebhookUrlIsNotAvailable) {
    auto http = client();
    const std::string expected =
        "option \"webhook_url\" is not available in this build: webhooks are not implemented "
        "yet";
    auto top_level = http.Post(
        "/tasks",
        R"({"kind":"ingest","url":"https://m.test/a.mp4","webhook_url":"https://hooks.test/x"})",
        "application/json");
    ASSERT_TRUE(top_level);
    EXPECT_EQ(top_level->status, 422);
    EXPECT_EQ(messageOf(top_level), expected);

    auto nested = http.Post("/tasks",
                            R"({"kind":"image","url":"https://m.test/a.png",)"
                            R"("options":{"webhook_url":"https://hooks.test/x"}})",
                            "application/json");
    ASSERT_TRUE(nested);
    EXPECT_EQ(nested->status, 422);
    EXPECT_EQ(messageOf(nested), expected);

    auto listed = http.Get("/tasks");
    ASSERT_TRUE(listed);
    EXPECT_EQ(Json::parse(listed->body), Json::array());
}

TEST_F(ApiListenerTest, TasksConfigListsOnlyAvailableFormats) {
    auto http = client();
    auto config = http.Get("/tasks-config");
    ASSERT_TRUE(config);
    ASSERT_EQ(config->status, 200);
    const Json formats = Json::parse(config->body);
    EXPECT_EQ(formats["video"], (Json{"mp4", "webm", "mov", "mkv"}));

    // Every listed format is one that POST /tasks accepts.
    for (const std::string kind : {"video", "image", "audio"}) {
        ASSERT_TRUE(formats[kind].is_array()) << kind;
        for (const auto& format : formats[kind]) {
            auto created = http.Post(
                "/tasks",
                Json{{"kind", kind}, {"url", "https://m.test/in"}, {"format", format}}.dump(),
                "application/json");
            ASSERT_TRUE(created);
            EXPECT_EQ(created->status, 201) << kind << " " << format << ": " << created->body;
        }
    }
}

TEST_F(ApiListenerTest, TaskOnUnreadyFileIsConflict) {
    auto http = client();
    const Json waiting = createFile();
    const std::string waiting_id = waiting["id"];
    auto on_waiting = http.Post("/tasks", Json{{"kind", "video"}, {"file_id", waiting_id}}.dump(),
                                "application/json");
    ASSERT_TRUE(on_waiting);
    EXPECT_EQ(on_waiting->status, 409);
    EXPECT_EQ(messageOf(on_waiting),
              "file '" + waiting_id + "' is not ready (status waiting); wait for its ingest to "
              "finish");

    const Json failed = createFile();
    const std::string failed_id = failed["id"];
    auto row = context_->store->getFile(project_id_, failed_id);
    ASSERT_TRUE(row.ok());
    row->status = "failed";
    ASSERT_TRUE(context_->store->updateFile(*row).ok());
    auto on_failed = http.Post("/tasks", Json{{"kind", "image"}, {"file_id", failed_id}}.dump(),
                               "application/json");
    ASSERT_TRUE(on_failed);
    EXPECT_EQ(on_failed->status, 409);
    EXPECT_EQ(messageOf(on_failed).rfind("file '" + failed_id + "' is not ready (status failed)", 0),
              0u)
        << on_failed->body;

    // Only the two ingest tasks of POST /files exist.
    auto listed = http.Get("/tasks");
    ASSERT_TRUE(listed);
    EXPECT_EQ(Json::parse(listed->body).size(), 2u);
}

TEST_F(ApiListenerTest, TaskKindMustSuitInputFile) {
    auto http = client();
    auto post = [&http](const Json& body) {
        return http.Post("/tasks", body.dump(), "application/json");
    };
    const std::string audio_id = createReadyFile(audioProps(8))["id"];
    const std::string png_id = createReadyFile(imageProps("png", false))["id"];
    const std::string gif_id = createReadyFile(imageProps("gif", true))["id"];
    const std::string video_id = createReadyFile(videoProps(10))["id"];

    auto video_on_audio = post(Json{{"kind", "video"}, {"file_id", audio_id}});
    ASSERT_TRUE(video_on_audio);
    EXPECT_EQ(video_on_audio->status, 400);
    EXPECT_EQ(messageOf(video_on_audio),
              "invalid input for kind video: file '" + audio_id +
                  "' is audio, and a video task needs a video or an animated GIF");

    auto video_on_png = post(Json{{"kind", "video"}, {"file_id", png_id}});
    ASSERT_TRUE(video_on_png);
    EXPECT_EQ(video_on_png->status, 400);
    EXPECT_NE(messageOf(video_on_png).find("is a still image (png)"), std::string::npos)
        << video_on_png->body;

    auto audio_on_png = post(Json{{"kind", "audio"}, {"file_id", png_id}});
    ASSERT_TRUE(audio_on_png);
    EXPECT_EQ(audio_on_png->status, 400);

    auto image_on_audio = post(Json{{"kind", "image"}, {"file_id", audio_id}});
    ASSERT_TRUE(image_on_audio);
    EXPECT_EQ(image_on_audio->status, 400);
    EXPECT_EQ(messageOf(image_on_audio),
              "invalid input for kind image: file '" + audio_id +
                  "' is audio, and an image task needs an image or a video");

    auto gif_to_mp4 = post(Json{{"kind", "video"}, {"file_id", gif_id}, {"format", "mp4"}});
    ASSERT_TRUE(gif_to_mp4);
    EXPECT_EQ(gif_to_mp4->status, 201) << gif_to_mp4->body;

    auto start_too_late = post(Json{{"kind", "video"}, {"file_id", video_id}, {"start", 25}});
    ASSERT_TRUE(start_too_late);
    EXPECT_EQ(start_too_late->status, 400);
    EXPECT_EQ(messageOf(start_too_late),
              "invalid option \"start\": 25 is not less than the duration of file '" + video_id +
                  "' (10 seconds)");

    auto end_too_late = post(Json{{"kind", "audio"}, {"file_id", audio_id}, {"end", 9.5}});
    ASSERT_TRUE(end_too_late);
    EXPECT_EQ(end_too_late->status, 400);
    EXPECT_EQ(messageOf(end_too_late),
              "invalid option \"end\": 9.5 is beyond the duration of file '" + audio_id +
                  "' (8 seconds)");

    auto within = post(Json{{"kind", "video"}, {"file_id", video_id}, {"start", 2}, {"end", 10}});
    ASSERT_TRUE(within);
    EXPECT_EQ(within->status, 201) << within->body;
}

TEST_F(ApiListenerTest, EnvelopeCreateLinksToNewObject) {
    auto http = client();
    const httplib::Headers headers{{"Authorization", std::string("Bearer ") + kKey},
                                   {"Accept-Version", "2025-01-01"}};
    const std::string base = "http://127.0.0.1:" + std::to_string(port_);
    const std::string video_id = createReadyFile(videoProps(10))["id"];

    struct Create {
        std::string path;
        std::string collection;
        std::string body;
    };
    const std::vector<Create> creates = {
        {"/media", "/media", R"({"title":"Trailer"})"},
        {"/files", "/files", R"({"url":"https://m.test/a.mp4"})"},
        {"/tasks", "/tasks", Json{{"kind", "video"}, {"file_id", video_id}}.dump()},
    };
    for (const Create& create : creates) {
        auto response = http.Post(create.path, headers, create.body, "application/json");
        ASSERT_TRUE(response);
        EXPECT_EQ(response->status, 201) << create.path << ": " << response->body;
        const Json envelope = Json::parse(response->body);
        const std::string id = envelope["data"]["id"];
        EXPECT_EQ(envelope["links"]["self"], base + create.collection + "/" + id) << create.path;
        EXPECT_EQ(envelope["links"]["parent"], base + create.collection) << create.path;
    }

    // A cancel links to the task, not to the cancel action.
    const Json task = createTask(Json{{"kind", "ingest"}, {"url", "https://m.test/b.mp4"}});
    const std::string task_id = task["id"];
    auto cancelled = http.Post("/tasks/" + task_id + "/cancel", headers, "", "application/json");
    ASSERT_TRUE(cancelled);
    EXPECT_EQ(Json::parse(cancelled->body)["links"]["self"], base + "/tasks/" + task_id);
}

TEST_F(ApiListenerTest, PostWithoutContentLengthHasNoBody) {
    const Json task = createTask(Json{{"kind", "ingest"}, {"url", "https://m.test/a.mp4"}});
    const std::string headers = std::string("Host: 127.0.0.1\r\nAuthorization: Bearer ") + kKey +
                                "\r\nConnection: close\r\n";

    // curl -X POST sends neither Content-Length nor a body.
    const auto started = std::chrono::steady_clock::now();
    RawResponse cancelled = sendRaw(
        port_, "POST /tasks/" + task["id"].get<std::string>() + "/cancel HTTP/1.1\r\n" + headers +
                   "\r\n");
    const auto elapsed = std::chrono::steady_clock::now() - started;
    ASSERT_EQ(cancelled.status, 200) << cancelled.body;
    EXPECT_EQ(Json::parse(cancelled.body)["status"], "cancelled");
    EXPECT_LT(elapsed, std::chrono::seconds(5));

    RawResponse empty_media = sendRaw(port_, "POST /media HTTP/1.1\r\n" + headers + "\r\n");
    EXPECT_EQ(empty_media.status, 201) << empty_media.body;

    // A chunked body is still read.
    const std::string title = R"({"title":"chunked"})";
    char size[16];
    std::snprintf(size, sizeof(size), "%zx", title.size());
    RawResponse chunked = sendRaw(port_, "POST /media HTTP/1.1\r\n" + headers +
                                             "Content-Type: application/json\r\n"
                                             "Transfer-Encoding: chunked\r\n\r\n" +
                                             size + "\r\n" + title + "\r\n0\r\n\r\n");
    ASSERT_EQ(chunked.status, 201) << chunked.body;
    EXPECT_EQ(Json::parse(chunked.body)["title"], "chunked");

    // A chunked body over the limit is a 413 like one with Content-Length.
    const std::string large = R"({"title":")" + std::string(70 * 1024, 'x') + R"("})";
    std::snprintf(size, sizeof(size), "%zx", large.size());
    RawResponse too_large = sendRaw(port_, "POST /media HTTP/1.1\r\n" + headers +
                                               "Content-Type: application/json\r\n"
                                               "Transfer-Encoding: chunked\r\n\r\n" +
                                               size + "\r\n" + large + "\r\n0\r\n\r\n");
    EXPECT_EQ(too_large.status, 413) << too_large.body;

    // Form uploads are not JSON and are rejected rather than read as {}.
    auto http = client();
    auto form = http.Post("/media", httplib::MultipartFormDataItems{{"title", "x", "", ""}});
    ASSERT_TRUE(form);
    EXPECT_EQ(form->status, 400);
    EXPECT_EQ(messageOf(form),
              "request body must be a JSON object (Content-Type: application/json), not "
              "multipart/form-data");
}

TEST_F(ApiListenerTest, PatchAndDeleteFile) {
    const Json file = createFile();
    const std::string file_id = file["id"];
    auto http = client();

    auto patched = http.Patch("/files/" + file_id,
                              R"({"folder":"shows/2025","filename":"pilot.mp4",)"
                              R"("metadata":{"a":1,"b":2},"ref":"main"})",
                              "application/json");
    ASSERT_TRUE(patched);
    EXPECT_EQ(patched->status, 200) << patched->body;
    Json body = Json::parse(patched->body);
    EXPECT_EQ(body["url"], std::string(kDeliveryBase) + "/shows/2025/pilot.mp4");
    EXPECT_EQ(body["ref"], "main");

    auto removed_key =
        http.Patch("/files/" + file_id, R"({"metadata":{"a":null}})", "application/json");
    ASSERT_TRUE(removed_key);
    body = Json::parse(removed_key->body);
    EXPECT_EQ(body["metadata"], (Json{{"b", 2}}));
    EXPECT_EQ(body["folder"], "shows/2025");

    auto unknown = http.Patch("/files/" + file_id, R"({"kind":"audio"})", "application/json");
    ASSERT_TRUE(unknown);
    EXPECT_EQ(unknown->status, 400);

    // Give the row stored bytes so the delete has something to remove.
    const std::string local = temp_.path() + "/bytes.bin";
    std::ofstream(local) << "not really a video";
    const std::string storage_key = project_id_ + "/" + file_id + ".mp4";
    ASSERT_TRUE(context_->blobs->putFile(storage_key, local, false).ok());
    auto row = context_->store->getFile(project_id_, file_id);
    ASSERT_TRUE(row.ok());
    row->storage_key = storage_key;
    ASSERT_TRUE(context_->store->updateFile(*row).ok());

    auto deleted = http.Delete("/files/" + file_id);
    ASSERT_TRUE(deleted);
    EXPECT_EQ(deleted->status, 200);
    EXPECT_EQ(Json::parse(deleted->body), (Json{{"message", file_id + " deleted"}}));
    EXPECT_FALSE(context_->blobs->stat(storage_key).ok());

    auto gone = http.Get("/files/" + file_id);
    ASSERT_TRUE(gone);
    EXPECT_EQ(gone->status, 404);
    EXPECT_EQ(messageOf(gone), "file '" + file_id + "' not found");
}

TEST_F(ApiListenerTest, PathOfAnotherProjectIsConflict) {
    MediaProperties props;
    props.kind = "video";
    props.extension = "mp4";
    const Json owned = createReadyFile(props);
    auto http = client();
    auto claimed = http.Patch("/files/" + owned["id"].get<std::string>(),
                              R"({"folder":"shared","filename":"clip.mp4"})", "application/json");
    ASSERT_TRUE(claimed);
    ASSERT_EQ(claimed->status, 200) << claimed->body;

    insertKey(createOtherProject(), kOtherKey);
    auto other = client(kOtherKey);
    auto created = other.Post("/files", R"({"url":"https://media.example.test/b.mp4"})",
                              "application/json");
    ASSERT_TRUE(created);
    ASSERT_EQ(created->status, 201) << created->body;
    const std::string foreign_id = Json::parse(created->body)["id"];

    auto moved = other.Patch("/files/" + foreign_id, R"({"folder":"shared","filename":"clip.mp4"})",
                             "application/json");
    ASSERT_TRUE(moved);
    EXPECT_EQ(moved->status, 409) << moved->body;
    EXPECT_EQ(messageOf(moved),
              "path 'shared/clip.mp4' is used by another project; choose another folder or "
              "filename");

    auto created_there = other.Post(
        "/files",
        R"({"url":"https://media.example.test/c.mp4","folder":"shared","filename":"clip.mp4"})",
        "application/json");
    ASSERT_TRUE(created_there);
    EXPECT_EQ(created_there->status, 409) << created_there->body;
}

TEST_F(ApiListenerTest, MediaLifecycle) {
    auto http = client();
    auto created =
        http.Post("/media", R"({"title":"Trailer","metadata":{"k":"v"}})", "application/json");
    ASSERT_TRUE(created);
    EXPECT_EQ(created->status, 201) << created->body;
    const Json media = Json::parse(created->body);
    const std::string media_id = media["id"];
    EXPECT_EQ(media_id.rfind("med_", 0), 0u);
    EXPECT_EQ(media["object"], "media");
    EXPECT_TRUE(media["kind"].is_null());
    EXPECT_EQ(media["title"], "Trailer");
    EXPECT_TRUE(media["files"].is_array());
    EXPECT_TRUE(media["urls"].is_object());
    expectTimestamp(media["created"], "created");

    const Json file = createFile(Json{{"url", "https://m.test/a.mp4"}, {"media_id", media_id}});
    EXPECT_EQ(file["media_id"], media_id);
    EXPECT_EQ(file["original"], true);

    auto patched =
        http.Patch("/media/" + media_id, R"({"alt":"A trailer","title":null})", "application/json");
    ASSERT_TRUE(patched);
    EXPECT_EQ(patched->status, 200) << patched->body;
    const Json updated = Json::parse(patched->body);
    EXPECT_EQ(updated["alt"], "A trailer");
    EXPECT_TRUE(updated["title"].is_null());
    ASSERT_EQ(updated["files"].size(), 1u);
    EXPECT_FALSE(updated["files"][0].contains("media_id"));
    EXPECT_EQ(updated["urls"]["original"], file["url"]);

    auto missing_media =
        http.Post("/files", R"({"url":"https://m.test/a.mp4","media_id":"med_0000000000000000"})",
                  "application/json");
    ASSERT_TRUE(missing_media);
    EXPECT_EQ(missing_media->status, 404);

    auto listed = http.Get("/media");
    ASSERT_TRUE(listed);
    EXPECT_EQ(Json::parse(listed->body).size(), 1u);

    auto deleted = http.Delete("/media/" + media_id);
    ASSERT_TRUE(deleted);
    EXPECT_EQ(deleted->status, 200);
    EXPECT_EQ(Json::parse(deleted->body)["message"], media_id + " deleted");
    auto file_gone = http.Get("/files/" + file["id"].get<std::string>());
    ASSERT_TRUE(file_gone);
    EXPECT_EQ(file_gone->status, 404);
}

TEST_F(ApiListenerTest, SignatureSignsFolderAndFilename) {
    auto http = client();
    const int64_t expiry = nowMillis() / 1000 + 600;
    auto response = http.Post(
        "/signatures",
        Json{{"filename", "clip.mp4"}, {"folder", "uploads"}, {"expiry", expiry}, {"method", "put"}}
            .dump(),
        "application/json");
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200) << response->body;
    const Json signature = Json::parse(response->body);
    EXPECT_EQ(signature["domain"], "files.test:8081");
    EXPECT_EQ(signature["filename"], "clip.mp4");
    EXPECT_EQ(signature["folder"], "uploads");
    EXPECT_EQ(signature["expiry"], expiry);
    EXPECT_EQ(signature["method"], "put");
    const std::string expected = signDeliveryPath(kKey, "uploads/clip.mp4", expiry, "put");
    EXPECT_EQ(signature["signature"], expected);
    EXPECT_EQ(signature["url"].get<std::string>().rfind(
                  std::string(kDeliveryBase) + "/uploads/clip.mp4?expiry=" +
                      std::to_string(expiry) + "&method=put&signature=",
                  0),
              0u)
        << signature["url"];

    auto defaults = http.Post("/signatures", R"({"filename":"a.jpg"})", "application/json");
    ASSERT_TRUE(defaults);
    EXPECT_EQ(defaults->status, 200);
    const Json default_signature = Json::parse(defaults->body);
    EXPECT_EQ(default_signature["method"], "get");
    EXPECT_TRUE(default_signature["folder"].is_null());
    EXPECT_GT(default_signature["expiry"].get<int64_t>(), nowMillis() / 1000 + 3500);

    auto missing = http.Post("/signatures", R"({"folder":"x"})", "application/json");
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 400);
    auto past =
        http.Post("/signatures", R"({"filename":"a.jpg","expiry":1000})", "application/json");
    ASSERT_TRUE(past);
    EXPECT_EQ(past->status, 400);
    auto bad_method =
        http.Post("/signatures", R"({"filename":"a.jpg","method":"post"})", "application/json");
    ASSERT_TRUE(bad_method);
    EXPECT_EQ(bad_method->status, 400);
}

TEST_F(ApiListenerTest, KeepAliveClientServesManyRequests) {
    auto http = client();
    http.set_keep_alive(true);
    for (int i = 0; i < 50; ++i) {
        auto response = http.Get("/tasks");
        ASSERT_TRUE(response) << i;
        ASSERT_EQ(response->status, 200) << i;
    }
}

}  // namespace
}  // namespace bitmill::api
