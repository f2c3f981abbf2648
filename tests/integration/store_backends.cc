// Backend list and record builders of the integration tests.
#include "store_backends.h"

#include "core/ids.h"
#include "db/sqlite/sqlite_store.h"

namespace bitmill::integration {

std::vector<StoreBackend> storeBackends() {
    return {
        {"Sqlite",
         [](const std::string& folder) {
             return db::openSqliteStore((std::filesystem::path(folder) / "bitmill.db").string());
         }},
    };
}

TempFolder::TempFolder() {
    path_ = std::filesystem::temp_directory_path() / ("bitmill-test-" + randomBase62(12));
    std::filesystem::create_directories(path_);
}

TempFolder::~TempFolder() {
    std::error_code error;
    std::filesystem::remove_all(path_, error);
}

domain::MediaRecord makeMedia(const std::string& project_id, int64_t created_ms) {
    domain::MediaRecord media;
    media.id = newId("med_");
    media.project_id = project_id;
    media.kind = "video";
    media.title = "Holiday";
    media.width = 1920;
    media.height = 1080;
    media.duration = 12.5;
    media.metadata = Json{{"camera", "x100"}};
    media.created_ms = created_ms;
    media.updated_ms = created_ms;
    return media;
}

domain::FileRecord makeFile(const std::string& project_id, const std::string& media_id,
                            int64_t created_ms) {
    domain::FileRecord file;
    file.id = newId("file_");
    file.project_id = project_id;
    file.media_id = media_id;
    file.props.kind = "video";
    file.props.type = "video/mp4";
    file.props.container = "mp4";
    file.props.extension = "mp4";
    file.props.codec = "h264";
    file.props.width = 1920;
    file.props.height = 1080;
    file.props.duration = 12.5;
    file.props.fps = 30.0;
    file.filesize = 123456;
    file.ref = "original";
    file.storage_key = project_id + "/" + file.id + ".mp4";
    file.delivery_path = file.id + ".mp4";
    file.etag = "\"" + file.id + "\"";
    file.metadata = Json{{"source", "test"}};
    file.original = true;
    file.created_by = "user";
    file.created_ms = created_ms;
    file.updated_ms = created_ms;
    return file;
}

domain::TaskRecord makeTask(const std::string& project_id, int64_t created_ms) {
    domain::TaskRecord task;
    task.id = newId("task_");
    task.project_id = project_id;
    task.kind = "video";
    task.options = Json{{"width", 640}, {"format", "mp4"}};
    task.input_url = "https://example.com/input.mp4";
    task.created_by = "user";
    task.max_attempts = 3;
    task.run_after_ms = created_ms;
    task.created_ms = created_ms;
    task.updated_ms = created_ms;
    return task;
}

}  // namespace bitmill::integration
