// The bitmill API calls shared by the end-to-end tests.
#include "api_session.h"

#include <cctype>
#include <stdexcept>
#include <thread>

#include "process.h"
#include "server_process.h"

namespace bitmill::e2e {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(200);

std::string contentTypeFor(const std::filesystem::path& file) {
    std::string extension = file.extension().string();
    for (auto& c : extension) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (extension == ".mp4" || extension == ".m4v") {
        return "video/mp4";
    }
    if (extension == ".jpg" || extension == ".jpeg") {
        return "image/jpeg";
    }
    if (extension == ".png") {
        return "image/png";
    }
    // The server has to measure the type from the bytes anyway.
    return "application/octet-stream";
}

}  // namespace

bool isTerminalStatus(const std::string& status) {
    return status == "completed" || status == "failed" || status == "cancelled";
}

ApiSession::ApiSession(std::string api_url, std::string delivery_url, std::string api_key)
    : api_(std::move(api_url), api_key), delivery_(std::move(delivery_url), api_key),
      api_key_(std::move(api_key)) {}

ApiSession::ApiSession(const ServerProcess& server)
    : ApiSession(server.apiUrl(), server.deliveryUrl(), server.apiKey()) {}

HttpResponse ApiSession::upload(const std::filesystem::path& local_file,
                                const std::string& remote_path, const Headers& headers) {
    std::string bytes = readFileBytes(local_file);
    std::string path = remote_path.empty() || remote_path[0] != '/' ? "/" + remote_path
                                                                    : remote_path;
    return delivery_.send("PUT", path, bytes, contentTypeFor(local_file), headers);
}

Json ApiSession::uploadFile(const std::filesystem::path& local_file,
                            const std::string& remote_path) {
    HttpResponse response = upload(local_file, remote_path);
    if (response.status != 201) {
        throw std::runtime_error("upload of " + local_file.string() +
                                 " failed: " + response.describe());
    }
    return response.json();
}

Json ApiSession::uploadFile(const std::filesystem::path& local_file) {
    return uploadFile(local_file, "inputs/" + local_file.filename().string());
}

Json ApiSession::createTask(const Json& body) {
    HttpResponse response = api_.post("/tasks", body);
    if (response.status != 201) {
        throw std::runtime_error("create task " + body.dump() + " failed: " + response.describe());
    }
    return response.json();
}

Json ApiSession::getTask(const std::string& task_id) { return getJson("/tasks/" + task_id); }

Json ApiSession::getJson(const std::string& path) {
    HttpResponse response = api_.get(path);
    if (response.status != 200) {
        throw std::runtime_error("unexpected status: " + response.describe());
    }
    return response.json();
}

Json ApiSession::waitForTask(const std::string& task_id, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    Json task;
    while (true) {
        task = getTask(task_id);
        if (isTerminalStatus(task.value("status", ""))) {
            return task;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            throw std::runtime_error("task " + task_id + " did not finish within " +
                                     std::to_string(timeout.count()) +
                                     " s; last state: " + task.dump());
        }
        std::this_thread::sleep_for(kPollInterval);
    }
}

Json ApiSession::waitForStatus(const std::string& task_id, const std::string& status,
                               std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    Json task;
    while (true) {
        task = getTask(task_id);
        std::string current = task.value("status", "");
        if (current == status) {
            return task;
        }
        if (isTerminalStatus(current)) {
            throw std::runtime_error("task " + task_id + " ended as '" + current +
                                     "' before reaching '" + status + "': " + task.dump());
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            throw std::runtime_error("task " + task_id + " did not reach '" + status +
                                     "' within " + std::to_string(timeout.count()) +
                                     " s; last state: " + task.dump());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

Json ApiSession::runTask(const Json& body, std::chrono::seconds timeout) {
    Json task = createTask(body);
    return waitForTask(task.at("id").get<std::string>(), timeout);
}

void ApiSession::download(const std::string& url, const std::filesystem::path& destination) {
    HttpResponse response = fetchUrl(url);
    if (response.status != 200) {
        throw std::runtime_error("download failed: " + response.describe());
    }
    writeFileBytes(destination, response.body);
}

}  // namespace bitmill::e2e
