// Mapping of stored records to the JSON objects of the API: Task, File,
// media file item and Media, with every required field present and of the
// type strict clients (PHP SDK 1.0.0) expect. Shared by the API and the
// delivery listener.
#pragma once

#include <string>
#include <vector>

#include "api/api.h"
#include "core/config.h"
#include "core/json.h"
#include "db/store.h"
#include "domain/records.h"

namespace bitmill::api {

// Returns the base URL that file `url` fields start with, without a
// trailing '/': config.public_delivery_url, or "http://" + delivery_listen
// when that is empty.
std::string publicDeliveryBase(const Config& config);

// Returns the public URL of `file`: the delivery base + "/" + delivery_path.
std::string fileUrl(const domain::FileRecord& file, const Config& config);

// Returns the File object of `file`: id, media_id, object, kind, type,
// measured fields (from file.props, null when not measured), filesize,
// ref/folder/filename/label, url, metadata, original, created_by,
// created/updated (RFC 3339 with milliseconds) and status.
Json fileToJson(const domain::FileRecord& file, const ApiContext& context);

// Returns the item of a Media `files` array: the File object without
// media_id.
Json mediaFileItemJson(const domain::FileRecord& file, const ApiContext& context);

// Returns the Media object of `media` with `files` (of that media, in the
// order given) as items and `urls` mapping each file's ref to its URL
// ("original" for the original file). When several files share a ref, the
// most recently updated one wins.
Json mediaToJson(const domain::MediaRecord& media, const std::vector<domain::FileRecord>& files,
                 const ApiContext& context);

// Returns the Task object of `task`. `input` is the File object of the
// input file (or {"url": …} while only a URL is known), `output` the File
// object of the output or null. Reads those files from `store`; a file
// that is gone since (deleted) maps to null. Also emits the extension
// fields started, finished and attempts.
Json taskToJson(const domain::TaskRecord& task, const ApiContext& context, db::Store& store);

}  // namespace bitmill::api
