// The JSON API against the contract: authentication, the exact shape and
// JSON types of tasks and files, validation messages, bare and envelope
// response modes, pagination, idempotent POSTs, project isolation, and the
// files, media and tasks-config endpoints.
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "e2e_test.h"

namespace bitmill::e2e {
namespace {

class ApiTest : public E2eTest {
protected:
    // A 1 s 320x240 H.264/AAC clip uploaded to the default server.
    Json uploadSmallClip(const std::string& remote_path = "inputs/small.mp4") {
        VideoSpec spec;
        spec.seconds = 1;
        return api().uploadFile(makeVideo(spec), remote_path);
    }

    std::string smallClipId() {
        if (small_clip_id_.empty()) {
            small_clip_id_ = uploadSmallClip().at("id").get<std::string>();
        }
        return small_clip_id_;
    }

    Json cheapTaskBody() {
        return {{"kind", "image"}, {"file_id", smallClipId()}, {"width", 64}, {"format", "jpeg"}};
    }

private:
    std::string small_clip_id_;
};

constexpr char kAuthMessage[] = "missing or invalid API key";

TEST_F(ApiTest, MissingKeyIs401WithMessage) {
    HttpClient anonymous(server().apiUrl());
    HttpResponse response = anonymous.get("/tasks");
    ASSERT_EQ(response.status, 401) << response.describe();
    EXPECT_EQ(response.json(), Json({{"message", kAuthMessage}})) << response.describe();
}

TEST_F(ApiTest, WrongKeyIs401WithMessage) {
    HttpClient wrong(server().apiUrl(), randomApiKey());
    HttpResponse response = wrong.post("/tasks", {{"kind", "video"}, {"url", "https://a/b.mp4"}});
    ASSERT_EQ(response.status, 401) << response.describe();
    EXPECT_EQ(response.json(), Json({{"message", kAuthMessage}})) << response.describe();
}

TEST_F(ApiTest, CreatedTaskHasStrictFieldTypes) {
    std::string file_id = smallClipId();
    HttpResponse response =
        api().api().post("/tasks", {{"kind", "video"}, {"file_id", file_id}, {"width", 160}});
    ASSERT_EQ(response.status, 201) << response.describe();
    Json task = response.json();

    expectTaskShape(task);
    EXPECT_EQ(task["kind"], "video");
    EXPECT_EQ(task["status"], "pending") << "a new task is queued";
    EXPECT_EQ(task["progress"], 0);
    EXPECT_TRUE(task["error"].is_null());
    EXPECT_TRUE(task["output"].is_null()) << "no output before the task ran";
    ASSERT_TRUE(task["input"].is_object());
    EXPECT_EQ(task["input"].value("id", ""), file_id) << "input is the File object";
    expectFileShape(task["input"]);
    ASSERT_TRUE(task["options"].is_object());
    EXPECT_TRUE(task["options"].value("width", Json()).is_number_integer()) << task.dump();
    EXPECT_EQ(task["options"].value("width", Json()), 160);
    EXPECT_FALSE(task["options"].contains("kind")) << "options echo everything but kind";
    EXPECT_FALSE(task["options"].contains("file_id")) << task.dump();
    if (task.contains("created_by") && !task["created_by"].is_null()) {
        EXPECT_EQ(task["created_by"].get<std::string>().rfind("key_", 0), 0u) << task.dump();
    }
    EXPECT_EQ(api().getTask(task["id"])["id"], task["id"]);
}

TEST_F(ApiTest, CompletedTaskOutputIsStrictFile) {
    Json task = api().runTask({{"kind", "video"}, {"file_id", smallClipId()}, {"width", 160}});
    ASSERT_TRUE(taskCompleted(task));
    expectTaskShape(task);
    EXPECT_EQ(task["progress"], 100);
    EXPECT_TRUE(task["error"].is_null());
    ASSERT_TRUE(task["output"].is_object()) << task.dump();
    const Json& output = task["output"];
    expectFileShape(output);
    EXPECT_EQ(output["object"], "source");
    EXPECT_EQ(output["kind"], "video");
    EXPECT_EQ(output["status"], "ready");
    EXPECT_EQ(output["media_id"], task["input"]["media_id"]) << "outputs join the input's media";
    EXPECT_EQ(output.value("width", 0), 160);
    EXPECT_EQ(output.value("height", 0), 120);
    EXPECT_TRUE(containsText(output["type"].get<std::string>(), "video/mp4")) << output.dump();
}

TEST_F(ApiTest, OptionsObjectIsAcceptedAndTopLevelWins) {
    Json body = {{"kind", "video"},
                 {"file_id", smallClipId()},
                 {"width", 96},
                 {"options", {{"width", 200}, {"format", "webm"}}}};
    HttpResponse response = api().api().post("/tasks", body);
    ASSERT_EQ(response.status, 201) << response.describe();
    Json task = response.json();
    EXPECT_EQ(task["options"].value("width", Json()), 96) << task.dump();
    EXPECT_EQ(task["options"].value("format", Json()), "webm") << task.dump();
    Json done = api().waitForTask(task["id"]);
    ASSERT_TRUE(taskCompleted(done));
    EXPECT_EQ(done["output"].value("width", 0), 96);
    ProbeResult probe = probeMedia(downloadOutput(done));
    EXPECT_TRUE(containsText(probe.formatName(), "webm")) << probe.formatName();
}

TEST_F(ApiTest, UnknownTaskIdIs404WithMessage) {
    HttpResponse response = api().api().get("/tasks/task_0000000000000000");
    ASSERT_EQ(response.status, 404) << response.describe();
    EXPECT_FALSE(errorMessage(response).empty()) << response.describe();
}

TEST_F(ApiTest, UnknownInputFileIsNamed) {
    HttpResponse response =
        api().api().post("/tasks", {{"kind", "video"}, {"file_id", "file_0000000000000000"}});
    EXPECT_TRUE(response.status == 404 || response.status == 400) << response.describe();
    EXPECT_TRUE(containsText(errorMessage(response), "file_0000000000000000"))
        << response.describe();
}

TEST_F(ApiTest, MalformedJsonBodyIs400) {
    HttpResponse response = api().api().send("POST", "/tasks", "{\"kind\": ", "application/json");
    ASSERT_EQ(response.status, 400) << response.describe();
    EXPECT_FALSE(errorMessage(response).empty()) << response.describe();
}

// ---------------------------------------------------------------- validation

struct ValidationCase {
    std::string name;
    // "$FILE" in a string value is replaced by the id of an uploaded clip.
    Json body;
    // Words the 400 message must contain (case-insensitive).
    std::vector<std::string> expected_words;
};

void PrintTo(const ValidationCase& value, std::ostream* out) { *out << value.name; }

class TaskValidationTest : public ApiTest,
                           public ::testing::WithParamInterface<ValidationCase> {};

TEST_P(TaskValidationTest, RejectsWith400NamingFieldAndValue) {
    Json body = GetParam().body;
    for (auto& [key, value] : body.items()) {
        if (value == "$FILE") {
            value = smallClipId();
        }
    }
    HttpResponse response = api().api().post("/tasks", body);
    ASSERT_EQ(response.status, 400) << response.describe();
    std::string message = errorMessage(response);
    ASSERT_FALSE(message.empty()) << response.describe();
    for (const auto& word : GetParam().expected_words) {
        EXPECT_TRUE(containsText(message, word))
            << "message '" << message << "' does not mention '" << word << "'";
    }
}

const ValidationCase kValidationCases[] = {
    {"UnknownKind",
     {{"kind", "transmogrify"}, {"file_id", "$FILE"}},
     {"kind", "transmogrify", "video"}},
    {"MissingKind", {{"file_id", "$FILE"}, {"width", 10}}, {"kind"}},
    {"MissingInput", {{"kind", "video"}, {"width", 10}}, {"url"}},
    {"UnknownOption",
     {{"kind", "video"}, {"file_id", "$FILE"}, {"flavour", "spicy"}},
     {"flavour"}},
    {"FitStretch",
     {{"kind", "video"}, {"file_id", "$FILE"}, {"fit", "stretch"}},
     {"fit", "stretch", "fill", "cover", "contain"}},
    {"QualityWord",
     {{"kind", "image"}, {"file_id", "$FILE"}, {"quality", "ultra"}},
     {"quality", "ultra", "very_high"}},
    {"QualityOutOfRange",
     {{"kind", "image"}, {"file_id", "$FILE"}, {"quality", 150}},
     {"quality", "150", "100"}},
    {"WebmWithH264",
     {{"kind", "video"}, {"file_id", "$FILE"}, {"format", "webm"}, {"codec", "h264"}},
     {"codec", "h264", "webm"}},
    {"FolderTraversal",
     {{"kind", "video"}, {"file_id", "$FILE"}, {"folder", "../x"}},
     {"folder", "../x"}},
    {"WidthNotANumber",
     {{"kind", "video"}, {"file_id", "$FILE"}, {"width", "abc"}},
     {"width", "abc"}},
    {"UnknownImageFormat",
     {{"kind", "image"}, {"file_id", "$FILE"}, {"format", "bmp"}},
     {"format", "bmp", "webp"}},
    {"UnknownPosition",
     {{"kind", "image"}, {"file_id", "$FILE"}, {"position", "middle"}},
     {"position", "middle", "center"}},
    {"AudioChannelsSix",
     {{"kind", "audio"}, {"file_id", "$FILE"}, {"channels", 6}},
     {"channels", "6"}},
};

INSTANTIATE_TEST_SUITE_P(Cases, TaskValidationTest, ::testing::ValuesIn(kValidationCases),
                         [](const auto& info) { return info.param.name; });

// ------------------------------------------------------------ response modes

void expectEnvelopeMeta(const Json& body, const std::string& type) {
    ASSERT_TRUE(body.is_object()) << body.dump();
    for (const char* key : {"meta", "data", "error", "links"}) {
        EXPECT_TRUE(body.contains(key)) << "envelope lacks '" << key << "': " << body.dump();
    }
    const Json& meta = body.value("meta", Json::object());
    EXPECT_TRUE(isPrefixedId(meta.value("request_id", Json()), "req_"));
    EXPECT_TRUE(isPrefixedId(meta.value("project_id", Json()), "prj_"));
    EXPECT_TRUE(isPrefixedId(meta.value("org_id", Json()), "org_"));
    EXPECT_TRUE(meta.value("version", Json()).is_string()) << meta.dump();
    EXPECT_EQ(meta.value("type", Json()), type) << meta.dump();
}

class ResponseModeTest : public ApiTest {
protected:
    void SetUp() override {
        task_ = api().createTask(cheapTaskBody());
        task_path_ = "/tasks/" + task_["id"].get<std::string>();
    }

    Json getWith(const Headers& headers) {
        HttpResponse response = api().api().get(task_path_, headers);
        EXPECT_EQ(response.status, 200) << response.describe();
        return response.json();
    }

    static bool isEnvelope(const Json& body) { return body.contains("meta") && body.contains("data"); }
    static bool isBareTask(const Json& body) {
        return body.value("object", "") == "task" && !body.contains("data");
    }

    Json task_;
    std::string task_path_;
};

TEST_F(ResponseModeTest, Version20250101GetsEnvelope) {
    Json body = getWith({{"Accept-Version", "2025-01-01"}});
    expectEnvelopeMeta(body, "object");
    EXPECT_EQ(body["data"].value("id", ""), task_["id"]);
    EXPECT_TRUE(body["error"].is_null());
    ASSERT_TRUE(body["links"].is_object());
    EXPECT_EQ(body["links"].value("self", "").rfind("http", 0), 0u) << body["links"].dump();
    EXPECT_TRUE(body["links"].contains("parent")) << body["links"].dump();
}

TEST_F(ResponseModeTest, DateBefore20250820GetsEnvelope) {
    EXPECT_TRUE(isEnvelope(getWith({{"Accept-Version", "2025-06-30"}})));
}

TEST_F(ResponseModeTest, Version20250820GetsBareObject) {
    Json body = getWith({{"Accept-Version", "2025-08-20"}});
    EXPECT_TRUE(isBareTask(body)) << body.dump();
    EXPECT_EQ(body.value("id", ""), task_["id"]);
}

TEST_F(ResponseModeTest, LatestAndLaterDatesGetBare) {
    EXPECT_TRUE(isBareTask(getWith({{"Accept-Version", "latest"}})));
    EXPECT_TRUE(isBareTask(getWith({{"Accept-Version", "2026-01-01"}})));
}

TEST_F(ResponseModeTest, NoVersionHeaderGetsBare) { EXPECT_TRUE(isBareTask(getWith({}))); }

TEST_F(ResponseModeTest, UnderscoreHeaderSpellingIsHonoured) {
    Json body = getWith({{"ACCEPT_VERSION", "2025-01-01"}});
    EXPECT_TRUE(isEnvelope(body)) << body.dump();
}

TEST_F(ResponseModeTest, FernSdk092GetsEnvelopeDespiteNewVersion) {
    Json body = getWith({{"Accept-Version", "2025-08-20"},
                         {"X-Fern-SDK-Name", "@ittybit/sdk"},
                         {"X-Fern-SDK-Version", "0.9.2"}});
    EXPECT_TRUE(isEnvelope(body)) << body.dump();
}

TEST_F(ResponseModeTest, SdkVersionRulesWithoutVersionHeader) {
    EXPECT_TRUE(isBareTask(getWith({{"X-Fern-SDK-Name", "ittybit"},
                                    {"X-Fern-SDK-Version", "1.0.0"}})));
    EXPECT_TRUE(isBareTask(getWith({{"X-Fern-SDK-Name", "@ittybit/sdk"},
                                    {"X-Fern-SDK-Version", "0.10.1"}})));
    EXPECT_TRUE(isEnvelope(getWith({{"X-Fern-SDK-Name", "ittybit"},
                                    {"X-Fern-SDK-Version", "0.8.4"}})));
}

TEST_F(ResponseModeTest, EnvelopeErrorHasNullData) {
    HttpResponse response =
        api().api().get("/tasks/task_0000000000000000", {{"Accept-Version", "2025-01-01"}});
    ASSERT_EQ(response.status, 404) << response.describe();
    Json body = response.json();
    expectEnvelopeMeta(body, "error");
    EXPECT_TRUE(body["data"].is_null()) << body.dump();
    ASSERT_TRUE(body["error"].is_object()) << body.dump();
    EXPECT_FALSE(body["error"].value("message", "").empty()) << body.dump();
}

TEST_F(ResponseModeTest, EnvelopeListHasTotalsAndLinks) {
    api().createTask(cheapTaskBody());
    api().createTask(cheapTaskBody());
    HttpResponse response = api().api().get("/tasks?limit=2", {{"Accept-Version", "2025-01-01"}});
    ASSERT_EQ(response.status, 200) << response.describe();
    Json body = response.json();
    expectEnvelopeMeta(body, "list");
    ASSERT_TRUE(body["data"].is_array()) << body.dump();
    EXPECT_EQ(body["data"].size(), 2u);
    const Json& meta = body["meta"];
    EXPECT_EQ(meta.value("total", Json()), 3) << meta.dump();
    EXPECT_EQ(meta.value("limit", Json()), 2) << meta.dump();
    EXPECT_EQ(meta.value("page", Json()), 1) << meta.dump();
    EXPECT_EQ(meta.value("pages", Json()), 2) << meta.dump();
    const Json& links = body["links"];
    for (const char* key : {"self", "first", "next", "prev", "last"}) {
        EXPECT_TRUE(links.contains(key)) << "links lack '" << key << "': " << links.dump();
    }
    EXPECT_TRUE(links.value("prev", Json("x")).is_null()) << "no previous page: " << links.dump();
    EXPECT_EQ(links.value("next", "").rfind("http", 0), 0u) << links.dump();
}

TEST_F(ResponseModeTest, BareListIsArrayWithLinkHeader) {
    api().createTask(cheapTaskBody());
    api().createTask(cheapTaskBody());
    HttpResponse response = api().api().get("/tasks?limit=2");
    ASSERT_EQ(response.status, 200) << response.describe();
    Json body = response.json();
    ASSERT_TRUE(body.is_array()) << body.dump();
    EXPECT_EQ(body.size(), 2u);
    std::string link = response.header("Link");
    EXPECT_TRUE(containsText(link, "rel=\"next\"")) << "Link: " << link;
    EXPECT_TRUE(containsText(link, "rel=\"first\"")) << "Link: " << link;
    EXPECT_TRUE(containsText(link, "rel=\"last\"")) << "Link: " << link;
}

TEST_F(ResponseModeTest, BareDeleteAnswersMessage) {
    HttpResponse created = api().api().post("/media", {{"title", "to delete"}});
    ASSERT_EQ(created.status, 201) << created.describe();
    std::string id = created.json()["id"];
    HttpResponse response = api().api().del("/media/" + id);
    ASSERT_EQ(response.status, 200) << response.describe();
    EXPECT_EQ(response.json(), Json({{"message", id + " deleted"}}));
}

// ----------------------------------------------------------------- pagination

TEST_F(ApiTest, PaginatesNewestFirst) {
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
        ids.push_back(api().createTask(cheapTaskBody())["id"]);
    }
    std::vector<std::string> seen;
    for (int page = 1; page <= 3; ++page) {
        Json list = api().getJson("/tasks?limit=2&page=" + std::to_string(page));
        ASSERT_TRUE(list.is_array()) << list.dump();
        EXPECT_EQ(list.size(), page < 3 ? 2u : 1u) << "page " << page;
        for (const auto& task : list) {
            seen.push_back(task["id"]);
        }
    }
    std::vector<std::string> newest_first(ids.rbegin(), ids.rend());
    EXPECT_EQ(seen, newest_first);
}

TEST_F(ApiTest, PagePastEndIsEmptyArray) {
    api().createTask(cheapTaskBody());
    Json list = api().getJson("/tasks?limit=2&page=5");
    EXPECT_EQ(list, Json::array());
}

TEST_F(ApiTest, OutOfRangeLimitIs400) {
    for (const char* query : {"/tasks?limit=0", "/tasks?limit=101", "/tasks?page=0"}) {
        HttpResponse response = api().api().get(query);
        EXPECT_EQ(response.status, 400) << response.describe();
    }
}

TEST_F(ApiTest, ListFiltersByStatusAndKind) {
    api().createTask(cheapTaskBody());
    Json video = api().createTask({{"kind", "video"}, {"file_id", smallClipId()}, {"width", 64}});
    Json videos = api().getJson("/tasks?kind=video");
    ASSERT_TRUE(videos.is_array());
    ASSERT_EQ(videos.size(), 1u) << videos.dump();
    EXPECT_EQ(videos[0]["id"], video["id"]);
    api().waitForTask(video["id"]);
    Json completed = api().getJson("/tasks?status=completed&kind=video");
    ASSERT_EQ(completed.size(), 1u) << completed.dump();
}

// --------------------------------------------------------------- idempotency

TEST_F(ApiTest, IdempotencyKeyReplaysFirstResponse) {
    Json body = cheapTaskBody();
    Headers headers = {{"Idempotency-Key", "retry-1"}};
    HttpResponse first = api().api().post("/tasks", body, headers);
    ASSERT_EQ(first.status, 201) << first.describe();
    HttpResponse second = api().api().post("/tasks", body, headers);
    ASSERT_EQ(second.status, 201) << second.describe();
    EXPECT_EQ(second.json()["id"], first.json()["id"]);
    EXPECT_EQ(api().getJson("/tasks").size(), 1u) << "the replay created no second task";
}

TEST_F(ApiTest, IdempotencyKeyWithOtherBodyIs409) {
    Headers headers = {{"Idempotency-Key", "retry-2"}};
    HttpResponse first = api().api().post("/tasks", cheapTaskBody(), headers);
    ASSERT_EQ(first.status, 201) << first.describe();
    Json other = cheapTaskBody();
    other["width"] = 32;
    HttpResponse second = api().api().post("/tasks", other, headers);
    EXPECT_EQ(second.status, 409) << second.describe();
    EXPECT_FALSE(errorMessage(second).empty());
}

// ----------------------------------------------------------- keys, projects

std::string findKey(const std::string& text) {
    static const std::regex kKey("bm_[0-9A-Za-z]{40}");
    std::smatch match;
    return std::regex_search(text, match, kKey) ? match.str() : "";
}

TEST_F(ApiTest, CliCreatedKeyAuthenticates) {
    server();
    CommandResult created = server().runAdminCli({"keys", "create"});
    ASSERT_TRUE(created.ok()) << created.describe();
    std::string key = findKey(created.stdout_text + created.stderr_text);
    ASSERT_FALSE(key.empty()) << "no bm_ key in the output of keys create: "
                              << created.stdout_text;
    EXPECT_NE(key, server().apiKey());
    HttpClient client(server().apiUrl(), key);
    HttpResponse response = client.get("/tasks");
    EXPECT_EQ(response.status, 200) << response.describe();

    CommandResult listed = server().runAdminCli({"keys", "list"});
    ASSERT_TRUE(listed.ok()) << listed.describe();
    EXPECT_EQ(findKey(listed.stdout_text), "") << "keys list must not print whole keys";
}

TEST_F(ApiTest, GeneratedKeyIsPrintedOnce) {
    ServerOptions options;
    options.pass_api_key = false;
    ServerProcess& bitmill = startServer(options);
    std::string key = findKey(readFileBytes(bitmill.logPath()));
    ASSERT_FALSE(key.empty()) << "no bm_ key printed on first start:\n" << bitmill.logTail();
    HttpClient client(bitmill.apiUrl(), key);
    EXPECT_EQ(client.get("/tasks").status, 200);

    bitmill.stop();
    size_t first_log_size = readFileBytes(bitmill.logPath()).size();
    bitmill.restart();
    std::string second_start = readFileBytes(bitmill.logPath()).substr(first_log_size);
    EXPECT_EQ(findKey(second_start), "") << "the key is printed only when it is created";
    HttpClient after_restart(bitmill.apiUrl(), key);
    EXPECT_EQ(after_restart.get("/tasks").status, 200) << "the generated key is stored";
}

TEST_F(ApiTest, OtherProjectSeesNothingOfDefault) {
    std::string file_id = smallClipId();
    Json task = api().createTask(cheapTaskBody());
    CommandResult created = server().runAdminCli({"keys", "create", "--project", "other"});
    if (!created.ok()) {
        // The CLI takes an existing project id and nothing creates a second
        // project, so isolation cannot be checked end to end yet.
        GTEST_SKIP() << "no second project: `bitmill keys create --project other` failed: "
                     << created.describe();
    }
    std::string key = findKey(created.stdout_text + created.stderr_text);
    ASSERT_FALSE(key.empty()) << created.stdout_text;

    HttpClient other(server().apiUrl(), key);
    EXPECT_EQ(other.get("/tasks/" + task["id"].get<std::string>()).status, 404);
    EXPECT_EQ(other.get("/files/" + file_id).status, 404);
    EXPECT_EQ(other.get("/media/" + task["input"]["media_id"].get<std::string>()).status, 404);
    HttpResponse list = other.get("/tasks");
    ASSERT_EQ(list.status, 200) << list.describe();
    EXPECT_EQ(list.json(), Json::array());
    HttpResponse foreign_input =
        other.post("/tasks", {{"kind", "image"}, {"file_id", file_id}});
    EXPECT_TRUE(foreign_input.status == 404 || foreign_input.status == 400)
        << "a foreign file id must not be usable: " << foreign_input.describe();
}

// -------------------------------------------------------------------- files

TEST_F(ApiTest, FilesListGetAndDelete) {
    Json file = uploadSmallClip("crud/clip.mp4");
    std::string id = file["id"];
    Json list = api().getJson("/files");
    ASSERT_TRUE(list.is_array());
    ASSERT_EQ(list.size(), 1u) << list.dump();
    EXPECT_EQ(list[0]["id"], id);
    expectFileShape(list[0]);

    Json fetched = api().getJson("/files/" + id);
    EXPECT_EQ(fetched["id"], id);
    EXPECT_EQ(fetched["media_id"], file["media_id"]);
    EXPECT_EQ(fetchUrl(fetched["url"]).status, 200);

    HttpResponse deleted = api().api().del("/files/" + id);
    ASSERT_EQ(deleted.status, 200) << deleted.describe();
    EXPECT_EQ(deleted.json(), Json({{"message", id + " deleted"}}));
    EXPECT_EQ(api().api().get("/files/" + id).status, 404);
    EXPECT_EQ(fetchUrl(fetched["url"]).status, 404) << "bytes are removed with the file";
}

TEST_F(ApiTest, FilePatchMergesMetadataAndRemovesNullKeys) {
    std::string id = uploadSmallClip("crud/clip.mp4")["id"];
    HttpResponse first =
        api().api().patch("/files/" + id, {{"metadata", {{"a", 1}, {"b", "two"}}}});
    ASSERT_EQ(first.status, 200) << first.describe();
    EXPECT_EQ(first.json()["metadata"], Json({{"a", 1}, {"b", "two"}}));

    HttpResponse second = api().api().patch("/files/" + id, {{"metadata", {{"a", nullptr}}}});
    ASSERT_EQ(second.status, 200) << second.describe();
    EXPECT_EQ(second.json()["metadata"], Json({{"b", "two"}}));
    EXPECT_EQ(api().getJson("/files/" + id)["metadata"], Json({{"b", "two"}}));
}

TEST_F(ApiTest, FilePatchMovesDeliveryPath) {
    std::string id = uploadSmallClip("crud/clip.mp4")["id"];
    HttpResponse patched =
        api().api().patch("/files/" + id, {{"folder", "moved"}, {"filename", "renamed.mp4"}});
    ASSERT_EQ(patched.status, 200) << patched.describe();
    Json file = patched.json();
    EXPECT_EQ(file["folder"], "moved");
    EXPECT_EQ(file["filename"], "renamed.mp4");
    std::string url = file["url"];
    const std::string expected_path = "/moved/renamed.mp4";
    EXPECT_TRUE(url.size() > expected_path.size() &&
                url.compare(url.size() - expected_path.size(), expected_path.size(),
                            expected_path) == 0)
        << url;
    EXPECT_EQ(fetchUrl(url).status, 200) << url;

    HttpResponse invalid = api().api().patch("/files/" + id, {{"folder", "../escape"}});
    EXPECT_EQ(invalid.status, 400) << invalid.describe();
}

// -------------------------------------------------------------------- media

TEST_F(ApiTest, MediaCreateGetPatchDelete) {
    HttpResponse created = api().api().post(
        "/media", {{"title", "Holiday"}, {"alt", "a beach"}, {"metadata", {{"trip", 7}}}});
    ASSERT_EQ(created.status, 201) << created.describe();
    Json media = created.json();
    EXPECT_TRUE(isPrefixedId(media["id"], "med_"));
    EXPECT_EQ(media["object"], "media");
    EXPECT_EQ(media["title"], "Holiday");
    EXPECT_EQ(media["alt"], "a beach");
    EXPECT_EQ(media["metadata"], Json({{"trip", 7}}));
    ASSERT_TRUE(media.contains("kind")) << media.dump();
    EXPECT_TRUE(media["kind"].is_null()) << "no files yet";
    EXPECT_EQ(media["files"], Json::array());
    EXPECT_EQ(media["urls"], Json::object());
    EXPECT_TRUE(isRfc3339Millis(media["created"]));
    EXPECT_TRUE(isRfc3339Millis(media["updated"]));

    std::string id = media["id"];
    EXPECT_EQ(api().getJson("/media/" + id)["title"], "Holiday");
    HttpResponse patched = api().api().patch("/media/" + id, {{"title", "Renamed"}});
    ASSERT_EQ(patched.status, 200) << patched.describe();
    EXPECT_EQ(patched.json()["title"], "Renamed");
    EXPECT_EQ(patched.json()["alt"], "a beach") << "PATCH leaves other fields alone";

    Json list = api().getJson("/media");
    ASSERT_TRUE(list.is_array());
    EXPECT_EQ(list.size(), 1u);

    HttpResponse deleted = api().api().del("/media/" + id);
    ASSERT_EQ(deleted.status, 200) << deleted.describe();
    EXPECT_EQ(deleted.json(), Json({{"message", id + " deleted"}}));
    EXPECT_EQ(api().api().get("/media/" + id).status, 404);
}

TEST_F(ApiTest, MediaDeleteRemovesItsFiles) {
    Json file = uploadSmallClip();
    std::string media_id = file["media_id"];
    Json media = api().getJson("/media/" + media_id);
    EXPECT_EQ(media["kind"], "video");
    ASSERT_EQ(media["files"].size(), 1u) << media.dump();
    EXPECT_FALSE(media["files"][0].contains("media_id")) << "media file items omit media_id";

    HttpResponse deleted = api().api().del("/media/" + media_id);
    ASSERT_EQ(deleted.status, 200) << deleted.describe();
    EXPECT_EQ(api().api().get("/files/" + file["id"].get<std::string>()).status, 404);
    EXPECT_EQ(fetchUrl(file["url"]).status, 404);
}

// -------------------------------------------------------------- tasks-config

TEST_F(ApiTest, TasksConfigIsUnwrappedMapOfKinds) {
    HttpResponse response = api().api().get("/tasks-config", {{"Accept-Version", "2025-01-01"}});
    ASSERT_EQ(response.status, 200) << response.describe();
    Json body = response.json();
    ASSERT_TRUE(body.is_object()) << body.dump();
    EXPECT_FALSE(body.contains("meta")) << "tasks-config is never wrapped";
    for (const char* kind : {"video", "image", "audio"}) {
        EXPECT_TRUE(body.contains(kind)) << "no '" << kind << "' in " << body.dump();
    }
}

TEST_F(ApiTest, HealthzAnswers200) { EXPECT_TRUE(isHealthy(server())); }

TEST_F(ApiTest, MetricsShowRequestsAndQueue) {
    api().createTask(cheapTaskBody());
    HttpClient anonymous(server().apiUrl(), "");
    // A request is counted after its response is sent, so the POST may show
    // up a moment after its client has the response.
    const std::string post_series = "route=\"/tasks\",code=\"201\"";
    HttpResponse metrics = anonymous.get("/metrics");
    for (int attempt = 0; attempt < 40 && metrics.body.find(post_series) == std::string::npos;
         ++attempt) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        metrics = anonymous.get("/metrics");
    }
    ASSERT_EQ(metrics.status, 200) << metrics.describe();
    EXPECT_EQ(metrics.header("Content-Type").rfind("text/plain", 0), 0u)
        << "Prometheus text format: " << metrics.header("Content-Type");
    EXPECT_NE(metrics.body.find("# TYPE bitmill_http_request_duration_seconds histogram"),
              std::string::npos)
        << metrics.body;
    EXPECT_NE(metrics.body.find(post_series), std::string::npos)
        << "POST /tasks is counted by route pattern: " << metrics.body;
    EXPECT_NE(metrics.body.find("bitmill_store_up 1"), std::string::npos) << metrics.body;
    EXPECT_NE(metrics.body.find("# TYPE bitmill_tasks gauge"), std::string::npos)
        << "queue depth by kind and status: " << metrics.body;
}

TEST_F(ApiTest, ListenersHaveLargeBacklog) {
    // A backlog of 5 (cpp-httplib's) drops connections under bursts, so the
    // server raises it; `ss` shows a listening socket's backlog in Send-Q.
    for (const std::string& url : {server().apiUrl(), server().deliveryUrl()}) {
        std::string port = url.substr(url.rfind(':') + 1);
        CommandResult listed = runCommand({"ss", "-ltnH", "sport = :" + port});
        ASSERT_TRUE(listed.ok()) << listed.describe();
        std::istringstream fields(listed.stdout_text);
        std::string state;
        long queued = -1;
        long backlog = -1;
        fields >> state >> queued >> backlog;
        EXPECT_EQ(state, "LISTEN") << listed.stdout_text;
        EXPECT_GE(backlog, 1024) << listed.stdout_text;
    }
}

TEST_F(ApiTest, SecondServerCannotTakeSamePort) {
    std::string api_url = server().apiUrl();
    std::string port = api_url.substr(api_url.rfind(':') + 1);
    TempDir other_data("bitmill-e2e-port");
    CommandResult second = ServerProcess::runCli(
        {"serve", "--data-dir", other_data.path().string(), "--listen", "127.0.0.1:" + port,
         "--delivery-listen", "127.0.0.1:0"});
    EXPECT_EQ(second.exit_code, 1) << second.describe();
    EXPECT_NE(second.stderr_text.find("cannot bind"), std::string::npos) << second.describe();
}

TEST_F(ApiTest, ApiOnlyServerLeavesTasksPending) {
    if (server().scaledOut()) {
        GTEST_SKIP() << "the scale-out deployment runs its workers in other processes";
    }
    ServerOptions options;
    options.workers = 0;
    ServerProcess& api_only = startServer(options);
    ApiSession session = sessionFor(api_only);
    Json file = session.uploadFile(corpusFile("v-odd-1921x1081.webm"));
    std::string id = session.createTask({{"kind", "image"}, {"file_id", file["id"]}})["id"];
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_EQ(session.getTask(id)["status"], "pending") << "no worker may run in this process";
    EXPECT_TRUE(api_only.childProcesses().empty());
}

}  // namespace
}  // namespace bitmill::e2e
