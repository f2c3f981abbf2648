// A fixed-size pool of PostgreSQL connections shared by the threads of one
// store. Connections open on demand and are replaced when the server
// closed them.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "db/postgres/connection.h"

namespace bitmill::db::postgres {

class ConnectionPool;

// A connection borrowed from the pool for the current call; the
// destructor gives it back.
class PooledConnection {
public:
    PooledConnection(ConnectionPool* pool, std::unique_ptr<Connection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    PooledConnection(PooledConnection&& other) noexcept = default;
    PooledConnection& operator=(PooledConnection&&) = delete;
    PooledConnection(const PooledConnection&) = delete;
    ~PooledConnection();

    Connection& operator*() { return *connection_; }
    Connection* operator->() { return connection_.get(); }

private:
    ConnectionPool* pool_;
    std::unique_ptr<Connection> connection_;
};

// Thread-safe. Holds at most `size` connections to `url`, idle or lent.
class ConnectionPool {
public:
    ConnectionPool(std::string url, int size);

    // Returns an idle connection, or opens one while fewer than `size`
    // exist, or waits for one to come back. An idle connection that the
    // server closed (restart, pg_terminate_backend) is replaced first.
    // Errors: Unavailable when a new connection cannot be opened.
    Result<PooledConnection> acquire();

    const std::string& url() const { return url_; }

private:
    friend class PooledConnection;

    // Takes `connection` back: rolls back a transaction left open by an
    // error return, and closes a connection that is no longer usable.
    void release(std::unique_ptr<Connection> connection);
    // Forgets a connection that was closed instead of returned.
    void discard();

    std::string url_;
    int size_;
    std::mutex mutex_;
    std::condition_variable returned_;
    std::vector<std::unique_ptr<Connection>> idle_;
    int open_count_ = 0;  // idle and lent connections
};

}  // namespace bitmill::db::postgres
