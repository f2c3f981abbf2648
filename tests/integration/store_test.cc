// Store contract tests: records round-trip, project isolation, paging,
// delivery path lookup, idempotency and upload ranges, run against every
// backend in storeBackends().
#include <gtest/gtest.h>

#include <set>

#include "db/store.h"
#include "db/upload_ranges.h"
#include "store_backends.h"

namespace bitmill::integration {
namespace {

using domain::TaskStatus;

constexpr int64_t kStart = 1'700'000'000'000;

db::TaskFilter makeFilter(std::optional<TaskStatus> status,
                          std::optional<std::string> kind = std::nullopt,
                          std::optional<std::string> media_id = std::nullopt,
                          std::optional<std::string> parent_id = std::nullopt) {
    db::TaskFilter filter;
    filter.status = status;
    filter.kind = std::move(kind);
    filter.media_id = std::move(media_id);
    filter.parent_id = std::move(parent_id);
    return filter;
}

class StoreTest : public ::testing::TestWithParam<StoreBackend> {
protected:
    void SetUp() override {
        auto store = GetParam().open(folder_.string());
        ASSERT_TRUE(store.ok()) << store.error().toLogString();
        store_ = *store;
        auto project = store_->ensureDefaultProject();
        ASSERT_TRUE(project.ok()) << project.error().toLogString();
        project_ = *project;
    }

    domain::MediaRecord insertMedia(int64_t created_ms = kStart) {
        domain::MediaRecord media = makeMedia(project_.id, created_ms);
        Status inserted = store_->insertMedia(media);
        EXPECT_TRUE(inserted.ok()) << inserted.error().toLogString();
        return media;
    }

    domain::FileRecord insertFile(const std::string& media_id, int64_t created_ms = kStart) {
        domain::FileRecord file = makeFile(project_.id, media_id, created_ms);
        Status inserted = store_->insertFile(file);
        EXPECT_TRUE(inserted.ok()) << inserted.error().toLogString();
        return file;
    }

    domain::TaskRecord insertTask(int64_t created_ms = kStart) {
        domain::TaskRecord task = makeTask(project_.id, created_ms);
        Status inserted = store_->insertTask(task);
        EXPECT_TRUE(inserted.ok()) << inserted.error().toLogString();
        return task;
    }

    TempFolder folder_;
    db::StorePtr store_;
    domain::Project project_;
};

TEST_P(StoreTest, DefaultProjectIsCreatedOnce) {
    auto again = store_->ensureDefaultProject();
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->id, project_.id);
    EXPECT_EQ(project_.name, "default");
    EXPECT_EQ(project_.id.rfind("prj_", 0), 0u);
    EXPECT_EQ(project_.webhook_secret.rfind("whsec_", 0), 0u);
    EXPECT_GT(project_.webhook_secret.size(), 30u);
    EXPECT_GT(project_.created_ms, 0);
}

TEST_P(StoreTest, ProjectUpdateRoundTrips) {
    domain::Project changed = project_;
    changed.delivery_private = true;
    changed.webhook_secret = "whsec_rotated";
    ASSERT_TRUE(store_->updateProject(changed).ok());

    auto stored = store_->getProject(project_.id);
    ASSERT_TRUE(stored.ok());
    EXPECT_TRUE(stored->delivery_private);
    EXPECT_EQ(stored->webhook_secret, "whsec_rotated");
    EXPECT_EQ(stored->created_ms, project_.created_ms);

    auto missing = store_->getProject("prj_missing");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code(), ErrorCode::NotFound);
    domain::Project ghost = project_;
    ghost.id = "prj_missing";
    Status update_missing = store_->updateProject(ghost);
    ASSERT_FALSE(update_missing.ok());
    EXPECT_EQ(update_missing.error().code(), ErrorCode::NotFound);
}

TEST_P(StoreTest, ApiKeyFindListAndRevoke) {
    domain::ApiKey key;
    key.id = "key_one";
    key.project_id = project_.id;
    key.name = "ci";
    key.display_prefix = "ity_sk_ab";
    key.hash = "aa11";
    key.sealed_key = "sealed";
    key.created_ms = kStart;
    ASSERT_TRUE(store_->insertApiKey(key).ok());

    auto found = store_->findApiKeyByHash("aa11");
    ASSERT_TRUE(found.ok());
    EXPECT_EQ(found->id, "key_one");
    EXPECT_EQ(found->display_prefix, "ity_sk_ab");
    EXPECT_EQ(found->sealed_key, "sealed");
    EXPECT_FALSE(found->revoked_ms.has_value());

    domain::ApiKey same_hash = key;
    same_hash.id = "key_two";
    Status duplicate = store_->insertApiKey(same_hash);
    ASSERT_FALSE(duplicate.ok());
    EXPECT_EQ(duplicate.error().code(), ErrorCode::Conflict);

    ASSERT_TRUE(store_->revokeApiKey("key_one", kStart + 5).ok());
    auto revoked = store_->findApiKeyByHash("aa11");
    ASSERT_FALSE(revoked.ok());
    EXPECT_EQ(revoked.error().code(), ErrorCode::NotFound);
    EXPECT_TRUE(store_->revokeApiKey("key_one", kStart + 6).ok());

    auto keys = store_->listApiKeys(project_.id);
    ASSERT_TRUE(keys.ok());
    ASSERT_EQ(keys->size(), 1u);
    EXPECT_EQ(keys->at(0).revoked_ms, kStart + 5);

    Status missing = store_->revokeApiKey("key_missing", kStart);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code(), ErrorCode::NotFound);
}

TEST_P(StoreTest, MediaRoundTripsAndUpdates) {
    domain::MediaRecord media = insertMedia();
    auto stored = store_->getMedia(project_.id, media.id);
    ASSERT_TRUE(stored.ok()) << stored.error().toLogString();
    EXPECT_EQ(stored->kind, "video");
    EXPECT_EQ(stored->title, "Holiday");
    EXPECT_FALSE(stored->alt.has_value());
    EXPECT_EQ(stored->width, 1920);
    EXPECT_EQ(stored->height, 1080);
    EXPECT_DOUBLE_EQ(stored->duration.value_or(0), 12.5);
    EXPECT_EQ(stored->metadata, (Json{{"camera", "x100"}}));
    EXPECT_EQ(stored->created_ms, kStart);

    media.title = std::nullopt;
    media.alt = "A beach";
    media.background = "#336699";
    media.metadata = Json{{"rating", 5}};
    media.updated_ms = kStart + 100;
    ASSERT_TRUE(store_->updateMedia(media).ok());
    stored = store_->getMedia(project_.id, media.id);
    ASSERT_TRUE(stored.ok());
    EXPECT_FALSE(stored->title.has_value());
    EXPECT_EQ(stored->alt, "A beach");
    EXPECT_EQ(stored->background, "#336699");
    EXPECT_EQ(stored->metadata, (Json{{"rating", 5}}));
    EXPECT_EQ(stored->updated_ms, kStart + 100);
    EXPECT_EQ(stored->created_ms, kStart);
}

TEST_P(StoreTest, DeleteMediaReturnsItsFiles) {
    domain::MediaRecord media = insertMedia();
    domain::MediaRecord other_media = insertMedia();
    domain::FileRecord first = insertFile(media.id, kStart);
    domain::FileRecord second = insertFile(media.id, kStart + 1);
    domain::FileRecord unrelated = insertFile(other_media.id);

    auto deleted = store_->deleteMedia(project_.id, media.id);
    ASSERT_TRUE(deleted.ok()) << deleted.error().toLogString();
    ASSERT_EQ(deleted->size(), 2u);
    std::set<std::string> ids{deleted->at(0).id, deleted->at(1).id};
    EXPECT_EQ(ids, (std::set<std::string>{first.id, second.id}));
    EXPECT_EQ(deleted->at(0).storage_key.rfind(project_.id + "/", 0), 0u);

    EXPECT_EQ(store_->getMedia(project_.id, media.id).error().code(), ErrorCode::NotFound);
    EXPECT_EQ(store_->getFile(project_.id, first.id).error().code(), ErrorCode::NotFound);
    EXPECT_TRUE(store_->getFile(project_.id, unrelated.id).ok());

    auto again = store_->deleteMedia(project_.id, media.id);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code(), ErrorCode::NotFound);
}

TEST_P(StoreTest, FileRoundTripsAllFields) {
    domain::MediaRecord media = insertMedia();
    domain::FileRecord file = makeFile(project_.id, media.id, kStart);
    file.object = "track";
    file.label = "subtitles";
    file.folder = "clips";
    file.filename = "intro.mp4";
    file.props.rotation = 90.0;
    file.props.transparency = false;
    file.props.bitrate = 2'500'000;
    file.props.placeholder = "data:image/webp;base64,AAAA";
    file.status = "processing";
    ASSERT_TRUE(store_->insertFile(file).ok());

    auto stored = store_->getFile(project_.id, file.id);
    ASSERT_TRUE(stored.ok()) << stored.error().toLogString();
    EXPECT_EQ(stored->media_id, media.id);
    EXPECT_EQ(stored->object, "track");
    EXPECT_EQ(stored->props.kind, "video");
    EXPECT_EQ(stored->props.type, "video/mp4");
    EXPECT_EQ(stored->props.codec, "h264");
    EXPECT_EQ(stored->props.width, 1920);
    EXPECT_EQ(stored->props.rotation, 90.0);
    EXPECT_EQ(stored->props.transparency, false);
    EXPECT_EQ(stored->props.bitrate, 2'500'000);
    EXPECT_FALSE(stored->props.language.has_value());
    EXPECT_EQ(stored->filesize, 123456);
    EXPECT_EQ(stored->label, "subtitles");
    EXPECT_EQ(stored->ref, "original");
    EXPECT_EQ(stored->folder, "clips");
    EXPECT_EQ(stored->filename, "intro.mp4");
    EXPECT_EQ(stored->storage_key, file.storage_key);
    EXPECT_EQ(stored->delivery_path, file.delivery_path);
    EXPECT_EQ(stored->etag, file.etag);
    EXPECT_EQ(stored->metadata, file.metadata);
    EXPECT_TRUE(stored->original);
    EXPECT_EQ(stored->created_by, "user");
    EXPECT_EQ(stored->status, "processing");

    file.status = "ready";
    file.filename = std::nullopt;
    file.metadata = Json::object();
    file.updated_ms = kStart + 50;
    ASSERT_TRUE(store_->updateFile(file).ok());
    stored = store_->getFile(project_.id, file.id);
    ASSERT_TRUE(stored.ok());
    EXPECT_EQ(stored->status, "ready");
    EXPECT_FALSE(stored->filename.has_value());
    EXPECT_EQ(stored->metadata, Json::object());
    EXPECT_EQ(stored->updated_ms, kStart + 50);

    auto deleted = store_->deleteFile(project_.id, file.id);
    ASSERT_TRUE(deleted.ok());
    EXPECT_EQ(deleted->id, file.id);
    EXPECT_EQ(deleted->storage_key, file.storage_key);
    EXPECT_EQ(store_->getFile(project_.id, file.id).error().code(), ErrorCode::NotFound);
    EXPECT_EQ(store_->deleteFile(project_.id, file.id).error().code(), ErrorCode::NotFound);
}

TEST_P(StoreTest, FileOfUnknownMediaIsRejected) {
    domain::FileRecord file = makeFile(project_.id, "med_missing", kStart);
    Status inserted = store_->insertFile(file);
    ASSERT_FALSE(inserted.ok());
    EXPECT_EQ(inserted.error().code(), ErrorCode::NotFound);
}

TEST_P(StoreTest, DuplicateIdIsConflict) {
    domain::MediaRecord media = insertMedia();
    Status again = store_->insertMedia(media);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code(), ErrorCode::Conflict);
}

TEST_P(StoreTest, OtherProjectSeesNothing) {
    domain::MediaRecord media = insertMedia();
    domain::FileRecord file = insertFile(media.id);
    domain::TaskRecord task = insertTask();
    const std::string other = "prj_other";

    EXPECT_EQ(store_->getMedia(other, media.id).error().code(), ErrorCode::NotFound);
    EXPECT_EQ(store_->getFile(other, file.id).error().code(), ErrorCode::NotFound);
    EXPECT_EQ(store_->getTask(other, task.id).error().code(), ErrorCode::NotFound);
    EXPECT_EQ(store_->cancelTask(other, task.id, kStart).error().code(), ErrorCode::NotFound);
    EXPECT_EQ(store_->deleteFile(other, file.id).error().code(), ErrorCode::NotFound);
    EXPECT_EQ(store_->deleteMedia(other, media.id).error().code(), ErrorCode::NotFound);

    domain::MediaRecord moved = media;
    moved.project_id = other;
    EXPECT_EQ(store_->updateMedia(moved).error().code(), ErrorCode::NotFound);
    domain::FileRecord moved_file = file;
    moved_file.project_id = other;
    EXPECT_EQ(store_->updateFile(moved_file).error().code(), ErrorCode::NotFound);

    auto media_page = store_->listMedia(other, {});
    ASSERT_TRUE(media_page.ok());
    EXPECT_EQ(media_page->total, 0);
    auto file_page = store_->listFiles(other, {});
    ASSERT_TRUE(file_page.ok());
    EXPECT_EQ(file_page->total, 0);
    auto task_page = store_->listTasks(other, {}, {});
    ASSERT_TRUE(task_page.ok());
    EXPECT_EQ(task_page->total, 0);
    auto media_files = store_->listMediaFiles(other, media.id);
    ASSERT_TRUE(media_files.ok());
    EXPECT_TRUE(media_files->empty());

    // The records are still there for their own project.
    EXPECT_TRUE(store_->getFile(project_.id, file.id).ok());
    EXPECT_TRUE(store_->getMedia(project_.id, media.id).ok());
    auto own = store_->getTask(project_.id, task.id);
    ASSERT_TRUE(own.ok());
    EXPECT_EQ(own->status, TaskStatus::Pending);
}

TEST_P(StoreTest, TaskRoundTripsAllFields) {
    domain::TaskRecord task = makeTask(project_.id, kStart);
    task.input_url = std::nullopt;
    task.input_file_id = "file_input";
    task.media_id = "med_target";
    task.parent_id = "task_parent";
    task.webhook_url = "https://hooks.example/x";
    task.status = TaskStatus::Waiting;
    task.max_attempts = 5;
    task.run_after_ms = kStart + 10;
    ASSERT_TRUE(store_->insertTask(task).ok());

    auto stored = store_->getTask(project_.id, task.id);
    ASSERT_TRUE(stored.ok()) << stored.error().toLogString();
    EXPECT_EQ(stored->kind, "video");
    EXPECT_EQ(stored->status, TaskStatus::Waiting);
    EXPECT_EQ(stored->progress, 0);
    EXPECT_FALSE(stored->input_url.has_value());
    EXPECT_EQ(stored->input_file_id, "file_input");
    EXPECT_EQ(stored->media_id, "med_target");
    EXPECT_EQ(stored->options, task.options);
    EXPECT_FALSE(stored->output_file_id.has_value());
    EXPECT_FALSE(stored->error.has_value());
    EXPECT_EQ(stored->created_by, "user");
    EXPECT_EQ(stored->parent_id, "task_parent");
    EXPECT_EQ(stored->webhook_url, "https://hooks.example/x");
    EXPECT_EQ(stored->attempts, 0);
    EXPECT_EQ(stored->max_attempts, 5);
    EXPECT_FALSE(stored->lease_owner.has_value());
    EXPECT_FALSE(stored->lease_expires_ms.has_value());
    EXPECT_EQ(stored->run_after_ms, kStart + 10);
    EXPECT_EQ(stored->created_ms, kStart);
    EXPECT_FALSE(stored->started_ms.has_value());
    EXPECT_FALSE(stored->finished_ms.has_value());
}

TEST_P(StoreTest, TaskListIsNewestFirstWithTotals) {
    std::vector<std::string> ids;  // oldest first
    for (int i = 0; i < 25; ++i) {
        // Pairs share a millisecond, so insertion order must break the tie.
        ids.push_back(insertTask(kStart + i / 2).id);
    }

    auto first = store_->listTasks(project_.id, {}, {1, 10});
    ASSERT_TRUE(first.ok()) << first.error().toLogString();
    EXPECT_EQ(first->total, 25);
    ASSERT_EQ(first->items.size(), 10u);
    for (size_t i = 0; i < 10; ++i) {
        EXPECT_EQ(first->items[i].id, ids[24 - i]) << "position " << i;
    }

    auto last = store_->listTasks(project_.id, {}, {3, 10});
    ASSERT_TRUE(last.ok());
    EXPECT_EQ(last->total, 25);
    ASSERT_EQ(last->items.size(), 5u);
    EXPECT_EQ(last->items.back().id, ids[0]);

    auto past_end = store_->listTasks(project_.id, {}, {4, 10});
    ASSERT_TRUE(past_end.ok());
    EXPECT_EQ(past_end->total, 25);
    EXPECT_TRUE(past_end->items.empty());
}

TEST_P(StoreTest, TaskListFilters) {
    domain::TaskRecord image = makeTask(project_.id, kStart);
    image.kind = "image";
    image.media_id = "med_a";
    ASSERT_TRUE(store_->insertTask(image).ok());
    domain::TaskRecord child = makeTask(project_.id, kStart + 1);
    child.parent_id = "task_parent";
    child.media_id = "med_a";
    ASSERT_TRUE(store_->insertTask(child).ok());
    domain::TaskRecord plain = insertTask(kStart + 2);
    ASSERT_TRUE(store_->cancelTask(project_.id, plain.id, kStart + 3).ok());

    auto check = [&](const db::TaskFilter& filter, std::vector<std::string> expected) {
        auto page = store_->listTasks(project_.id, filter, {1, 100});
        ASSERT_TRUE(page.ok()) << page.error().toLogString();
        EXPECT_EQ(page->total, static_cast<int64_t>(expected.size()));
        std::vector<std::string> ids;
        for (const auto& task : page->items) {
            ids.push_back(task.id);
        }
        EXPECT_EQ(ids, expected);
    };
    check(makeFilter(TaskStatus::Cancelled), {plain.id});
    check(makeFilter(TaskStatus::Pending), {child.id, image.id});
    check(makeFilter(std::nullopt, "image"), {image.id});
    check(makeFilter(std::nullopt, std::nullopt, "med_a"), {child.id, image.id});
    check(makeFilter(std::nullopt, std::nullopt, std::nullopt, "task_parent"), {child.id});
    check(makeFilter(TaskStatus::Pending, "video", "med_a"), {child.id});
    check(makeFilter(TaskStatus::Failed), {});
}

TEST_P(StoreTest, PageOutsideBoundsIsInvalid) {
    for (db::PageRequest page : {db::PageRequest{0, 10}, db::PageRequest{1, 0},
                                 db::PageRequest{1, 101}, db::PageRequest{-3, 10}}) {
        auto tasks = store_->listTasks(project_.id, {}, page);
        ASSERT_FALSE(tasks.ok()) << "page " << page.page << " limit " << page.limit;
        EXPECT_EQ(tasks.error().code(), ErrorCode::InvalidArgument);
        auto files = store_->listFiles(project_.id, page);
        ASSERT_FALSE(files.ok());
        EXPECT_EQ(files.error().code(), ErrorCode::InvalidArgument);
        auto media = store_->listMedia(project_.id, page);
        ASSERT_FALSE(media.ok());
        EXPECT_EQ(media.error().code(), ErrorCode::InvalidArgument);
    }
}

TEST_P(StoreTest, MediaAndFileListsPageNewestFirst) {
    domain::MediaRecord older = insertMedia(kStart);
    domain::MediaRecord newer = insertMedia(kStart + 10);
    std::vector<std::string> file_ids;
    for (int i = 0; i < 7; ++i) {
        file_ids.push_back(insertFile(i % 2 == 0 ? older.id : newer.id, kStart + i).id);
    }

    auto media = store_->listMedia(project_.id, {1, 1});
    ASSERT_TRUE(media.ok());
    EXPECT_EQ(media->total, 2);
    ASSERT_EQ(media->items.size(), 1u);
    EXPECT_EQ(media->items[0].id, newer.id);

    auto files = store_->listFiles(project_.id, {2, 3});
    ASSERT_TRUE(files.ok());
    EXPECT_EQ(files->total, 7);
    ASSERT_EQ(files->items.size(), 3u);
    EXPECT_EQ(files->items[0].id, file_ids[3]);
    EXPECT_EQ(files->items[2].id, file_ids[1]);

    auto of_older = store_->listMediaFiles(project_.id, older.id);
    ASSERT_TRUE(of_older.ok());
    ASSERT_EQ(of_older->size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(of_older->at(i).id, file_ids[i * 2]) << "oldest first, position " << i;
    }
}

TEST_P(StoreTest, DeliveryPathPicksMostRecentlyUpdatedReadyFile) {
    domain::MediaRecord media = insertMedia();
    domain::FileRecord newest = makeFile(project_.id, media.id, kStart);
    newest.delivery_path = "clips/intro.mp4";
    newest.updated_ms = kStart + 500;
    ASSERT_TRUE(store_->insertFile(newest).ok());
    domain::FileRecord older = makeFile(project_.id, media.id, kStart + 100);
    older.delivery_path = "clips/intro.mp4";
    older.updated_ms = kStart + 200;
    ASSERT_TRUE(store_->insertFile(older).ok());
    domain::FileRecord unfinished = makeFile(project_.id, media.id, kStart + 200);
    unfinished.delivery_path = "clips/intro.mp4";
    unfinished.updated_ms = kStart + 900;
    unfinished.status = "processing";
    ASSERT_TRUE(store_->insertFile(unfinished).ok());

    auto found = store_->findFileByDeliveryPath("clips/intro.mp4");
    ASSERT_TRUE(found.ok()) << found.error().toLogString();
    EXPECT_EQ(found->id, newest.id);

    // Touching the older file makes it the most recent.
    older.updated_ms = kStart + 1000;
    ASSERT_TRUE(store_->updateFile(older).ok());
    found = store_->findFileByDeliveryPath("clips/intro.mp4");
    ASSERT_TRUE(found.ok());
    EXPECT_EQ(found->id, older.id);

    auto missing = store_->findFileByDeliveryPath("clips/outro.mp4");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code(), ErrorCode::NotFound);
}

TEST_P(StoreTest, CancelSetsCancelledUnlessFinal) {
    domain::TaskRecord pending = insertTask();
    auto cancelled = store_->cancelTask(project_.id, pending.id, kStart + 7);
    ASSERT_TRUE(cancelled.ok()) << cancelled.error().toLogString();
    EXPECT_EQ(cancelled->status, TaskStatus::Cancelled);
    EXPECT_EQ(cancelled->finished_ms, kStart + 7);
    EXPECT_EQ(cancelled->updated_ms, kStart + 7);

    // A second cancel changes nothing and returns the task as it is.
    auto again = store_->cancelTask(project_.id, pending.id, kStart + 9);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->status, TaskStatus::Cancelled);
    EXPECT_EQ(again->finished_ms, kStart + 7);

    domain::TaskRecord waiting = makeTask(project_.id, kStart);
    waiting.status = TaskStatus::Waiting;
    ASSERT_TRUE(store_->insertTask(waiting).ok());
    auto cancelled_waiting = store_->cancelTask(project_.id, waiting.id, kStart + 1);
    ASSERT_TRUE(cancelled_waiting.ok());
    EXPECT_EQ(cancelled_waiting->status, TaskStatus::Cancelled);

    domain::TaskRecord done = makeTask(project_.id, kStart);
    done.status = TaskStatus::Completed;
    done.finished_ms = kStart + 2;
    ASSERT_TRUE(store_->insertTask(done).ok());
    auto not_cancelled = store_->cancelTask(project_.id, done.id, kStart + 3);
    ASSERT_TRUE(not_cancelled.ok());
    EXPECT_EQ(not_cancelled->status, TaskStatus::Completed);
    EXPECT_EQ(not_cancelled->finished_ms, kStart + 2);

    EXPECT_EQ(store_->cancelTask(project_.id, "task_missing", kStart).error().code(),
              ErrorCode::NotFound);
}

TEST_P(StoreTest, IdempotencyInsertFindAndConflict) {
    domain::IdempotencyRecord record;
    record.project_id = project_.id;
    record.key = "retry-123";
    record.request_hash = "abcd";
    record.status_code = 201;
    record.response_body = R"({"id":"task_x"})";
    record.created_ms = kStart;
    ASSERT_TRUE(store_->insertIdempotency(record).ok());

    auto found = store_->findIdempotency(project_.id, "retry-123", kStart - 1000);
    ASSERT_TRUE(found.ok());
    ASSERT_TRUE(found->has_value());
    EXPECT_EQ((*found)->request_hash, "abcd");
    EXPECT_EQ((*found)->status_code, 201);
    EXPECT_EQ((*found)->response_body, record.response_body);
    EXPECT_EQ((*found)->created_ms, kStart);

    auto too_old = store_->findIdempotency(project_.id, "retry-123", kStart + 1);
    ASSERT_TRUE(too_old.ok());
    EXPECT_FALSE(too_old->has_value());
    auto other_key = store_->findIdempotency(project_.id, "retry-999", 0);
    ASSERT_TRUE(other_key.ok());
    EXPECT_FALSE(other_key->has_value());
    auto other_project = store_->findIdempotency("prj_other", "retry-123", 0);
    ASSERT_TRUE(other_project.ok());
    EXPECT_FALSE(other_project->has_value());

    domain::IdempotencyRecord second = record;
    second.request_hash = "ffff";
    second.created_ms = kStart + 60'000;
    Status conflict = store_->insertIdempotency(second);
    ASSERT_FALSE(conflict.ok());
    EXPECT_EQ(conflict.error().code(), ErrorCode::Conflict);

    // After the 24-hour window the key can be stored again.
    second.created_ms = kStart + 25LL * 3600 * 1000;
    ASSERT_TRUE(store_->insertIdempotency(second).ok());
    found = store_->findIdempotency(project_.id, "retry-123", kStart);
    ASSERT_TRUE(found.ok());
    ASSERT_TRUE(found->has_value());
    EXPECT_EQ((*found)->request_hash, "ffff");
}

TEST_P(StoreTest, IdempotencyReservationCompletesOnce) {
    domain::IdempotencyRecord reservation;
    reservation.project_id = project_.id;
    reservation.key = "reserve-1";
    reservation.request_hash = "abcd";
    reservation.status_code = 0;
    reservation.created_ms = kStart;
    ASSERT_TRUE(store_->insertIdempotency(reservation).ok());

    domain::IdempotencyRecord duplicate = reservation;
    duplicate.created_ms = kStart + 5;
    Status duplicate_insert = store_->insertIdempotency(duplicate);
    ASSERT_FALSE(duplicate_insert.ok());
    EXPECT_EQ(duplicate_insert.error().code(), ErrorCode::Conflict);

    domain::IdempotencyRecord response = reservation;
    response.status_code = 201;
    response.response_body = R"({"id":"task_y"})";
    ASSERT_TRUE(store_->completeIdempotency(response).ok());
    auto found = store_->findIdempotency(project_.id, "reserve-1", 0);
    ASSERT_TRUE(found.ok());
    ASSERT_TRUE(found->has_value());
    EXPECT_EQ((*found)->status_code, 201);
    EXPECT_EQ((*found)->response_body, response.response_body);

    Status again = store_->completeIdempotency(response);
    ASSERT_FALSE(again.ok()) << "a completed reservation cannot be completed twice";
    EXPECT_EQ(again.error().code(), ErrorCode::Conflict);
    ASSERT_TRUE(store_->deleteIdempotencyReservation(project_.id, "reserve-1", kStart).ok());
    found = store_->findIdempotency(project_.id, "reserve-1", 0);
    ASSERT_TRUE(found.ok());
    EXPECT_TRUE(found->has_value()) << "a stored response is never deleted as a reservation";
}

TEST_P(StoreTest, IdempotencyReservationCanBeReleased) {
    domain::IdempotencyRecord reservation;
    reservation.project_id = project_.id;
    reservation.key = "reserve-2";
    reservation.request_hash = "abcd";
    reservation.status_code = 0;
    reservation.created_ms = kStart;
    ASSERT_TRUE(store_->insertIdempotency(reservation).ok());
    // Another request's timestamp does not match, so nothing is deleted.
    ASSERT_TRUE(store_->deleteIdempotencyReservation(project_.id, "reserve-2", kStart + 1).ok());
    auto found = store_->findIdempotency(project_.id, "reserve-2", 0);
    ASSERT_TRUE(found.ok());
    EXPECT_TRUE(found->has_value());

    ASSERT_TRUE(store_->deleteIdempotencyReservation(project_.id, "reserve-2", kStart).ok());
    found = store_->findIdempotency(project_.id, "reserve-2", 0);
    ASSERT_TRUE(found.ok());
    EXPECT_FALSE(found->has_value());
    Status completed = store_->completeIdempotency(reservation);
    ASSERT_FALSE(completed.ok());
    EXPECT_EQ(completed.error().code(), ErrorCode::Conflict);
    EXPECT_TRUE(store_->insertIdempotency(reservation).ok()) << "the key is free again";
}

TEST_P(StoreTest, UploadRangesMergeOutOfOrderAndOverlapping) {
    domain::UploadRecord upload;
    upload.id = "upl_one";
    upload.project_id = project_.id;
    upload.path = "clips/big.mp4";
    upload.total_bytes = 100;
    upload.created_ms = kStart;
    upload.updated_ms = kStart;
    auto created = store_->getOrCreateUpload(upload);
    ASSERT_TRUE(created.ok()) << created.error().toLogString();
    EXPECT_EQ(created->id, "upl_one");
    EXPECT_TRUE(created->received.empty());

    using Ranges = db::ByteRanges;
    auto add = [&](int64_t first, int64_t last) {
        auto result = store_->addUploadRange("upl_one", first, last, kStart + last);
        EXPECT_TRUE(result.ok()) << result.error().toLogString();
        return result.ok() ? result->received : Ranges{};
    };
    EXPECT_EQ(add(50, 59), (Ranges{{50, 59}}));
    EXPECT_EQ(add(10, 19), (Ranges{{10, 19}, {50, 59}}));
    EXPECT_EQ(add(20, 29), (Ranges{{10, 29}, {50, 59}}));  // adjacent
    EXPECT_EQ(add(25, 54), (Ranges{{10, 59}}));            // overlaps both
    EXPECT_EQ(add(10, 59), (Ranges{{10, 59}}));            // repeated
    EXPECT_EQ(add(90, 99), (Ranges{{10, 59}, {90, 99}}));
    EXPECT_EQ(add(0, 9), (Ranges{{0, 59}, {90, 99}}));

    // A second request for the same path finds the upload in progress.
    domain::UploadRecord again = upload;
    again.id = "upl_two";
    auto resumed = store_->getOrCreateUpload(again);
    ASSERT_TRUE(resumed.ok());
    EXPECT_EQ(resumed->id, "upl_one");
    EXPECT_EQ(resumed->received, (Ranges{{0, 59}, {90, 99}}));
    EXPECT_EQ(resumed->updated_ms, kStart + 9);
    EXPECT_FALSE(db::coversAllBytes(resumed->received, 100));

    EXPECT_EQ(add(60, 89), (Ranges{{0, 99}}));
    EXPECT_TRUE(db::coversAllBytes(Ranges{{0, 99}}, 100));

    for (auto [first, last] : {std::pair<int64_t, int64_t>{90, 100}, {-1, 5}, {20, 10}}) {
        auto invalid = store_->addUploadRange("upl_one", first, last, kStart);
        ASSERT_FALSE(invalid.ok()) << first << "-" << last;
        EXPECT_EQ(invalid.error().code(), ErrorCode::InvalidArgument);
    }

    ASSERT_TRUE(store_->deleteUpload("upl_one").ok());
    EXPECT_TRUE(store_->deleteUpload("upl_one").ok());
    auto gone = store_->addUploadRange("upl_one", 0, 1, kStart);
    ASSERT_FALSE(gone.ok());
    EXPECT_EQ(gone.error().code(), ErrorCode::NotFound);
}

TEST(ByteRangesTest, MergeKeepsSortedDisjointRanges) {
    db::ByteRanges ranges;
    ranges = db::mergeByteRange(ranges, 30, 39);
    ranges = db::mergeByteRange(ranges, 0, 9);
    ranges = db::mergeByteRange(ranges, 15, 20);
    EXPECT_EQ(ranges, (db::ByteRanges{{0, 9}, {15, 20}, {30, 39}}));
    ranges = db::mergeByteRange(ranges, 5, 35);
    EXPECT_EQ(ranges, (db::ByteRanges{{0, 39}}));
    EXPECT_FALSE(db::coversAllBytes(ranges, 41));
    EXPECT_TRUE(db::coversAllBytes(ranges, 40));
    EXPECT_TRUE(db::coversAllBytes({}, 0));
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::ValuesIn(storeBackends()),
                         BackendName());

}  // namespace
}  // namespace bitmill::integration
