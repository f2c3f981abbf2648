// PostgreSQL-specific behaviour: migrations from several processes at once,
// exclusive claims from many connections, the index behind the claim query,
// NOTIFY wake-ups between stores, recovery from terminated connections, and
// the database URL factory. Each case runs on a database of its own on the
// server of the postgres CTest fixture.
#include <libpq-fe.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <map>
#include <mutex>
#include <thread>

#include "db/migrations.h"
#include "db/open_store.h"
#include "db/postgres/postgres_store.h"
#include "queue/queue.h"
#include "store_backends.h"

namespace bitmill::integration {
namespace {

using domain::TaskStatus;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr int64_t kStart = 1'700'000'000'000;
constexpr int64_t kLeaseMs = 10'000;

// Runs `sql` on `url` over a connection of its own and returns the first
// column of every row; a failure is reported to the test.
std::vector<std::string> querySql(const std::string& url, const std::string& sql) {
    std::unique_ptr<PGconn, decltype(&PQfinish)> connection(PQconnectdb(url.c_str()), PQfinish);
    if (PQstatus(connection.get()) != CONNECTION_OK) {
        ADD_FAILURE() << "connect to " << url << ": " << PQerrorMessage(connection.get());
        return {};
    }
    std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(connection.get(), sql.c_str()),
                                                         PQclear);
    ExecStatusType status = PQresultStatus(result.get());
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        ADD_FAILURE() << sql << ": " << PQresultErrorMessage(result.get());
        return {};
    }
    std::vector<std::string> values;
    for (int row = 0; row < PQntuples(result.get()); ++row) {
        values.emplace_back(PQgetvalue(result.get(), row, 0));
    }
    return values;
}

std::string queryOne(const std::string& url, const std::string& sql) {
    std::vector<std::string> values = querySql(url, sql);
    return values.empty() ? "" : values.front();
}

// Closes every other session on the database of `url`, as a server restart
// or an administrator would, and waits until they are gone.
void terminateOtherSessions(const std::string& url) {
    const std::string others =
        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()";
    querySql(url, "SELECT pg_terminate_backend(pid) " + others);
    auto deadline = steady_clock::now() + std::chrono::seconds(10);
    while (queryOne(url, "SELECT COUNT(*) " + others) != "0" && steady_clock::now() < deadline) {
        std::this_thread::sleep_for(milliseconds(20));
    }
}

class PostgresStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        auto url = createPostgresDatabase();
        ASSERT_TRUE(url.ok()) << url.error().toLogString();
        url_ = *url;
    }

    db::StorePtr openStore() {
        auto store = db::openPostgresStore(url_);
        EXPECT_TRUE(store.ok()) << store.error().toLogString();
        return store.ok() ? *store : nullptr;
    }

    std::string url_;
};

TEST_F(PostgresStoreTest, ConcurrentOpensMigrateOnce) {
    constexpr int kProcesses = 4;
    std::latch start(kProcesses);
    std::vector<Result<db::StorePtr>> opened(kProcesses, Error::internal("not run"));
    std::vector<std::thread> threads;
    for (int i = 0; i < kProcesses; ++i) {
        threads.emplace_back([&, i] {
            start.arrive_and_wait();
            opened[i] = db::openPostgresStore(url_);
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    for (int i = 0; i < kProcesses; ++i) {
        EXPECT_TRUE(opened[i].ok()) << "store " << i << ": " << opened[i].error().toLogString();
    }
    EXPECT_EQ(queryOne(url_, "SELECT COUNT(*) FROM schema_migrations"),
              std::to_string(db::postgresMigrations().size()));
    EXPECT_EQ(queryOne(url_, "SELECT MAX(version) FROM schema_migrations"),
              std::to_string(db::postgresMigrations().back().version));
    EXPECT_EQ(queryOne(url_,
                       "SELECT COUNT(*) FROM information_schema.tables WHERE table_name "
                       "IN ('projects', 'api_keys', 'media', 'files', 'tasks', 'uploads', "
                       "'idempotency')"),
              "7");
}

TEST_F(PostgresStoreTest, RejectsNewerSchema) {
    ASSERT_NE(openStore(), nullptr);
    querySql(url_,
             "INSERT INTO schema_migrations (version, description, applied_ms) VALUES "
             "(9999, 'from the future', 0)");
    auto store = db::openPostgresStore(url_);
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.error().code(), ErrorCode::Internal);
    EXPECT_NE(store.error().message().find("9999"), std::string::npos) << store.error().message();
}

TEST_F(PostgresStoreTest, ClaimsAreExclusiveAcrossConnections) {
    constexpr int kTasks = 300;
    constexpr int kStores = 3;
    constexpr int kThreadsPerStore = 4;
    std::vector<db::StorePtr> stores;
    for (int i = 0; i < kStores; ++i) {
        stores.push_back(openStore());
        ASSERT_NE(stores.back(), nullptr);
    }
    auto project = stores[0]->ensureDefaultProject();
    ASSERT_TRUE(project.ok());
    for (int i = 0; i < kTasks; ++i) {
        ASSERT_TRUE(stores[i % kStores]->insertTask(makeTask(project->id, kStart - i)).ok());
    }

    // Every thread claims on a pooled connection of its own, and the stores
    // stand for separate processes.
    std::latch start(kStores * kThreadsPerStore);
    std::mutex claims_mutex;
    std::map<std::string, int> claims;  // task id -> times claimed
    std::vector<std::thread> workers;
    for (int w = 0; w < kStores * kThreadsPerStore; ++w) {
        workers.emplace_back([&, w] {
            db::Store& store = *stores[w % kStores];
            std::string worker_id = "worker-" + std::to_string(w);
            start.arrive_and_wait();
            while (true) {
                auto claimed = store.claimTask(worker_id, kStart, kLeaseMs);
                if (!claimed.ok()) {
                    ADD_FAILURE() << worker_id << ": " << claimed.error().toLogString();
                    return;
                }
                if (!claimed->has_value()) {
                    return;
                }
                EXPECT_EQ((*claimed)->lease_owner, worker_id);
                EXPECT_EQ((*claimed)->attempts, 1);
                std::lock_guard<std::mutex> lock(claims_mutex);
                ++claims[(*claimed)->id];
            }
        });
    }
    for (std::thread& worker : workers) {
        worker.join();
    }

    EXPECT_EQ(claims.size(), static_cast<size_t>(kTasks));
    for (const auto& [task_id, times] : claims) {
        EXPECT_EQ(times, 1) << task_id;
    }
    EXPECT_EQ(queryOne(url_,
                       "SELECT COUNT(*) FROM tasks WHERE status = 'processing' AND "
                       "attempts = 1 AND lease_owner IS NOT NULL"),
              std::to_string(kTasks));
}

TEST_F(PostgresStoreTest, ClaimQueryUsesQueueIndex) {
    db::StorePtr store = openStore();
    ASSERT_NE(store, nullptr);
    auto project = store->ensureDefaultProject();
    ASSERT_TRUE(project.ok());
    // A realistic table: mostly finished history, a few pending tasks.
    querySql(url_,
             "INSERT INTO tasks (id, project_id, kind, status, progress, options, "
             "created_by, attempts, max_attempts, run_after_ms, created_ms, updated_ms) "
             "SELECT 'task_' || n, '" +
                 project->id +
                 "', 'video', CASE WHEN n % 100 = 0 THEN 'pending' ELSE 'completed' END, "
                 "0, '{}', 'user', 1, 3, n, n, n FROM generate_series(1, 20000) AS n");
    querySql(url_, "ANALYZE tasks");

    std::vector<std::string> plan = querySql(
        url_,
        "EXPLAIN UPDATE tasks SET status = 'processing' WHERE seq = (SELECT seq FROM tasks "
        "WHERE status = 'pending' AND run_after_ms <= 30000 ORDER BY created_ms, seq LIMIT 1 "
        "FOR UPDATE SKIP LOCKED)");
    std::string text;
    for (const std::string& line : plan) {
        text += line + "\n";
    }
    EXPECT_NE(text.find("Index Scan using tasks_queue"), std::string::npos) << text;
    EXPECT_EQ(text.find("Seq Scan"), std::string::npos) << text;
    EXPECT_EQ(text.find("Sort"), std::string::npos) << text;

    auto claimed = store->claimTask("worker-1", 30'000, kLeaseMs);
    ASSERT_TRUE(claimed.ok()) << claimed.error().toLogString();
    ASSERT_TRUE(claimed->has_value());
    EXPECT_EQ((*claimed)->id, "task_100");
}

TEST_F(PostgresStoreTest, QueueWakesOnTaskOfOtherStore) {
    db::StorePtr store_a = openStore();
    db::StorePtr store_b = openStore();
    ASSERT_NE(store_a, nullptr);
    ASSERT_NE(store_b, nullptr);
    auto project = store_b->ensureDefaultProject();
    ASSERT_TRUE(project.ok());
    queue::TaskQueue queue_a(store_a);

    std::atomic<bool> woken{false};
    auto started = steady_clock::now();
    std::thread waiter([&] { woken = queue_a.waitForWork(milliseconds(20'000)); });
    // A broadcast reaches only a worker that is already waiting, so keep
    // enqueueing through store B until the waiter is through.
    auto deadline = started + std::chrono::seconds(10);
    int inserted = 0;
    while (!woken && steady_clock::now() < deadline) {
        ASSERT_TRUE(store_b->insertTask(makeTask(project->id, kStart)).ok());
        ++inserted;
        std::this_thread::sleep_for(milliseconds(100));
    }
    waiter.join();
    EXPECT_TRUE(woken.load());
    EXPECT_LT(steady_clock::now() - started, std::chrono::seconds(5)) << inserted << " inserts";
}

TEST_F(PostgresStoreTest, RetryAndReclaimWakeOtherStores) {
    db::StorePtr store_a = openStore();
    db::StorePtr store_b = openStore();
    ASSERT_NE(store_a, nullptr);
    ASSERT_NE(store_b, nullptr);
    auto project = store_b->ensureDefaultProject();
    ASSERT_TRUE(project.ok());
    ASSERT_TRUE(store_b->insertTask(makeTask(project->id, kStart)).ok());
    ASSERT_TRUE(store_b->insertTask(makeTask(project->id, kStart + 1)).ok());

    std::atomic<int> wake_ups{0};
    store_a->setTaskWakeHandler([&] { ++wake_ups; });
    auto waitForWakeUp = [&](int expected) {
        auto deadline = steady_clock::now() + std::chrono::seconds(5);
        while (wake_ups.load() < expected && steady_clock::now() < deadline) {
            std::this_thread::sleep_for(milliseconds(10));
        }
        return wake_ups.load() >= expected;
    };

    auto first = store_b->claimTask("worker-b", kStart, kLeaseMs);
    ASSERT_TRUE(first.ok()) << first.error().toLogString();
    ASSERT_TRUE(first->has_value());
    ASSERT_TRUE(store_b->retryTask((*first)->id, "worker-b", "try again", kStart + 5, kStart).ok());
    EXPECT_TRUE(waitForWakeUp(1)) << "retryTask sent no wake-up";

    auto second = store_b->claimTask("worker-b", kStart + 10, kLeaseMs);
    ASSERT_TRUE(second.ok()) << second.error().toLogString();
    ASSERT_TRUE(second->has_value());
    int before_reclaim = wake_ups.load();
    auto reclaimed = store_b->reclaimExpiredLeases(kStart + 10 + kLeaseMs + 1);
    ASSERT_TRUE(reclaimed.ok()) << reclaimed.error().toLogString();
    EXPECT_EQ(*reclaimed, 1);
    EXPECT_TRUE(waitForWakeUp(before_reclaim + 1)) << "reclaimExpiredLeases sent no wake-up";

    // A lost lease changes nothing, so nothing is sent.
    int before_lost = wake_ups.load();
    Status lost = store_b->retryTask((*second)->id, "worker-b", "late", kStart, kStart);
    ASSERT_FALSE(lost.ok());
    EXPECT_EQ(lost.error().code(), ErrorCode::Conflict);
    std::this_thread::sleep_for(milliseconds(300));
    EXPECT_EQ(wake_ups.load(), before_lost);
    store_a->setTaskWakeHandler(nullptr);
}

TEST_F(PostgresStoreTest, OwnNotificationsDoNotWake) {
    db::StorePtr store = openStore();
    ASSERT_NE(store, nullptr);
    auto project = store->ensureDefaultProject();
    ASSERT_TRUE(project.ok());
    std::atomic<int> wake_ups{0};
    store->setTaskWakeHandler([&] { ++wake_ups; });
    // The queue of this process already wakes its own workers on enqueue.
    ASSERT_TRUE(store->insertTask(makeTask(project->id, kStart)).ok());
    std::this_thread::sleep_for(milliseconds(300));
    EXPECT_EQ(wake_ups.load(), 0);
    store->setTaskWakeHandler(nullptr);
}

TEST_F(PostgresStoreTest, RecoversFromTerminatedConnections) {
    db::StorePtr store = openStore();
    ASSERT_NE(store, nullptr);
    auto project = store->ensureDefaultProject();
    ASSERT_TRUE(project.ok());
    std::atomic<int> wake_ups{0};
    store->setTaskWakeHandler([&] { ++wake_ups; });

    terminateOtherSessions(url_);

    // The pool replaces the closed connections before using them.
    auto again = store->getProject(project->id);
    ASSERT_TRUE(again.ok()) << again.error().toLogString();
    EXPECT_EQ(again->id, project->id);
    ASSERT_TRUE(store->insertTask(makeTask(project->id, kStart)).ok());

    // The listener reconnects and wakes the workers once, because
    // notifications may have been missed while it was away.
    auto deadline = steady_clock::now() + std::chrono::seconds(10);
    while (wake_ups.load() == 0 && steady_clock::now() < deadline) {
        std::this_thread::sleep_for(milliseconds(20));
    }
    EXPECT_EQ(wake_ups.load(), 1);

    // It listens again: another store's task wakes this one.
    db::StorePtr other = openStore();
    ASSERT_NE(other, nullptr);
    ASSERT_TRUE(other->insertTask(makeTask(project->id, kStart)).ok());
    deadline = steady_clock::now() + std::chrono::seconds(5);
    while (wake_ups.load() < 2 && steady_clock::now() < deadline) {
        std::this_thread::sleep_for(milliseconds(10));
    }
    EXPECT_EQ(wake_ups.load(), 2);
    store->setTaskWakeHandler(nullptr);
}

TEST_F(PostgresStoreTest, DatabaseUrlSelectsPostgres) {
    auto by_url = db::openStore(url_, "ignored");
    ASSERT_TRUE(by_url.ok()) << by_url.error().toLogString();
    EXPECT_TRUE((*by_url)->ensureDefaultProject().ok());

    std::string postgresql_url = "postgresql" + url_.substr(url_.find("://"));
    auto by_long_scheme = db::openStore(postgresql_url + "?pool_size=2", "ignored");
    ASSERT_TRUE(by_long_scheme.ok()) << by_long_scheme.error().toLogString();

    auto bad_pool = db::openStore(url_ + "?pool_size=0", "ignored");
    ASSERT_FALSE(bad_pool.ok());
    EXPECT_EQ(bad_pool.error().code(), ErrorCode::InvalidArgument);

    // Port 1 on the loopback address has no server.
    auto unreachable = db::openStore("postgres://postgres@127.0.0.1:1/postgres", "ignored");
    ASSERT_FALSE(unreachable.ok());
    EXPECT_EQ(unreachable.error().code(), ErrorCode::Unavailable);
    EXPECT_NE(unreachable.error().message().find("127.0.0.1"), std::string::npos)
        << unreachable.error().message();
}

}  // namespace
}  // namespace bitmill::integration
