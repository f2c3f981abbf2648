#!/usr/bin/env python3
"""Time bitmill tasks against the ffmpeg, vips and ImageMagick command lines.

bench/run.sh prepares the inputs and starts the server, then runs this script. It uses
the standard library only. Each pair runs its contestants interleaved (A, B, A, B, ...)
so that a slow period of the shared machine hits every contestant alike.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

POLL_INTERVAL_SECONDS = 0.01
# One scan of /proc took about 0.6 ms of CPU with 90 processes (measured once), so sampling
# every 10 ms takes about 6% of one core from the task being measured.
RSS_SAMPLE_INTERVAL_SECONDS = 0.01
TASK_TIMEOUT_SECONDS = 300
FINAL_STATUSES = ("completed", "failed", "cancelled")


class Server:
    """The HTTP side of one running bitmill: uploads, task submission and polling."""

    def __init__(self, api_url, delivery_url, api_key):
        self.api_url = api_url.rstrip("/")
        self.delivery_url = delivery_url.rstrip("/")
        self.api_key = api_key

    def _request(self, method, url, body=None, content_type=None):
        request = urllib.request.Request(url, data=body, method=method)
        request.add_header("Authorization", "Bearer " + self.api_key)
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")
            raise RuntimeError(f"{method} {url} failed: HTTP {error.code}: {detail}") from None

    def upload(self, path, folder="bench"):
        with open(path, "rb") as source:
            body = source.read()
        url = f"{self.delivery_url}/{folder}/{os.path.basename(path)}"
        return self._request("PUT", url, body, "application/octet-stream")["id"]

    def submitTask(self, options):
        body = json.dumps(options).encode()
        return self._request("POST", self.api_url + "/tasks", body, "application/json")

    def getTask(self, task_id):
        return self._request("GET", f"{self.api_url}/tasks/{task_id}")


def readStatusKib(pid, field):
    """Return a `VmXxx:` field of /proc/PID/status in KiB, or 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def listDescendants(pid):
    """Return the pids below PID, found by reading the parent pid of every process.

    /proc/PID/task/*/children would be cheaper, but kernels built without
    CONFIG_PROC_CHILDREN do not have that file.
    """
    parents = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read()
        except OSError:
            continue
        # The command name in brackets may contain spaces, so fields are counted from
        # the last ')': state, then the parent pid.
        after_name = fields[fields.rfind(b")") + 2:].split(None, 2)
        parents[int(entry.name)] = int(after_name[1])
    found = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        children = [child for child, child_parent in parents.items() if child_parent == parent]
        found.extend(children)
        pending.extend(children)
    return found


class RssSampler(threading.Thread):
    """Samples the server's VmRSS and the VmHWM of its task processes until stopped.

    VmHWM is the peak resident set of a process over its life, so one sample taken
    before a task process exits is enough. A process that starts and exits between
    two samples (10 ms apart) is missed.
    """

    def __init__(self, server_pid):
        super().__init__(daemon=True)
        self.server_pid = server_pid
        self.server_peak_kib = 0
        self.task_peak_kib = 0
        self.task_processes_seen = set()
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(RSS_SAMPLE_INTERVAL_SECONDS)
        self.sample()

    def sample(self):
        server_rss = readStatusKib(self.server_pid, "VmRSS")
        self.server_peak_kib = max(self.server_peak_kib, server_rss)
        for child in listDescendants(self.server_pid):
            peak = readStatusKib(child, "VmHWM")
            if peak:
                self.task_processes_seen.add(child)
                self.task_peak_kib = max(self.task_peak_kib, peak)

    def stop(self):
        self._stop_event.set()
        self.join()


def runBitmill(server, server_pid, options):
    """Run one task from submission to a final status and returns its measurement."""
    sampler = RssSampler(server_pid)
    sampler.start()
    started = time.perf_counter()
    try:
        task = server.submitTask(options)
        deadline = started + TASK_TIMEOUT_SECONDS
        while task["status"] not in FINAL_STATUSES:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"task {task['id']} timed out after {TASK_TIMEOUT_SECONDS} s")
            time.sleep(POLL_INTERVAL_SECONDS)
            task = server.getTask(task["id"])
        elapsed = time.perf_counter() - started
    finally:
        sampler.stop()
    if task["status"] != "completed":
        raise RuntimeError(f"task {task['id']} ended {task['status']}: {task.get('error')}")
    checkOutput(task, options)
    return {
        "seconds": elapsed,
        "peak_rss_kib": sampler.task_peak_kib,
        "server_rss_kib": sampler.server_peak_kib,
        "task_processes": len(sampler.task_processes_seen),
    }


def checkOutput(task, options):
    """Raise when a completed task's output does not have the requested width or height."""
    output = task.get("output") or {}
    for dimension in ("width", "height"):
        if dimension in options and output.get(dimension) != options[dimension]:
            raise RuntimeError(f"task {task['id']}: output {dimension} is "
                               f"{output.get(dimension)}, expected {options[dimension]}")


def runCommand(argv, work_dir):
    """Run one baseline command under GNU time and returns its measurement."""
    with tempfile.NamedTemporaryFile("r", dir=work_dir, suffix=".time") as time_output:
        command = ["/usr/bin/time", "-f", "%M", "-o", time_output.name] + argv
        started = time.perf_counter()
        result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            stderr_tail = result.stderr.decode("utf-8", "replace")[-2000:]
            raise RuntimeError(f"{argv[0]} exited {result.returncode}: {stderr_tail}")
        peak_kib = int(time_output.read().strip().splitlines()[-1])
    return {"seconds": elapsed, "peak_rss_kib": peak_kib}


def definePairs(inputs, file_ids, out_dir):
    """Return the benchmark pairs: a name and its contestants, bitmill first."""
    video = os.path.join(inputs, "video.mp4")
    image = os.path.join(inputs, "image.jpg")
    audio = os.path.join(inputs, "audio.wav")
    out = lambda name: os.path.join(out_dir, name)  # noqa: E731
    return [
        ("video 1080p -> 720p H.264 (mp4)", [
            ("bitmill", {"kind": "video", "file_id": file_ids["video"], "width": 1280,
                         "height": 720, "format": "mp4"}),
            ("ffmpeg", ["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", video,
                        "-vf", "scale=1280:720", "-c:v", "libx264", "-preset", "veryfast",
                        "-crf", "23", "-c:a", "aac", "-b:a", "128k", out("video.mp4")]),
        ]),
        ("JPEG 4000x3000 -> WebP 800 px Q80", [
            ("bitmill", {"kind": "image", "file_id": file_ids["image"], "width": 800,
                         "format": "webp", "quality": 80}),
            ("vipsthumbnail", ["vipsthumbnail", image, "-s", "800",
                               "-o", out("image-vips.webp") + "[Q=80]"]),
            ("convert", ["/usr/bin/convert", image, "-resize", "800x", "-quality", "80",
                         out("image-magick.webp")]),
        ]),
        ("frame grab at 5 s -> JPEG", [
            ("bitmill", {"kind": "image", "file_id": file_ids["video"], "format": "jpeg",
                         "start": 5}),
            ("ffmpeg", ["ffmpeg", "-nostdin", "-y", "-v", "error", "-ss", "5", "-i", video,
                        "-frames:v", "1", out("frame.jpg")]),
        ]),
        ("WAV -> MP3 128 kbit/s", [
            ("bitmill", {"kind": "audio", "file_id": file_ids["audio"], "format": "mp3",
                         "bitrate": 128000}),
            ("ffmpeg", ["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", audio,
                        "-c:a", "libmp3lame", "-b:a", "128k", out("audio.mp3")]),
        ]),
    ]


def formatMib(kib):
    return f"{kib / 1024:.0f} MiB" if kib else "n/a"


def summarize(pair_name, contestants, measurements):
    """Return the Markdown table rows of one pair; ratios are against bitmill's median."""
    rows = []
    bitmill_median = statistics.median(m["seconds"] for m in measurements["bitmill"])
    for name, _ in contestants:
        runs = measurements[name]
        seconds = [run["seconds"] for run in runs]
        median = statistics.median(seconds)
        ratio = median / bitmill_median if bitmill_median else float("nan")
        peak = max(run["peak_rss_kib"] for run in runs)
        if name == "bitmill":
            server_peak = max(run["server_rss_kib"] for run in runs)
            memory = f"{formatMib(peak)} task, {formatMib(server_peak)} server"
        else:
            memory = formatMib(peak)
        rows.append(f"| {pair_name} | {name} | {median:.3f} | {min(seconds):.3f}-"
                    f"{max(seconds):.3f} | {ratio:.2f} | {memory} |")
    return rows


def parseArguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True, help="bitmill API base URL")
    parser.add_argument("--delivery", required=True, help="bitmill delivery base URL")
    parser.add_argument("--api-key", required=True, help="bearer key the server accepts")
    parser.add_argument("--server-pid", required=True, type=int, help="pid of bitmill serve")
    parser.add_argument("--inputs", required=True,
                        help="folder with video.mp4, image.jpg and audio.wav")
    parser.add_argument("--work-dir", required=True, help="folder for baseline outputs")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted runs per contestant")
    parser.add_argument("--runs", type=int, default=5, help="counted runs per contestant")
    parser.add_argument("--output", required=True, help="Markdown file to write the table to")
    parser.add_argument("--title", default="", help="line printed above the table")
    return parser.parse_args()


def main():
    arguments = parseArguments()
    server = Server(arguments.api, arguments.delivery, arguments.api_key)
    file_ids = {
        "video": server.upload(os.path.join(arguments.inputs, "video.mp4")),
        "image": server.upload(os.path.join(arguments.inputs, "image.jpg")),
        "audio": server.upload(os.path.join(arguments.inputs, "audio.wav")),
    }
    pairs = definePairs(arguments.inputs, file_ids, arguments.work_dir)
    table = [
        "| case | tool | median s | min-max s | median / bitmill | peak RSS |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for pair_name, contestants in pairs:
        measurements = {name: [] for name, _ in contestants}
        for round_index in range(arguments.warmup + arguments.runs):
            for name, job in contestants:
                if name == "bitmill":
                    measurement = runBitmill(server, arguments.server_pid, job)
                else:
                    measurement = runCommand(job, arguments.work_dir)
                if round_index >= arguments.warmup:
                    measurements[name].append(measurement)
                print(f"bench: {pair_name}: {name} round {round_index + 1}: "
                      f"{measurement['seconds']:.3f} s", file=sys.stderr, flush=True)
        table.extend(summarize(pair_name, contestants, measurements))

    report = []
    if arguments.title:
        report += [arguments.title, ""]
    report += table + [""]
    text = "\n".join(report)
    print(text)
    with open(arguments.output, "w") as output:
        output.write(text)


if __name__ == "__main__":
    main()
