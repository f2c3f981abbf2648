#include "db/path_owner.h"

namespace bitmill::db {

Status checkDeliveryPathOwner(Store& store, const std::string& path,
                              const std::string& project_id) {
    auto holder = store.findFileByDeliveryPath(path);
    if (!holder.ok()) {
        return holder.error().code() == ErrorCode::NotFound ? okStatus() : holder.error();
    }
    if (holder->project_id != project_id) {
        return Error::conflict("path '" + path +
                               "' is used by another project; choose another folder or filename");
    }
    return okStatus();
}

}  // namespace bitmill::db
