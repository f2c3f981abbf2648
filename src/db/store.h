// The repository interface over bitmill's metadata: one Store per process,
// implemented by db/sqlite (embedded default) and later db/postgres. Every
// method is thread-safe and atomic on its own; project-scoped reads return
// NotFound for ids of another project. Errors: NotFound, Conflict (a
// conditional update lost, a unique path taken), Unavailable (database busy
// or unreachable, retryable), Internal (a bug or a corrupt row).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "domain/records.h"

namespace bitmill::db {

struct PageRequest {
    int page = 1;    // 1-based
    int limit = 20;  // 1..100
};

template <typename T>
struct Page {
    std::vector<T> items;
    int64_t total = 0;  // items matching the filter, over all pages
};

struct TaskFilter {
    std::optional<domain::TaskStatus> status;
    std::optional<std::string> kind;
    std::optional<std::string> media_id;
    std::optional<std::string> parent_id;
};

// What a worker records when a task succeeds: the output file and the media
// rows. completeTask writes them in the transaction that completes the task,
// and only if the worker still owns it, so an output appears at most once.
struct TaskCompletion {
    // Inserted, or replacing the row with the same id (an ingest that fills
    // the file row POST /files created); becomes the task's output.
    std::optional<domain::FileRecord> output_file;
    // The fetched original of a URL input, inserted and set as the task's
    // input file.
    std::optional<domain::FileRecord> input_file;
    // When set, replaces the task's media row (kind, size, duration of an
    // ingest's new original).
    std::optional<domain::MediaRecord> media_update;
    // When set, a new media row inserted before the file (ingest).
    std::optional<domain::MediaRecord> media_insert;
};

// The number of unfinished tasks of one kind and status, for /metrics.
struct TaskCount {
    std::string kind;
    domain::TaskStatus status = domain::TaskStatus::Pending;
    int64_t count = 0;
};

class Store {
public:
    virtual ~Store() = default;

    // Projects and keys.

    // Returns the project named `name`, creating it on first call.
    virtual Result<domain::Project> ensureProject(const std::string& name) = 0;
    Result<domain::Project> ensureDefaultProject() { return ensureProject("default"); }
    virtual Result<domain::Project> getProject(const std::string& project_id) = 0;
    virtual Status updateProject(const domain::Project& project) = 0;
    virtual Status insertApiKey(const domain::ApiKey& key) = 0;
    // Returns the non-revoked key whose hash is `hash`, or NotFound.
    virtual Result<domain::ApiKey> findApiKeyByHash(const std::string& hash) = 0;
    virtual Result<std::vector<domain::ApiKey>> listApiKeys(const std::string& project_id) = 0;
    virtual Status revokeApiKey(const std::string& key_id, int64_t now_ms) = 0;

    // Media.

    virtual Status insertMedia(const domain::MediaRecord& media) = 0;
    virtual Result<domain::MediaRecord> getMedia(const std::string& project_id,
                                                 const std::string& media_id) = 0;
    virtual Result<Page<domain::MediaRecord>> listMedia(const std::string& project_id,
                                                        PageRequest page) = 0;
    virtual Status updateMedia(const domain::MediaRecord& media) = 0;
    // Deletes the media and its file rows; returns the deleted files so the
    // caller can remove their bytes.
    virtual Result<std::vector<domain::FileRecord>> deleteMedia(const std::string& project_id,
                                                                const std::string& media_id) = 0;

    // Files.

    virtual Status insertFile(const domain::FileRecord& file) = 0;
    virtual Result<domain::FileRecord> getFile(const std::string& project_id,
                                               const std::string& file_id) = 0;
    virtual Result<Page<domain::FileRecord>> listFiles(const std::string& project_id,
                                                       PageRequest page) = 0;
    // Files of one media, oldest first.
    virtual Result<std::vector<domain::FileRecord>> listMediaFiles(
        const std::string& project_id, const std::string& media_id) = 0;
    virtual Status updateFile(const domain::FileRecord& file) = 0;
    virtual Result<domain::FileRecord> deleteFile(const std::string& project_id,
                                                  const std::string& file_id) = 0;
    // Returns the most recently updated ready file whose delivery path is
    // `path` (any project: delivery paths are global), or NotFound.
    virtual Result<domain::FileRecord> findFileByDeliveryPath(const std::string& path) = 0;

    // Tasks.

    virtual Status insertTask(const domain::TaskRecord& task) = 0;
    virtual Result<domain::TaskRecord> getTask(const std::string& project_id,
                                               const std::string& task_id) = 0;
    // Newest first.
    virtual Result<Page<domain::TaskRecord>> listTasks(const std::string& project_id,
                                                       const TaskFilter& filter,
                                                       PageRequest page) = 0;
    // Sets status cancelled (and finished) unless the task is already final;
    // returns the task as it is afterwards.
    virtual Result<domain::TaskRecord> cancelTask(const std::string& project_id,
                                                  const std::string& task_id,
                                                  int64_t now_ms) = 0;

    // Queue operations (used by queue/). A task belongs to the worker named
    // in lease_owner while its status is processing, until reclaimExpiredLeases
    // takes an expired lease back. Every worker-side update is conditional on
    // both, so a worker that lost the task gets Conflict and must stop.

    // Claims the oldest pending task whose run_after has passed: status
    // processing, attempts + 1, lease until now + lease_ms. nullopt when
    // none is due.
    virtual Result<std::optional<domain::TaskRecord>> claimTask(const std::string& worker_id,
                                                                int64_t now_ms,
                                                                int64_t lease_ms) = 0;
    // Extends the lease and stores progress. Conflict when the lease was
    // lost or the task was cancelled.
    virtual Status heartbeatTask(const std::string& task_id, const std::string& worker_id,
                                 int progress, int64_t lease_until_ms, int64_t now_ms) = 0;
    virtual Status completeTask(const std::string& task_id, const std::string& worker_id,
                                const TaskCompletion& completion, int64_t now_ms) = 0;
    virtual Status failTask(const std::string& task_id, const std::string& worker_id,
                            const std::string& error, int64_t now_ms) = 0;
    // Puts a claimed task back to pending, to run after run_after_ms.
    virtual Status retryTask(const std::string& task_id, const std::string& worker_id,
                             const std::string& error, int64_t run_after_ms,
                             int64_t now_ms) = 0;
    // Finds processing tasks whose lease expired before now: those with
    // attempts left go back to pending, the others fail with a message
    // naming the attempts. Returns how many were changed.
    virtual Result<int> reclaimExpiredLeases(int64_t now_ms) = 0;
    // Does the same for every processing task, expired or not. Call it only
    // after a restart, from a process that is sure no other process uses the
    // database: the embedded server that holds its data-directory lock.
    virtual Result<int> reclaimAllLeases(int64_t now_ms) = 0;
    // Returns the number of pending tasks that are due.
    virtual Result<int64_t> countDueTasks(int64_t now_ms) = 0;
    // Counts the pending, waiting and processing tasks of every project by
    // kind and status. Finished tasks are not counted, so the cost follows
    // the queue's depth, not its history.
    virtual Result<std::vector<TaskCount>> countUnfinishedTasks() = 0;
    // Registers `handler` to be called, from a background thread, whenever
    // another process may have made a task due (inserted one, retried one or
    // reclaimed a lease), so idle workers wake without polling. Backends
    // shared by several processes implement it; the default does nothing.
    virtual void setTaskWakeHandler(std::function<void()> handler) { (void)handler; }

    // Chunked uploads.

    virtual Result<domain::UploadRecord> getOrCreateUpload(const domain::UploadRecord& upload) = 0;
    // Merges [first, last] into the received ranges and returns the record.
    virtual Result<domain::UploadRecord> addUploadRange(const std::string& upload_id,
                                                        int64_t first, int64_t last,
                                                        int64_t now_ms) = 0;
    virtual Status deleteUpload(const std::string& upload_id) = 0;

    // Idempotency.

    virtual Result<std::optional<domain::IdempotencyRecord>> findIdempotency(
        const std::string& project_id, const std::string& key, int64_t not_before_ms) = 0;
    // Conflict when the key is already stored. A record with status_code 0
    // is a reservation: the request is still running, maybe in another
    // process.
    virtual Status insertIdempotency(const domain::IdempotencyRecord& record) = 0;
    // Replaces the reservation of record.key made at record.created_ms with
    // the response in `record`. Conflict when that reservation is gone.
    virtual Status completeIdempotency(const domain::IdempotencyRecord& record) = 0;
    // Deletes the reservation of `key` made at `created_ms`; deleting one
    // that is gone succeeds. A stored response is never deleted here.
    virtual Status deleteIdempotencyReservation(const std::string& project_id,
                                                const std::string& key, int64_t created_ms) = 0;
};

using StorePtr = std::shared_ptr<Store>;

}  // namespace bitmill::db
