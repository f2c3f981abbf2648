// Binding, serving and stopping an httplib::Server on its own thread.
#include "api/http_listener.h"

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/log.h"
#include "fmt/format.h"

namespace bitmill::api {

namespace {

// Requests one keep-alive connection may carry before it is closed. At 1000,
// a benchmark client at 64 connections reconnected in bursts that overflowed
// the accept queue.
constexpr size_t kKeepAliveMaxRequests = 100'000;
// Pending connections the kernel queues before accept(). cpp-httplib 0.11
// listens with a backlog of 5, which drops connections under bursts.
constexpr int kListenBacklog = 1024;
constexpr time_t kKeepAliveTimeoutSeconds = 5;
constexpr time_t kReadTimeoutSeconds = 30;
constexpr time_t kWriteTimeoutSeconds = 30;
constexpr auto kStartTimeout = std::chrono::seconds(5);

}  // namespace

void configureServer(httplib::Server& server) {
    server.new_task_queue = [] { return new httplib::ThreadPool(kListenerThreads); };
    server.set_keep_alive_max_count(kKeepAliveMaxRequests);
    server.set_keep_alive_timeout(kKeepAliveTimeoutSeconds);
    server.set_read_timeout(kReadTimeoutSeconds, 0);
    server.set_write_timeout(kWriteTimeoutSeconds, 0);
    // httplib writes headers and body in separate sends. Without TCP_NODELAY,
    // Nagle's algorithm delays the body until the client's delayed ACK, which
    // added about 40 ms to each keep-alive request in api_listener_test.
    server.set_tcp_nodelay(true);
}

HttpListener::HttpListener(std::unique_ptr<httplib::Server> server, std::string name)
    : server_(std::move(server)), name_(std::move(name)) {
    // Replaces httplib's default options (SO_REUSEPORT, which would let a
    // second process bind the same port) and remembers the socket, so that
    // start() can raise its backlog.
    server_->set_socket_options([this](socket_t socket) {
        int yes = 1;
        setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
        listen_socket_ = socket;
    });
}

HttpListener::~HttpListener() {
    stop();
}

Result<int> HttpListener::start(const std::string& host, int port) {
    if (thread_.joinable()) {
        return Error::internal(fmt::format("start {} listener: already started", name_));
    }
    int bound_port = port;
    if (port == 0) {
        bound_port = server_->bind_to_any_port(host);
    } else if (!server_->bind_to_port(host, port)) {
        bound_port = -1;
    }
    if (bound_port <= 0) {
        return Error::unavailable(fmt::format(
            "start {} listener: cannot bind {}:{}; is the port in use?", name_, host, port));
    }
    // httplib already called listen(); on Linux a second call on the bound
    // socket only changes the backlog.
    if (listen_socket_ >= 0 && ::listen(listen_socket_, kListenBacklog) != 0) {
        log::get("api")->warn("{} listener: raising the listen backlog failed: {}", name_,
                              strerror(errno));
    }
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    // httplib's stop() does nothing until the server runs, so a stop()
    // right after start() would leave the thread serving forever.
    const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    while (!server_->is_running() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    log::get("api")->info("{} listener started address={}:{}", name_, host, bound_port);
    return bound_port;
}

void HttpListener::stop() {
    if (!thread_.joinable()) {
        return;
    }
    server_->stop();
    thread_.join();
    log::get("api")->info("{} listener stopped", name_);
}

}  // namespace bitmill::api
