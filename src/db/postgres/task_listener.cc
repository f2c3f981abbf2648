// The LISTEN thread of the PostgreSQL store.
#include "db/postgres/task_listener.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "core/log.h"

namespace bitmill::db::postgres {

namespace {

// Reconnection delays after the listening connection is lost.
constexpr int kFirstRetryMs = 100;
constexpr int kMaxRetryMs = 5'000;
// Maximum time the thread waits without reading the connection. The stop
// signal wakes it sooner.
constexpr int kPollTimeoutMs = 5'000;

}  // namespace

TaskWakeListener::TaskWakeListener(std::string url, std::string own_payload)
    : url_(std::move(url)), own_payload_(std::move(own_payload)) {
    stop_event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_event_fd_ < 0) {
        log::get("db")->error(
            "task wake-up listener disabled: eventfd failed errno={}; workers "
            "see other processes' tasks only when they poll",
            errno);
    }
}

TaskWakeListener::~TaskWakeListener() {
    stopping_ = true;
    if (stop_event_fd_ >= 0) {
        uint64_t increment = 1;
        (void)!write(stop_event_fd_, &increment, sizeof(increment));
    }
    if (thread_.joinable()) {
        thread_.join();
    }
    if (stop_event_fd_ >= 0) {
        close(stop_event_fd_);
    }
}

void TaskWakeListener::setHandler(std::function<void()> handler) {
    bool start = handler != nullptr;
    {
        std::lock_guard<std::mutex> lock(handler_mutex_);
        handler_ = std::move(handler);
    }
    if (!start) {
        return;
    }
    std::lock_guard<std::mutex> lock(start_mutex_);
    if (thread_.joinable() || stop_event_fd_ < 0) {
        return;
    }
    // The first LISTEN runs here, before the thread exists, so that a
    // notification sent after setHandler returns is delivered.
    bool listening = listen();
    thread_ = std::thread([this, listening] { run(listening); });
}

bool TaskWakeListener::listen() {
    Result<std::unique_ptr<Connection>> opened = Connection::open(url_);
    if (!opened.ok()) {
        log::get("db")->warn("task wake-up listener: connect failed error=\"{}\"",
                             opened.error().toLogString());
        return false;
    }
    Status listening =
        (*opened)->runScript(fmt::format("LISTEN {}", kTaskChannel), "listen for task wake-ups");
    if (!listening.ok()) {
        log::get("db")->warn("task wake-up listener: LISTEN failed error=\"{}\"",
                             listening.error().toLogString());
        return false;
    }
    connection_ = std::move(opened).value();
    return true;
}

void TaskWakeListener::run(bool listening) {
    int retry_ms = kFirstRetryMs;
    while (!stopping_) {
        if (!listening) {
            if (!waitForInput(/*with_socket=*/false, retry_ms)) {
                return;
            }
            listening = listen();
            if (!listening) {
                retry_ms = std::min(retry_ms * 2, kMaxRetryMs);
                continue;
            }
            retry_ms = kFirstRetryMs;
            log::get("db")->info("task wake-up listener connected");
            // Notifications sent while no connection listened are lost, so
            // the workers look for due tasks once.
            callHandler();
        }
        if (!waitForInput(/*with_socket=*/true, kPollTimeoutMs)) {
            return;
        }
        bool woken = false;
        if (!readNotifications(woken)) {
            log::get("db")->warn("task wake-up listener lost its connection; reconnecting");
            connection_.reset();
            listening = false;
        }
        if (woken) {
            callHandler();
        }
    }
}

bool TaskWakeListener::waitForInput(bool with_socket, int timeout_ms) {
    pollfd fds[2] = {{stop_event_fd_, POLLIN, 0}, {-1, POLLIN, 0}};
    if (with_socket) {
        fds[1].fd = PQsocket(connection_->handle());
    }
    int ready = poll(fds, with_socket ? 2 : 1, timeout_ms);
    if (ready < 0 && errno != EINTR) {
        log::get("db")->error("task wake-up listener: poll failed errno={}", errno);
        return false;
    }
    return !stopping_;
}

bool TaskWakeListener::readNotifications(bool& woken) {
    PGconn* connection = connection_->handle();
    if (PQconsumeInput(connection) != 1 || PQstatus(connection) != CONNECTION_OK) {
        return false;
    }
    while (PGnotify* notification = PQnotifies(connection)) {
        if (own_payload_ != notification->extra) {
            woken = true;
        }
        PQfreemem(notification);
    }
    return true;
}

void TaskWakeListener::callHandler() {
    std::lock_guard<std::mutex> lock(handler_mutex_);
    if (handler_) {
        handler_();
    }
}

}  // namespace bitmill::db::postgres
