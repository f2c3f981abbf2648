// `bitmill serve`: the composition root. Opens the store, blob store and
// queue, installs keys, starts the workers and both listeners, and shuts
// down gracefully on SIGTERM or SIGINT.
#pragma once

#include "core/config.h"

namespace bitmill::server {

// Runs until a termination signal; returns the process exit code.
int runServe(Config config);

}  // namespace bitmill::server
