// Ownership of delivery paths. Paths on the delivery listener name no
// project, so every writer of a path checks here that no other project's
// file is delivered there before publishing its own.
#pragma once

#include <string>

#include "core/error.h"
#include "db/store.h"

namespace bitmill::db {

// Returns Conflict when a file of a project other than `project_id` is
// delivered at `path`; OK when the path is free or the project's own.
// NOTE: two projects that publish one new path at the same moment can both
// pass this check, because the store keeps no per-path claim. The newer
// file then shadows the older one.
Status checkDeliveryPathOwner(Store& store, const std::string& path,
                              const std::string& project_id);

}  // namespace bitmill::db
