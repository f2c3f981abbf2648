// Names of task statuses as stored in the database and sent in the API.
#include "domain/records.h"

namespace bitmill::domain {

std::string_view toString(TaskStatus status) {
    switch (status) {
        case TaskStatus::Pending:
            return "pending";
        case TaskStatus::Waiting:
            return "waiting";
        case TaskStatus::Processing:
            return "processing";
        case TaskStatus::Completed:
            return "completed";
        case TaskStatus::Failed:
            return "failed";
        case TaskStatus::Cancelled:
            return "cancelled";
    }
    return "failed";
}

std::optional<TaskStatus> parseTaskStatus(std::string_view text) {
    for (TaskStatus status : {TaskStatus::Pending, TaskStatus::Waiting, TaskStatus::Processing,
                              TaskStatus::Completed, TaskStatus::Failed, TaskStatus::Cancelled}) {
        if (toString(status) == text) {
            return status;
        }
    }
    return std::nullopt;
}

bool isFinal(TaskStatus status) {
    return status == TaskStatus::Completed || status == TaskStatus::Failed ||
           status == TaskStatus::Cancelled;
}

}  // namespace bitmill::domain
