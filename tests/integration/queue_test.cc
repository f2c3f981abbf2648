// Queue behaviour over every Store backend: claim order, exclusive claims
// under concurrency, lease expiry, conditional worker updates, retry
// backoff and the wake-up signal. Time comes from a test clock.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "core/ids.h"
#include "queue/queue.h"
#include "store_backends.h"

namespace bitmill::integration {
namespace {

using domain::TaskStatus;
using std::chrono::milliseconds;

constexpr int64_t kStart = 1'700'000'000'000;
constexpr int64_t kLeaseMs = 10'000;

class QueueTest : public ::testing::TestWithParam<StoreBackend> {
protected:
    void SetUp() override {
        auto store = GetParam().open(folder_.string());
        ASSERT_TRUE(store.ok()) << store.error().toLogString();
        store_ = *store;
        auto project = store_->ensureDefaultProject();
        ASSERT_TRUE(project.ok());
        project_id_ = project->id;
        queue::QueueOptions options;
        options.lease_ms = kLeaseMs;
        options.backoff_base_ms = 1'000;
        options.backoff_max_ms = 3'000;
        queue_ = std::make_unique<queue::TaskQueue>(store_, options, [this] { return now_.load(); });
    }

    domain::TaskRecord enqueue(int64_t created_ms, int max_attempts = 3) {
        domain::TaskRecord task = makeTask(project_id_, created_ms);
        task.max_attempts = max_attempts;
        Status enqueued = queue_->enqueue(task);
        EXPECT_TRUE(enqueued.ok()) << enqueued.error().toLogString();
        return task;
    }

    domain::TaskRecord claimOne(const std::string& worker) {
        auto claimed = queue_->claim(worker);
        EXPECT_TRUE(claimed.ok()) << claimed.error().toLogString();
        if (!claimed.ok() || !claimed->has_value()) {
            ADD_FAILURE() << worker << " claimed nothing";
            return {};
        }
        return **claimed;
    }

    bool nothingToClaim() {
        auto claimed = queue_->claim("worker-idle");
        EXPECT_TRUE(claimed.ok());
        return claimed.ok() && !claimed->has_value();
    }

    domain::TaskRecord reload(const std::string& task_id) {
        auto task = store_->getTask(project_id_, task_id);
        EXPECT_TRUE(task.ok()) << task.error().toLogString();
        return task.ok() ? *task : domain::TaskRecord{};
    }

    TempFolder folder_;
    db::StorePtr store_;
    std::string project_id_;
    std::atomic<int64_t> now_{kStart};
    std::unique_ptr<queue::TaskQueue> queue_;
};

TEST_P(QueueTest, ClaimsOldestDueTaskFirst) {
    domain::TaskRecord middle = enqueue(kStart - 50);
    domain::TaskRecord oldest = enqueue(kStart - 100);
    domain::TaskRecord newest = enqueue(kStart - 10);
    domain::TaskRecord waiting = makeTask(project_id_, kStart - 200);
    waiting.status = TaskStatus::Waiting;
    ASSERT_TRUE(store_->insertTask(waiting).ok());

    domain::TaskRecord first = claimOne("worker-1");
    EXPECT_EQ(first.id, oldest.id);
    EXPECT_EQ(first.status, TaskStatus::Processing);
    EXPECT_EQ(first.attempts, 1);
    EXPECT_EQ(first.lease_owner, "worker-1");
    EXPECT_EQ(first.lease_expires_ms, kStart + kLeaseMs);
    EXPECT_EQ(first.started_ms, kStart);
    EXPECT_EQ(claimOne("worker-2").id, middle.id);
    EXPECT_EQ(claimOne("worker-1").id, newest.id);
    EXPECT_TRUE(nothingToClaim());

    auto stored = reload(first.id);
    EXPECT_EQ(stored.status, TaskStatus::Processing);
    EXPECT_EQ(stored.lease_owner, "worker-1");
}

TEST_P(QueueTest, ConcurrentWorkersNeverClaimTwice) {
    constexpr int kTasks = 200;
    constexpr int kWorkers = 8;
    std::set<std::string> enqueued;
    for (int i = 0; i < kTasks; ++i) {
        enqueued.insert(enqueue(kStart - kTasks + i).id);
    }

    // Half of the workers go through a second store on the same data, as a
    // second process would, so the claim must be atomic in the database and
    // not only behind the store's own locks.
    auto second_store = GetParam().open(folder_.string());
    ASSERT_TRUE(second_store.ok()) << second_store.error().toLogString();
    queue::TaskQueue second_queue(*second_store, queue_->options(), [this] { return now_.load(); });

    std::mutex claims_mutex;
    std::map<std::string, int> claims;  // task id -> times claimed
    std::atomic<int> errors{0};
    std::vector<std::thread> workers;
    for (int w = 0; w < kWorkers; ++w) {
        queue::TaskQueue* queue = w % 2 == 0 ? queue_.get() : &second_queue;
        workers.emplace_back([&, w, queue] {
            std::string worker_id = "worker-" + std::to_string(w);
            while (true) {
                auto claimed = queue->claim(worker_id);
                if (!claimed.ok()) {
                    ADD_FAILURE() << worker_id << ": " << claimed.error().toLogString();
                    ++errors;
                    return;
                }
                if (!claimed->has_value()) {
                    return;
                }
                std::lock_guard<std::mutex> lock(claims_mutex);
                ++claims[(*claimed)->id];
                EXPECT_EQ((*claimed)->lease_owner, worker_id);
            }
        });
    }
    for (std::thread& worker : workers) {
        worker.join();
    }

    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(claims.size(), static_cast<size_t>(kTasks));
    for (const auto& [task_id, times] : claims) {
        EXPECT_EQ(times, 1) << task_id;
        EXPECT_TRUE(enqueued.count(task_id)) << task_id;
    }
    db::TaskFilter processing_only;
    processing_only.status = TaskStatus::Processing;
    auto processing = store_->listTasks(project_id_, processing_only, {1, 1});
    ASSERT_TRUE(processing.ok());
    EXPECT_EQ(processing->total, kTasks);
}

TEST_P(QueueTest, ExpiredLeaseIsReclaimedUntilAttemptsRunOut) {
    domain::TaskRecord task = enqueue(kStart, /*max_attempts=*/2);
    ASSERT_EQ(claimOne("worker-1").attempts, 1);

    now_ = kStart + kLeaseMs;  // expires after, not at, lease_expires_ms
    auto reclaimed = queue_->reclaimExpired();
    ASSERT_TRUE(reclaimed.ok());
    EXPECT_EQ(*reclaimed, 0);

    now_ = kStart + kLeaseMs + 1;
    reclaimed = queue_->reclaimExpired();
    ASSERT_TRUE(reclaimed.ok()) << reclaimed.error().toLogString();
    EXPECT_EQ(*reclaimed, 1);
    domain::TaskRecord requeued = reload(task.id);
    EXPECT_EQ(requeued.status, TaskStatus::Pending);
    EXPECT_EQ(requeued.attempts, 1);
    EXPECT_FALSE(requeued.lease_owner.has_value());
    ASSERT_TRUE(requeued.error.has_value());
    EXPECT_NE(requeued.error->find("attempt 1 of 2"), std::string::npos) << *requeued.error;

    domain::TaskRecord second = claimOne("worker-2");
    EXPECT_EQ(second.id, task.id);
    EXPECT_EQ(second.attempts, 2);

    now_ = now_ + kLeaseMs + 1;
    reclaimed = queue_->reclaimExpired();
    ASSERT_TRUE(reclaimed.ok());
    EXPECT_EQ(*reclaimed, 1);
    domain::TaskRecord failed = reload(task.id);
    EXPECT_EQ(failed.status, TaskStatus::Failed);
    EXPECT_EQ(failed.attempts, 2);
    EXPECT_EQ(failed.finished_ms, now_.load());
    ASSERT_TRUE(failed.error.has_value());
    EXPECT_NE(failed.error->find("2 of 2"), std::string::npos) << *failed.error;
    EXPECT_TRUE(nothingToClaim());
}

TEST_P(QueueTest, HeartbeatExtendsLeaseAndStoresProgress) {
    domain::TaskRecord task = enqueue(kStart);
    claimOne("worker-1");

    now_ = kStart + kLeaseMs - 1;
    Status beat = queue_->heartbeat(task.id, "worker-1", 40);
    ASSERT_TRUE(beat.ok()) << beat.error().toLogString();
    domain::TaskRecord stored = reload(task.id);
    EXPECT_EQ(stored.progress, 40);
    EXPECT_EQ(stored.lease_expires_ms, now_.load() + kLeaseMs);

    now_ = kStart + kLeaseMs + 1;
    auto reclaimed = queue_->reclaimExpired();
    ASSERT_TRUE(reclaimed.ok());
    EXPECT_EQ(*reclaimed, 0);
    EXPECT_EQ(reload(task.id).status, TaskStatus::Processing);

    Status other_worker = queue_->heartbeat(task.id, "worker-2", 50);
    ASSERT_FALSE(other_worker.ok());
    EXPECT_EQ(other_worker.error().code(), ErrorCode::Conflict);
    EXPECT_EQ(reload(task.id).progress, 40);

    Status missing = queue_->heartbeat("task_missing", "worker-1", 50);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code(), ErrorCode::NotFound);
}

TEST_P(QueueTest, HeartbeatAfterCancelIsConflict) {
    domain::TaskRecord task = enqueue(kStart);
    claimOne("worker-1");
    auto cancelled = store_->cancelTask(project_id_, task.id, kStart + 5);
    ASSERT_TRUE(cancelled.ok());
    EXPECT_EQ(cancelled->status, TaskStatus::Cancelled);

    Status beat = queue_->heartbeat(task.id, "worker-1", 60);
    ASSERT_FALSE(beat.ok());
    EXPECT_EQ(beat.error().code(), ErrorCode::Conflict);
    EXPECT_NE(beat.error().message().find("cancelled"), std::string::npos)
        << beat.error().message();

    Status complete = queue_->complete(task.id, "worker-1", {});
    ASSERT_FALSE(complete.ok());
    EXPECT_EQ(complete.error().code(), ErrorCode::Conflict);
    Status fail = queue_->fail(task.id, "worker-1", Error::internal("boom"), 1, 3);
    ASSERT_FALSE(fail.ok());
    EXPECT_EQ(fail.error().code(), ErrorCode::Conflict);
    EXPECT_EQ(reload(task.id).status, TaskStatus::Cancelled);
}

TEST_P(QueueTest, CompleteAfterLeaseLostPublishesNothing) {
    domain::MediaRecord media = makeMedia(project_id_, kStart);
    ASSERT_TRUE(store_->insertMedia(media).ok());
    domain::TaskRecord task = makeTask(project_id_, kStart);
    task.media_id = media.id;
    ASSERT_TRUE(queue_->enqueue(task).ok());
    claimOne("worker-1");

    now_ = kStart + kLeaseMs + 1;
    ASSERT_TRUE(queue_->reclaimExpired().ok());
    domain::TaskRecord second = claimOne("worker-2");
    ASSERT_EQ(second.id, task.id);

    db::TaskCompletion late;
    late.output_file = makeFile(project_id_, media.id, now_);
    Status lost = queue_->complete(task.id, "worker-1", late);
    ASSERT_FALSE(lost.ok());
    EXPECT_EQ(lost.error().code(), ErrorCode::Conflict);
    EXPECT_EQ(store_->getFile(project_id_, late.output_file->id).error().code(),
              ErrorCode::NotFound);

    db::TaskCompletion current;
    current.output_file = makeFile(project_id_, media.id, now_);
    current.media_update = media;
    current.media_update->title = "Transcoded";
    current.media_update->updated_ms = now_;
    Status done = queue_->complete(task.id, "worker-2", current);
    ASSERT_TRUE(done.ok()) << done.error().toLogString();

    domain::TaskRecord completed = reload(task.id);
    EXPECT_EQ(completed.status, TaskStatus::Completed);
    EXPECT_EQ(completed.progress, 100);
    EXPECT_EQ(completed.output_file_id, current.output_file->id);
    EXPECT_EQ(completed.finished_ms, now_.load());
    EXPECT_FALSE(completed.error.has_value());
    auto files = store_->listMediaFiles(project_id_, media.id);
    ASSERT_TRUE(files.ok());
    ASSERT_EQ(files->size(), 1u);
    EXPECT_EQ(files->at(0).id, current.output_file->id);
    auto updated_media = store_->getMedia(project_id_, media.id);
    ASSERT_TRUE(updated_media.ok());
    EXPECT_EQ(updated_media->title, "Transcoded");

    // Completing twice is a conflict too: the task is no longer processing.
    Status twice = queue_->complete(task.id, "worker-2", {});
    ASSERT_FALSE(twice.ok());
    EXPECT_EQ(twice.error().code(), ErrorCode::Conflict);
}

TEST_P(QueueTest, CompleteInsertsNewMediaWithItsFile) {
    domain::TaskRecord task = enqueue(kStart);
    claimOne("worker-1");

    db::TaskCompletion ingest;
    ingest.media_insert = makeMedia(project_id_, kStart);
    ingest.output_file = makeFile(project_id_, ingest.media_insert->id, kStart);
    ASSERT_TRUE(queue_->complete(task.id, "worker-1", ingest).ok());

    domain::TaskRecord completed = reload(task.id);
    EXPECT_EQ(completed.media_id, ingest.media_insert->id);
    EXPECT_TRUE(store_->getMedia(project_id_, ingest.media_insert->id).ok());
    EXPECT_TRUE(store_->getFile(project_id_, ingest.output_file->id).ok());
}

TEST_P(QueueTest, FailedPublishRollsBackCompletion) {
    domain::TaskRecord task = enqueue(kStart);
    claimOne("worker-1");

    db::TaskCompletion broken;
    broken.output_file = makeFile(project_id_, "med_missing", kStart);
    Status failed = queue_->complete(task.id, "worker-1", broken);
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().code(), ErrorCode::NotFound);

    domain::TaskRecord stored = reload(task.id);
    EXPECT_EQ(stored.status, TaskStatus::Processing);
    EXPECT_EQ(stored.lease_owner, "worker-1");
    EXPECT_FALSE(stored.output_file_id.has_value());
}

TEST_P(QueueTest, RetryBackoffDelaysNextClaim) {
    domain::TaskRecord task = enqueue(kStart);
    domain::TaskRecord first = claimOne("worker-1");

    Status retried = queue_->fail(task.id, "worker-1", Error::unavailable("network down"),
                                  first.attempts, first.max_attempts);
    ASSERT_TRUE(retried.ok()) << retried.error().toLogString();
    domain::TaskRecord pending = reload(task.id);
    EXPECT_EQ(pending.status, TaskStatus::Pending);
    EXPECT_EQ(pending.run_after_ms, kStart + 1'000);
    EXPECT_EQ(pending.error, "network down");
    EXPECT_TRUE(nothingToClaim());
    auto due = store_->countDueTasks(now_);
    ASSERT_TRUE(due.ok());
    EXPECT_EQ(*due, 0);

    now_ = kStart + 1'000;
    due = store_->countDueTasks(now_);
    ASSERT_TRUE(due.ok());
    EXPECT_EQ(*due, 1);
    domain::TaskRecord second = claimOne("worker-2");
    EXPECT_EQ(second.id, task.id);
    EXPECT_EQ(second.attempts, 2);

    // The second retry waits twice as long.
    ASSERT_TRUE(queue_->fail(task.id, "worker-2", Error::internal("crashed"), second.attempts,
                             second.max_attempts)
                    .ok());
    EXPECT_EQ(reload(task.id).run_after_ms, now_.load() + 2'000);
    now_ = now_ + 1'999;
    EXPECT_TRUE(nothingToClaim());
    now_ = now_ + 1;
    domain::TaskRecord third = claimOne("worker-1");
    EXPECT_EQ(third.attempts, 3);

    // No attempts left: the task fails with the error's message.
    ASSERT_TRUE(queue_->fail(task.id, "worker-1", Error::unavailable("still down"),
                             third.attempts, third.max_attempts)
                    .ok());
    domain::TaskRecord failed = reload(task.id);
    EXPECT_EQ(failed.status, TaskStatus::Failed);
    EXPECT_EQ(failed.error, "still down");
    EXPECT_EQ(failed.finished_ms, now_.load());
}

TEST_P(QueueTest, PermanentErrorFailsAtOnce) {
    domain::TaskRecord task = enqueue(kStart);
    domain::TaskRecord claimed = claimOne("worker-1");
    Status failed = queue_->fail(task.id, "worker-1",
                                 Error::unsupportedMedia("input is not a video", "probe detail"),
                                 claimed.attempts, claimed.max_attempts);
    ASSERT_TRUE(failed.ok()) << failed.error().toLogString();
    domain::TaskRecord stored = reload(task.id);
    EXPECT_EQ(stored.status, TaskStatus::Failed);
    EXPECT_EQ(stored.error, "input is not a video");
    EXPECT_TRUE(nothingToClaim());
}

TEST_P(QueueTest, WaitForWorkWakesOnNotify) {
    std::atomic<bool> woken{false};
    auto started = std::chrono::steady_clock::now();
    std::thread waiter([&] { woken = queue_->waitForWork(milliseconds(20'000)); });
    std::this_thread::sleep_for(milliseconds(50));
    enqueue(kStart);  // enqueue notifies
    waiter.join();
    EXPECT_TRUE(woken.load());
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
}

TEST_P(QueueTest, NotifyBeforeWaitIsKept) {
    queue_->notify();
    auto started = std::chrono::steady_clock::now();
    EXPECT_TRUE(queue_->waitForWork(milliseconds(20'000)));
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
    // The stored wake-up was used up.
    EXPECT_FALSE(queue_->waitForWork(milliseconds(30)));
}

TEST_P(QueueTest, WaitForWorkTimesOut) {
    auto started = std::chrono::steady_clock::now();
    EXPECT_FALSE(queue_->waitForWork(milliseconds(100)));
    EXPECT_GE(std::chrono::steady_clock::now() - started, milliseconds(100));
}

TEST_P(QueueTest, NotifyAllWakesEveryWaiter) {
    constexpr int kWaiters = 3;
    std::atomic<int> woken{0};
    std::vector<std::thread> waiters;
    for (int i = 0; i < kWaiters; ++i) {
        waiters.emplace_back([&] {
            if (queue_->waitForWork(milliseconds(20'000))) {
                ++woken;
            }
        });
    }
    // A waiter that had not started waiting misses a broadcast, so repeat
    // it until every waiter is through.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (woken.load() < kWaiters && std::chrono::steady_clock::now() < deadline) {
        queue_->notifyAll();
        std::this_thread::sleep_for(milliseconds(20));
    }
    for (std::thread& waiter : waiters) {
        waiter.join();
    }
    EXPECT_EQ(woken.load(), kWaiters);
}

TEST(RetryDelayTest, DoublesFromBaseUpToMax) {
    queue::QueueOptions options;
    options.backoff_base_ms = 5'000;
    options.backoff_max_ms = 60'000;
    EXPECT_EQ(queue::retryDelayMs(options, 1), 5'000);
    EXPECT_EQ(queue::retryDelayMs(options, 2), 10'000);
    EXPECT_EQ(queue::retryDelayMs(options, 3), 20'000);
    EXPECT_EQ(queue::retryDelayMs(options, 4), 40'000);
    EXPECT_EQ(queue::retryDelayMs(options, 5), 60'000);
    EXPECT_EQ(queue::retryDelayMs(options, 1000), 60'000);
}

INSTANTIATE_TEST_SUITE_P(Backends, QueueTest, ::testing::ValuesIn(storeBackends()),
                         BackendName());

}  // namespace
}  // namespace bitmill::integration
