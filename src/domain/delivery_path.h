// The path under which the delivery listener serves a file, derived from
// its folder, filename, id and extension, the rules for user-given folders
// and filenames, and the ETag a file is served with.
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"
#include "domain/records.h"

namespace bitmill::domain {

// Returns the delivery path of `file` without a leading '/':
// "{folder}/{filename}" or "{filename}" when the file has a filename,
// otherwise "{folder}/{id}.{ext}" or "{id}.{ext}". The extension comes from
// props.extension, and ".{ext}" is left out when that is empty. Requires
// folder and filename to be valid (validateFolder, validateFilename). A
// folder's leading or trailing '/' is dropped.
std::string deliveryPathFor(const FileRecord& file);

// Returns file.etag, or when that is empty a quoted strong ETag derived
// from the file's id, size and update time.
std::string deliveryEtagFor(const FileRecord& file);

// Checks a folder such as "videos/2025": one or more '/'-separated
// segments, none empty, "." or "..", no leading '/', no control characters,
// at most 255 bytes per segment and 1024 bytes in all. InvalidArgument
// names the value and the rule it breaks.
Status validateFolder(std::string_view folder);

// Checks a filename such as "clip.mp4" with the rules of validateFolder for
// a single segment, so it must not contain '/'.
Status validateFilename(std::string_view filename);

}  // namespace bitmill::domain
