// Lending, replacing and returning pooled PostgreSQL connections.
#include "db/postgres/connection_pool.h"

#include <algorithm>

#include "core/log.h"

namespace bitmill::db::postgres {

PooledConnection::~PooledConnection() {
    if (connection_ != nullptr) {
        pool_->release(std::move(connection_));
    }
}

ConnectionPool::ConnectionPool(std::string url, int size)
    : url_(std::move(url)), size_(std::max(size, 1)) {
}

Result<PooledConnection> ConnectionPool::acquire() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
        if (!idle_.empty()) {
            std::unique_ptr<Connection> connection = std::move(idle_.back());
            idle_.pop_back();
            lock.unlock();
            if (connection->isUsable()) {
                return PooledConnection(this, std::move(connection));
            }
            log::get("db")->warn("replacing a PostgreSQL connection the server closed");
            connection.reset();
            lock.lock();
            --open_count_;
            continue;
        }
        if (open_count_ < size_) {
            ++open_count_;
            lock.unlock();
            Result<std::unique_ptr<Connection>> opened = Connection::open(url_);
            if (!opened.ok()) {
                discard();
                return opened.error();
            }
            return PooledConnection(this, std::move(opened).value());
        }
        returned_.wait(lock);
    }
}

void ConnectionPool::release(std::unique_ptr<Connection> connection) {
    if (connection->isUsable() && connection->inTransaction() && !connection->rollback().ok()) {
        connection.reset();
    }
    if (connection != nullptr && !connection->isUsable()) {
        connection.reset();
    }
    if (connection == nullptr) {
        discard();
        return;
    }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        idle_.push_back(std::move(connection));
    }
    returned_.notify_one();
}

void ConnectionPool::discard() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        --open_count_;
    }
    returned_.notify_one();
}

}  // namespace bitmill::db::postgres
