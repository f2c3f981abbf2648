// Wakes idle workers when another process makes a task due: a background
// thread LISTENs on the task channel from a connection of its own and
// calls a handler for every notification that another store sent.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "db/postgres/connection.h"

namespace bitmill::db::postgres {

// The channel that insertTask, retryTask and the lease reclaims NOTIFY.
inline constexpr const char* kTaskChannel = "bitmill_tasks";

class TaskWakeListener {
public:
    // `own_payload` is the payload this process's store sends; its own
    // notifications are skipped, because its queue wakes its workers
    // directly.
    TaskWakeListener(std::string url, std::string own_payload);
    // Stops the thread; returns after any handler call has finished.
    ~TaskWakeListener();
    TaskWakeListener(const TaskWakeListener&) = delete;
    TaskWakeListener& operator=(const TaskWakeListener&) = delete;

    // Replaces the handler; null stops the calls. Returns only when no call
    // of the previous handler is running. The first non-null handler
    // starts listening: when the database is reachable, LISTEN is in
    // effect before this returns, so no later notification is missed.
    // After the listening connection is lost and opened again, the handler
    // is called once, because notifications may have been missed meanwhile.
    void setHandler(std::function<void()> handler);

private:
    // Opens the connection and LISTENs; false (logged) on failure.
    bool listen();
    void run(bool listening);
    // Waits for the connection's socket or the stop signal, at most
    // `timeout_ms`; returns false when stopping.
    bool waitForInput(bool with_socket, int timeout_ms);
    // Reads notifications; returns false when the connection was lost.
    bool readNotifications(bool& woken);
    void callHandler();

    std::string url_;
    std::string own_payload_;
    std::unique_ptr<Connection> connection_;  // used by the thread once it runs

    // Held while the handler runs, so setHandler can wait for a call.
    std::mutex handler_mutex_;
    std::function<void()> handler_;

    std::mutex start_mutex_;
    std::thread thread_;
    std::atomic<bool> stopping_{false};
    int stop_event_fd_ = -1;  // eventfd written to stop the thread
};

}  // namespace bitmill::db::postgres
