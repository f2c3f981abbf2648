// The scaled-out deployment: one API-only `bitmill serve --workers 0` and
// two `bitmill worker` processes on PostgreSQL and S3. A worker killed with
// SIGKILL in the middle of a task loses nothing: its lease expires, the
// other worker retries the task, and every output is published once.
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "e2e_test.h"
#include "test_services.h"

namespace bitmill::e2e {
namespace {

using std::chrono::seconds;

constexpr int kTaskCount = 50;

class ScaleOutTest : public E2eTest {
protected:
    ServerOptions scaleOutOptions(int worker_processes) {
        ServerOptions options;
        options.database_url = createPostgresDatabase();
        S3Location location = createS3Location();
        options.storage_url = location.storage_url;
        options.environment = location.environment;
        options.environment["BITMILL_SECRET"] = randomSecretHex();
        options.worker_processes = worker_processes;
        options.workers = 1;
        // A short lease, so the killed worker's task is reclaimed within
        // seconds rather than the default 30 s.
        options.extra_arguments = {"--lease-seconds", "4", "--retry-backoff-seconds", "1"};
        return options;
    }
};

// Returns the PIDs whose parent is `parent`, leaving out the worker's task
// host ("bitmill-host"), which lives as long as the worker. Task processes
// are the host's forks, created as children of the worker itself.
std::vector<pid_t> childrenOf(pid_t parent) {
    std::vector<pid_t> children;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) {
            continue;
        }
        std::ifstream in(entry.path() / "stat");
        std::string line;
        if (!std::getline(in, line)) {
            continue;
        }
        size_t close_paren = line.rfind(')');
        if (close_paren == std::string::npos) {
            continue;
        }
        std::istringstream fields(line.substr(close_paren + 1));
        char state = '?';
        long parent_pid = 0;
        fields >> state >> parent_pid;
        if (state != 'Z' && parent_pid == parent &&
            line.find("(bitmill-host)") == std::string::npos) {
            children.push_back(static_cast<pid_t>(std::stol(name)));
        }
    }
    return children;
}

TEST_F(ScaleOutTest, KilledWorkerLosesNoTask) {
    std::optional<std::filesystem::path> photo = realMediaFile("forensics/IMG_20200124_231153.jpg");
    std::optional<std::filesystem::path> clip = realMediaFile("forensics/VID_20191220_170832.mp4");
    if (!photo || !clip) {
        GTEST_SKIP() << realMediaSkipMessage("forensics/IMG_20200124_231153.jpg");
    }
    ServerProcess& bitmill = startServer(scaleOutOptions(2));
    ApiSession session = sessionFor(bitmill);
    Json image_input = session.uploadFile(*photo);
    Json video_input = session.uploadFile(*clip);

    // Every fifth task transcodes the real 1080p clip, a few seconds of work,
    // so a worker is likely busy when it is killed. The others make
    // thumbnails of the real 4000x3000 photo.
    std::vector<std::string> ids;
    for (int i = 0; i < kTaskCount; ++i) {
        Json body = i % 5 == 0 ? Json{{"kind", "video"},
                                      {"file_id", video_input["id"]},
                                      {"width", 320},
                                      {"format", "mp4"}}
                               : Json{{"kind", "image"},
                                      {"file_id", image_input["id"]},
                                      {"width", 160 + i},
                                      {"format", "jpeg"}};
        ids.push_back(session.createTask(body)["id"]);
    }

    // Kill worker 0 while it has a task process running.
    auto deadline = std::chrono::steady_clock::now() + seconds(120);
    bool killed_mid_task = false;
    while (std::chrono::steady_clock::now() < deadline) {
        if (!childrenOf(bitmill.workerPid(0)).empty()) {
            bitmill.killWorker(0);
            killed_mid_task = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(killed_mid_task) << "worker 0 never ran a task process:\n" << bitmill.logTail();

    std::set<std::string> output_ids;
    int retried = 0;
    for (const std::string& id : ids) {
        Json task = session.waitForTask(id, seconds(600));
        ASSERT_TRUE(taskCompleted(task)) << bitmill.logTail();
        std::string output_id = task["output"]["id"];
        EXPECT_TRUE(output_ids.insert(output_id).second) << "output shared by two tasks: " << id;
        if (task.value("attempts", 1) > 1) {
            ++retried;
        }
    }
    EXPECT_EQ(output_ids.size(), static_cast<size_t>(kTaskCount));
    EXPECT_GE(retried, 1) << "the killed worker's task was not retried";

    // Each output exists exactly once: the file list contains the two inputs
    // and one file per task. Two sample outputs are downloaded and decoded.
    std::vector<Json> files;
    for (int page = 1;; ++page) {
        Json batch = session.getJson("/files?limit=100&page=" + std::to_string(page));
        if (batch.empty()) {
            break;
        }
        for (const Json& file : batch) {
            files.push_back(file);
        }
    }
    EXPECT_EQ(files.size(), static_cast<size_t>(kTaskCount + 2));
    std::map<std::string, int> outputs_seen;
    for (const Json& file : files) {
        if (output_ids.count(file["id"]) > 0) {
            ++outputs_seen[file["id"]];
        }
    }
    EXPECT_EQ(outputs_seen.size(), static_cast<size_t>(kTaskCount));
    for (const auto& [id, count] : outputs_seen) {
        EXPECT_EQ(count, 1) << id;
    }
    Json sample = session.getTask(ids[1]);
    ProbeResult probe = probeMedia(downloadOutput(session, sample));
    const Json* image = probe.stream("video");
    ASSERT_NE(image, nullptr);
    EXPECT_EQ((*image)["width"], 161);
    Json video = session.getTask(ids[0]);
    ProbeResult video_probe = probeMedia(downloadOutput(session, video));
    const Json* video_stream = video_probe.stream("video");
    ASSERT_NE(video_stream, nullptr);
    EXPECT_EQ((*video_stream)["width"], 320);
    EXPECT_EQ((*video_stream)["codec_name"], "h264");
}

TEST_F(ScaleOutTest, CancelReachesTaskOnWorker) {
    std::optional<std::filesystem::path> clip = realMediaFile("forensics/VID_20191220_170832.mp4");
    if (!clip) {
        GTEST_SKIP() << realMediaSkipMessage("forensics/VID_20191220_170832.mp4");
    }
    ServerProcess& bitmill = startServer(scaleOutOptions(1));
    ApiSession session = sessionFor(bitmill);
    Json input = session.uploadFile(*clip);
    std::string id = session
                         .createTask({{"kind", "video"},
                                      {"file_id", input["id"]},
                                      {"width", 1920},
                                      {"format", "webm"}})["id"];
    session.waitForStatus(id, "processing", seconds(60));
    auto deadline = std::chrono::steady_clock::now() + seconds(20);
    while (childrenOf(bitmill.workerPid(0)).empty() &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_FALSE(childrenOf(bitmill.workerPid(0)).empty()) << "no task process on the worker";

    HttpResponse cancel = session.api().post("/tasks/" + id + "/cancel", Json::object());
    ASSERT_EQ(cancel.status, 200) << cancel.describe();
    // The worker learns of the cancel at its next heartbeat (at most 2 s).
    deadline = std::chrono::steady_clock::now() + seconds(10);
    while (!childrenOf(bitmill.workerPid(0)).empty() &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(childrenOf(bitmill.workerPid(0)).empty())
        << "the task process outlived the cancel:\n"
        << bitmill.logTail();
    EXPECT_EQ(session.getTask(id)["status"], "cancelled");
}

TEST_F(ScaleOutTest, WorkerServesHealthAndMetrics) {
    ServerProcess& bitmill = startServer(scaleOutOptions(1));
    ApiSession session = sessionFor(bitmill);
    Json file = session.uploadFile(corpusFile("v-odd-1921x1081.webm"));
    Json task = session.runTask({{"kind", "image"}, {"file_id", file["id"]}, {"width", 64}});
    ASSERT_TRUE(taskCompleted(task));

    HttpClient health(bitmill.workerHealthUrl(0), "");
    HttpResponse healthz = health.get("/healthz");
    EXPECT_EQ(healthz.status, 200) << healthz.describe();
    HttpResponse metrics = health.get("/metrics");
    ASSERT_EQ(metrics.status, 200) << metrics.describe();
    EXPECT_NE(metrics.body.find("bitmill_tasks_claimed_total{kind=\"image\"} 1"),
              std::string::npos)
        << metrics.body;
    EXPECT_NE(metrics.body.find("bitmill_task_attempt_duration_seconds_count{kind=\"image\","
                                "outcome=\"completed\"} 1"),
              std::string::npos)
        << metrics.body;
}

TEST_F(ScaleOutTest, DeliveryRedirectsToPresignedUrl) {
    ServerOptions options = scaleOutOptions(1);
    options.extra_arguments.push_back("--delivery-redirect-seconds");
    options.extra_arguments.push_back("120");
    ServerProcess& bitmill = startServer(options);
    ApiSession session = sessionFor(bitmill);
    std::filesystem::path source = corpusFile("v-odd-1921x1081.webm");
    Json file = session.uploadFile(source);

    HttpResponse redirect = fetchUrl(file["url"]);
    ASSERT_EQ(redirect.status, 302) << redirect.describe();
    std::string location = redirect.header("Location");
    EXPECT_NE(location.find("X-Amz-Signature="), std::string::npos) << location;
    EXPECT_NE(location.find("X-Amz-Expires=120"), std::string::npos) << location;

    HttpResponse object = fetchUrl(location);
    ASSERT_EQ(object.status, 200) << object.describe();
    EXPECT_EQ(object.body, readFileBytes(source)) << "the presigned URL serves the upload";
    HttpResponse ranged = fetchUrl(location, {{"Range", "bytes=0-9"}});
    EXPECT_EQ(ranged.status, 206) << ranged.describe();
    EXPECT_EQ(ranged.body.size(), 10u);

    HttpResponse head = session.delivery().head(file["url"].get<std::string>().substr(
        file["url"].get<std::string>().find('/', std::string("http://").size())));
    EXPECT_EQ(head.status, 200) << "HEAD is answered directly: " << head.describe();
}

TEST_F(ScaleOutTest, IdempotencyKeyHoldsAcrossApiProcesses) {
    ServerOptions options = scaleOutOptions(1);
    ServerProcess& first = startServer(options);
    // A second API process on the same database and storage, without workers.
    ServerOptions second_options = options;
    second_options.worker_processes = 0;
    second_options.workers = 0;
    second_options.api_key = first.apiKey();
    ServerProcess& second = startServer(second_options);
    ApiSession first_session = sessionFor(first);
    Json file = first_session.uploadFile(corpusFile("v-odd-1921x1081.webm"));
    Json body = {{"kind", "image"}, {"file_id", file["id"]}, {"width", 48}};

    // The same key sent to both processes at once, several times.
    std::vector<std::string> ids(8);
    std::vector<int> statuses(8);
    std::vector<std::thread> clients;
    for (int i = 0; i < 8; ++i) {
        clients.emplace_back([&, i] {
            ServerProcess& target = i % 2 == 0 ? first : second;
            HttpClient client(target.apiUrl(), first.apiKey());
            HttpResponse response = client.post("/tasks", body, {{"Idempotency-Key", "once-1"}});
            statuses[i] = response.status;
            if (response.status == 201) {
                ids[i] = response.json().value("id", "");
            }
        });
    }
    for (std::thread& client : clients) {
        client.join();
    }
    for (int i = 0; i < 8; ++i) {
        EXPECT_EQ(statuses[i], 201) << "request " << i;
        EXPECT_EQ(ids[i], ids[0]) << "request " << i << " created another task";
    }
    Json tasks = first_session.getJson("/tasks");
    EXPECT_EQ(tasks.size(), 1u) << tasks.dump();
}

}  // namespace
}  // namespace bitmill::e2e
