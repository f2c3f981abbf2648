// The API listener in process: a real SQLite store and local blob store in
// a temporary folder, the listener on a free port, and httplib::Client
// requests checking statuses, bodies and headers.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "api/api.h"
#include "api/signing.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/json.h"
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
    const Json file = createFile();
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
