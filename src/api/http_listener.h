// A Listener over one configured httplib::Server: binds, serves on a
// background thread and stops. Used for both the API and the delivery
// listener.
#pragma once

#include <httplib.h>

#include <memory>
#include <string>
#include <thread>

#include "api/api.h"

namespace bitmill::api {

// Worker threads of a listener's pool. Each keep-alive connection occupies
// a thread while it is open, so the pool is sized for many idle clients.
inline constexpr size_t kListenerThreads = 64;

// Applies the settings both listeners share: the thread pool, keep-alive
// limits and socket timeouts.
void configureServer(httplib::Server& server);

class HttpListener : public Listener {
  public:
    // `server` has its routes already; `name` ("api", "delivery") is for logs.
    HttpListener(std::unique_ptr<httplib::Server> server, std::string name);
    ~HttpListener() override;

    HttpListener(const HttpListener&) = delete;
    HttpListener& operator=(const HttpListener&) = delete;

    // Binds to host:port (port 0 picks a free one) and serves on a thread.
    // Unavailable when the address cannot be bound.
    Result<int> start(const std::string& host, int port) override;
    // Stops accepting, lets in-flight requests finish and joins the thread.
    // Safe to call more than once.
    void stop() override;

  private:
    std::unique_ptr<httplib::Server> server_;
    std::string name_;
    std::thread thread_;
    // The socket httplib bound, recorded by the socket-options callback.
    int listen_socket_ = -1;
};

}  // namespace bitmill::api
