// Task endpoints: create (validated by domain::parseTaskRequest), list,
// get and cancel. Creating only inserts a pending task and wakes the
// workers; nothing runs on the request thread.
#include <algorithm>
#include <array>

#include "api/body_fields.h"
#include "api/handlers.h"
#include "api/json_mapping.h"
#include "api/pagination.h"
#include "core/clock.h"
#include "core/ids.h"
#include "domain/task_options.h"
#include "domain/task_request.h"
#include "fmt/format.h"
#include "net/url_fetcher.h"

namespace bitmill::api {

namespace {

// Kinds whose task handlers this build has.
const std::vector<std::string> kAvailableKinds = {"ingest", "video", "image", "audio"};

// Page size of GET /tasks when the request sets none.
constexpr int kDefaultTaskLimit = 20;

Error taskNotFound(const std::string& task_id) {
    return Error::notFound(fmt::format("task '{}' not found", task_id));
}

// Maps a store NotFound to the contract's message and keeps other errors.
Error storeError(const Error& error, const std::string& task_id) {
    return error.code() == ErrorCode::NotFound ? taskNotFound(task_id) : error;
}

// Checks the kind before the full validation so that known kinds without a
// handler in this build get a 422 rather than a generic validation error.
Status checkKindAvailable(const Json& body) {
    auto kind_field = body.find("kind");
    if (kind_field == body.end() || kind_field->is_null()) {
        return Error::invalidArgument(
            fmt::format("missing required field \"kind\"; accepted kinds: {}",
                        domain::joinNames(kAvailableKinds)));
    }
    if (!kind_field->is_string()) {
        return wrongFieldType("kind", *kind_field, "a string");
    }
    const std::string kind = kind_field->get<std::string>();
    auto canonical = domain::canonicalKind(kind);
    if (!canonical) {
        return Error::invalidArgument(fmt::format("unknown kind \"{}\"; accepted kinds: {}", kind,
                                                  domain::joinNames(kAvailableKinds)));
    }
    if (std::find(kAvailableKinds.begin(), kAvailableKinds.end(), *canonical) ==
        kAvailableKinds.end()) {
        return Error(ErrorCode::UnsupportedMedia,
                     fmt::format("kind \"{}\" is not available in this build; accepted kinds: {}",
                                 kind, domain::joinNames(kAvailableKinds)));
    }
    return okStatus();
}

// Rejects options that the contract defines but this build does not run,
// instead of storing them and silently ignoring them.
Status checkOptionsAvailable(const domain::TaskRequest& request) {
    if (request.webhook_url) {
        return Error(ErrorCode::UnsupportedMedia,
                     "option \"webhook_url\" is not available in this build: webhooks are not "
                     "implemented yet");
    }
    return okStatus();
}

// Checks that the input file can be read now: its ingest or upload has
// finished and it is not a failed one.
Status checkInputReady(const domain::FileRecord& input) {
    if (input.status == "ready") {
        return okStatus();
    }
    if (input.status == "failed") {
        return Error::conflict(
            fmt::format("file '{}' is not ready (status failed): its ingest failed, so ingest or "
                        "upload the source again",
                        input.id));
    }
    return Error::conflict(fmt::format(
        "file '{}' is not ready (status {}); wait for its ingest to finish", input.id,
        input.status));
}

// Checks the input of `request`: exactly one of file_id and url, no
// file_id for ingest, and a well-formed http(s) URL.
Status checkTaskInput(const domain::TaskRequest& request) {
    if (request.file_id && request.url) {
        return Error::invalidArgument(
            "invalid task: set either \"file_id\" or \"url\" as the input, not both");
    }
    if (!request.file_id && !request.url) {
        return Error::invalidArgument(
            "missing required field \"file_id\" or \"url\": a task needs an input");
    }
    if (request.kind == "ingest" && request.file_id) {
        return Error::invalidArgument(
            "invalid field \"file_id\" for kind \"ingest\": ingest takes a \"url\" only");
    }
    if (request.url) {
        BM_RETURN_IF_ERROR(net::validateFetchUrl(*request.url));
    }
    return okStatus();
}

Result<ApiResponse> createTask(RequestContext& context) {
    BM_RETURN_IF_ERROR(checkKindAvailable(context.body));
    BM_ASSIGN_OR_RETURN(domain::TaskRequest request, domain::parseTaskRequest(context.body));
    BM_RETURN_IF_ERROR(checkTaskInput(request));
    BM_RETURN_IF_ERROR(checkOptionsAvailable(request));

    const int64_t now = nowMillis();
    domain::TaskRecord task;
    task.id = newId("task_");
    task.project_id = context.projectId();
    task.kind = request.kind;
    task.status = domain::TaskStatus::Pending;
    task.options = request.options.is_object() ? request.options : Json::object();
    // The worker reads the shared options from the stored options.
    if (request.ref) {
        task.options["ref"] = *request.ref;
    }
    if (request.folder) {
        task.options["folder"] = *request.folder;
    }
    if (request.filename) {
        task.options["filename"] = *request.filename;
    }
    task.webhook_url = request.webhook_url;
    task.created_by = context.key.id;
    task.max_attempts = context.api.config.max_attempts;
    task.run_after_ms = now;
    task.created_ms = now;
    task.updated_ms = now;

    if (request.file_id) {
        auto input = context.api.store->getFile(context.projectId(), *request.file_id);
        if (!input.ok()) {
            if (input.error().code() == ErrorCode::NotFound) {
                return Error::notFound(fmt::format("file '{}' not found", *request.file_id));
            }
            return input.error();
        }
        BM_RETURN_IF_ERROR(checkInputReady(*input));
        BM_RETURN_IF_ERROR(domain::checkTaskInputFile(request, input->id, input->props));
        task.input_file_id = input->id;
        task.media_id = input->media_id;
    } else {
        // With a URL input, media_id stays empty: the worker ingests the URL
        // first and the new media becomes the task's media.
        task.input_url = request.url;
    }

    BM_RETURN_IF_ERROR(context.api.store->insertTask(task));
    if (context.api.wake_workers) {
        context.api.wake_workers();
    }
    return ApiResponse::object(taskToJson(task, context.api, *context.api.store), "/tasks", 201);
}

Result<db::TaskFilter> parseTaskFilter(const httplib::Request& request) {
    db::TaskFilter filter;
    if (request.has_param("status")) {
        const std::string text = request.get_param_value("status");
        filter.status = domain::parseTaskStatus(text);
        if (!filter.status) {
            return Error::invalidArgument(fmt::format(
                "invalid query parameter \"status\": '{}' is not one of pending, waiting, "
                "processing, completed, failed, cancelled",
                text));
        }
    }
    if (request.has_param("kind")) {
        filter.kind = request.get_param_value("kind");
    }
    if (request.has_param("media_id")) {
        filter.media_id = request.get_param_value("media_id");
    }
    return filter;
}

Result<ApiResponse> listTasks(RequestContext& context) {
    BM_ASSIGN_OR_RETURN(PageInfo page, parsePageQuery(context.request, kDefaultTaskLimit));
    BM_ASSIGN_OR_RETURN(db::TaskFilter filter, parseTaskFilter(context.request));
    BM_ASSIGN_OR_RETURN(auto tasks,
                        context.api.store->listTasks(context.projectId(), filter,
                                                     db::PageRequest{page.page, page.limit}));
    Json items = Json::array();
    for (const auto& task : tasks.items) {
        items.push_back(taskToJson(task, context.api, *context.api.store));
    }
    page.total = tasks.total;
    return ApiResponse::list(std::move(items), page);
}

Result<ApiResponse> getTask(RequestContext& context) {
    const std::string task_id = context.pathParameter(0);
    auto task = context.api.store->getTask(context.projectId(), task_id);
    if (!task.ok()) {
        return storeError(task.error(), task_id);
    }
    return ApiResponse::object(taskToJson(*task, context.api, *context.api.store), "/tasks");
}

Result<ApiResponse> cancelTask(RequestContext& context) {
    const std::string task_id = context.pathParameter(0);
    auto current = context.api.store->getTask(context.projectId(), task_id);
    if (!current.ok()) {
        return storeError(current.error(), task_id);
    }
    if (current->status == domain::TaskStatus::Completed ||
        current->status == domain::TaskStatus::Failed) {
        return Error::conflict(fmt::format("cancel task '{}': the task is already {}", task_id,
                                           domain::toString(current->status)));
    }
    auto cancelled = context.api.store->cancelTask(context.projectId(), task_id, nowMillis());
    if (!cancelled.ok()) {
        return storeError(cancelled.error(), task_id);
    }
    return ApiResponse::object(taskToJson(*cancelled, context.api, *context.api.store), "/tasks");
}

}  // namespace

void registerTaskRoutes(Router& router) {
    router.add("POST", "/tasks", createTask);
    router.add("GET", "/tasks", listTasks);
    router.add("GET", "/tasks/{id}", getTask);
    router.add("POST", "/tasks/{id}/cancel", cancelTask);
}

}  // namespace bitmill::api
