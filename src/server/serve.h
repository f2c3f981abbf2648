// The composition root of the long-running roles. `bitmill serve` runs the
// API and delivery listeners and, unless workers is 0, workers; `bitmill
// worker` runs only workers. Both shut down gracefully on SIGTERM or SIGINT.
#pragma once

#include "core/config.h"

namespace bitmill::server {

// Runs until a termination signal; returns the process exit code.
int runServe(Config config);

// Runs workers (and the health listener when health_listen is set) until a
// termination signal; returns the process exit code.
int runWorker(Config config);

}  // namespace bitmill::server
