// BlobStore on a local file system: one file per key under a root folder.
#pragma once

#include <string>

#include "core/error.h"
#include "storage/blob_store.h"

namespace bitmill::storage {

// Opens the store rooted at `root`, creating the folder and its ".tmp"
// subfolder (which contains writes in progress and cannot start a key).
// Temporary files older than a day, left by a crash, are deleted.
//
// Writes go to a file in root/.tmp, are fsynced, then renamed into place and
// the folder fsynced, so an object appears whole or not at all and
// survives a crash once commit() or putFile() returns. Keys failing
// checkBlobKey, or starting with ".tmp/", are InvalidArgument. I/O failures
// are Unavailable, a full disk ResourceExhausted, a missing object NotFound.
// Error messages leave out paths and keys, which go into the detail.
// Thread-safe; readers and writers do not share state.
Result<BlobStorePtr> openLocalBlobStore(const std::string& root);

}  // namespace bitmill::storage
