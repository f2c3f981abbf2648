// The task process: `bitmill run-task JOB_FILE` reads a job written by a
// worker, runs the kind's handler through media/, and writes result.json
// into the job's work directory. Progress goes to stdout as lines
// "progress N". It runs under the resource limits its worker set, so a
// hostile input can only end this process.
#pragma once

#include <string>

namespace bitmill::tasks {

// Runs the job in `job_path`; returns the process exit code (0 when a
// result file was written, even one that carries an error).
int runTaskProcess(const std::string& job_path);

// `bitmill probe FILE LIMITS_JSON`: prints {"props": {...}} with the
// file's measured properties, or {"error": {...}}, as one line on stdout.
int runProbeProcess(const std::string& path, const std::string& limits_json);

// `bitmill task-host`: initializes the media libraries once, then serves
// the spawn requests that spawnHosted() (tasks/sandbox.h) writes to stdin.
// Each request forks a task process that runs `run-task JOB_FILE` or
// `probe FILE LIMITS_JSON` without exec. Returns when stdin closes.
int runTaskHostProcess();

}  // namespace bitmill::tasks
