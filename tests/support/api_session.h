// The bitmill API as the end-to-end tests use it: uploads to the delivery
// listener, task creation, polling a task until it finishes, and downloads of
// output files. Calls that expect a particular status throw
// std::runtime_error with the request and the response, which GoogleTest
// reports as a test failure.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "http_client.h"

namespace bitmill::e2e {

class ServerProcess;

// True for the statuses a task never leaves: completed, failed, cancelled.
bool isTerminalStatus(const std::string& status);

class ApiSession {
public:
    ApiSession(std::string api_url, std::string delivery_url, std::string api_key);
    explicit ApiSession(const ServerProcess& server);

    HttpClient& api() { return api_; }
    HttpClient& delivery() { return delivery_; }
    const std::string& apiKey() const { return api_key_; }

    // PUT /{remote_path} on the delivery listener with the API key; returns
    // the raw response (201 File, 202 partial, or an error).
    HttpResponse upload(const std::filesystem::path& local_file, const std::string& remote_path,
                        const Headers& headers = {});
    // Uploads and returns the File object; throws unless the status is 201.
    Json uploadFile(const std::filesystem::path& local_file, const std::string& remote_path);
    // Uploads under "inputs/" with the local file name.
    Json uploadFile(const std::filesystem::path& local_file);

    // POST /tasks; throws unless 201. Returns the Task.
    Json createTask(const Json& body);
    Json getTask(const std::string& task_id);
    // Polls GET /tasks/{id} every 200 ms until the status is terminal and
    // returns that Task; throws with the last state seen after `timeout`.
    Json waitForTask(const std::string& task_id,
                     std::chrono::seconds timeout = std::chrono::seconds(180));
    // Creates a task and waits for it.
    Json runTask(const Json& body, std::chrono::seconds timeout = std::chrono::seconds(180));
    // Polls until the task reaches `status` (e.g. "processing"); throws after
    // `timeout` or when the task ends in another status first.
    Json waitForStatus(const std::string& task_id, const std::string& status,
                       std::chrono::seconds timeout = std::chrono::seconds(60));

    // GET on the API; throws unless 200. Returns the body as JSON.
    Json getJson(const std::string& path);

    // Downloads an absolute delivery URL into `destination`; throws unless 200.
    void download(const std::string& url, const std::filesystem::path& destination);

private:
    HttpClient api_;
    HttpClient delivery_;
    std::string api_key_;
};

}  // namespace bitmill::e2e
