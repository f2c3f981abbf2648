#!/usr/bin/env python3
"""Benchmark bitmill against command-line tools, nginx and its own targets.

bench/run.sh installs the tools, builds bitmill and writes the inputs, then runs this
script. It starts its own servers on free loopback ports, measures every row, and
prints and writes one Markdown report. bench/README.md describes the rows. Standard
library only.
"""

import argparse
import concurrent.futures
import dataclasses
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Optional

import measure
import report
from http_client import BitmillClient
from processes import BitmillServer, NginxServer

FINAL_STATUSES = ("completed", "failed", "cancelled")
# Interval between polls of GET /tasks/{id} while a task runs. A task's time ends at the
# `finished` timestamp that the server records, so the interval does not add to it.
# Because fewer polls take less CPU from the task, the interval grows to a tenth of the
# time waited so far, up to POLL_MAX_INTERVAL_SECONDS.
POLL_INTERVAL_SECONDS = 0.05
POLL_MAX_INTERVAL_SECONDS = 1.0
TASK_TIMEOUT_SECONDS = 1800
HTTP_CONNECTIONS = 64
HTTP_WARMUP_SECONDS = 2
# The HTTP rows sample memory less often, so the sampler takes less CPU from the server.
HTTP_RSS_SAMPLE_INTERVAL_SECONDS = 0.1
QUEUE_SUBMIT_THREADS = 16
IDLE_SETTLE_SECONDS = 2
PROCESS_START_RUNS = 5
KIB_PER_MIB = 1024

# Targets that bitmill is held to. The report prints each next to its row.
VIDEO_MAX_RATIO = 1.0
IMAGE_MAX_RATIO = 1.0
IMAGEMAGICK_MIN_FACTOR = 2.5
TWO_OUTPUTS_MAX_RATIO = 0.85
FRAME_GRAB_MAX_RATIO = 1.2
GET_MIN_SHARE_OF_NGINX = 0.5
GET_MAX_P99_MS = 10.0
QUEUE_MIN_TASKS_PER_SECOND = 200.0
GROWTH_MAX_PEAK_MIB = 300e6 / 2**20  # 300 MB
# "Flat": the longest input's peak stays within 10% (or 8 MiB, whichever is more) of
# the shortest input's peak.
GROWTH_FLAT_SHARE = 0.10
GROWTH_FLAT_MIN_MIB = 8

# The rows of the targets table, in this order. bench/check-quick.sh checks that a quick
# run reports each of them.
ROW_NAMES = (
    "video H.264/AAC MP4",
    "video VP9/Opus WebM",
    "image WebP",
    "image AVIF",
    "two outputs WebP + AVIF",
    "frame grab",
    "audio MP3",
    "HTTP GET /tasks/{id}",
    "HTTP POST /tasks",
    "queue of tiny tasks",
    "queue dispatch on PostgreSQL, 4 workers",
    "memory growth",
    "server RSS across queue",
)


@dataclasses.dataclass
class Contestant:
    """One side of a pair: bitmill tasks, or command lines run one after another."""
    name: str
    tasks: Optional[list] = None
    commands: Optional[list] = None


@dataclasses.dataclass
class Pair:
    row: str
    case: str
    contestants: list
    targets: Callable  # (summaries by contestant name) -> list of Target


@dataclasses.dataclass
class Target:
    row: str
    target: str
    measured: str
    verdict: str  # "met", "missed" or "no target"


def verdict(met):
    return "met" if met else "missed"


def median(values):
    return statistics.median(values) if values else float("nan")


# Running bitmill tasks and baseline commands.

def runBitmillTasks(client, server_pid, options_list, check):
    """Submit every task at once, wait until all are final and return one measurement.

    The time runs from just before the first POST /tasks to the latest `finished`
    timestamp of the tasks, which GET /tasks/{id} reports once the server has marked
    the last one completed. Both times come from this machine's wall clock.
    `check(options, task)` raises when an output is wrong.
    """
    with measure.RssSampler(server_pid) as sampler:
        submitted_at = time.time()
        started = time.perf_counter()
        pending = [client.submitTask(options) for options in options_list]
        task_ids = [task["id"] for task in pending]
        finished = []
        deadline = started + TASK_TIMEOUT_SECONDS
        while True:
            still_pending = []
            for task in pending:
                (finished if task["status"] in FINAL_STATUSES else still_pending).append(task)
            if not still_pending:
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"tasks {[task['id'] for task in still_pending]} did not "
                                   f"finish within {TASK_TIMEOUT_SECONDS} s")
            waited = time.perf_counter() - started
            time.sleep(min(max(POLL_INTERVAL_SECONDS, waited / 10), POLL_MAX_INTERVAL_SECONDS))
            pending = [client.getTask(task["id"]) for task in still_pending]
        observed = time.perf_counter() - started
    by_id = {task["id"]: task for task in finished}
    for options, task_id in zip(options_list, task_ids):
        task = by_id[task_id]
        if task["status"] != "completed":
            raise RuntimeError(f"task {task_id} ended {task['status']}: {task.get('error')}")
        check(options, task)
    last_finished = max(parseTimestamp(task["finished"]) for task in finished)
    return {
        "seconds": last_finished - submitted_at,
        "observed_seconds": observed,
        "worker_seconds": workerSpan(finished),
        "task_peak_kib": sampler.descendant_peak_kib,
        "server_peak_kib": sampler.root_peak_kib,
        "total_peak_kib": sampler.total_peak_kib,
        "task_ids": task_ids,
    }


# Parts of the output File's `type` (MIME type with codecs) that each requested format
# must produce.
EXPECTED_TYPE_PARTS = {
    "mp4": ("video/mp4", "avc1", "mp4a"),
    "webm": ("video/webm", "vp09", "opus"),
    "webp": ("image/webp",),
    "avif": ("image/avif",),
    "jpeg": ("image/jpeg",),
    "mp3": ("audio/mpeg",),
}


def parseTimestamp(text):
    """Parse an RFC 3339 timestamp such as 2025-01-01T01:23:45.678Z to epoch seconds."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def workerSpan(tasks):
    """Return seconds from the first task's `started` to the last one's `finished`.

    The server sets both (millisecond resolution) when a worker claims the task and when
    the attempt ends, so the span covers the task process but not the HTTP calls and the
    wait in the queue. Returns NaN when a task lacks either field.
    """
    try:
        started = min(parseTimestamp(task["started"]) for task in tasks)
        finished = max(parseTimestamp(task["finished"]) for task in tasks)
    except (KeyError, TypeError, ValueError):
        return float("nan")
    return finished - started


def checkOutput(options, task):
    """Raise when a completed task's output lacks the requested size, format or codecs."""
    output = task.get("output") or {}
    for dimension in ("width", "height"):
        if dimension in options and output.get(dimension) != options[dimension]:
            raise RuntimeError(f"task {task['id']}: output {dimension} is "
                               f"{output.get(dimension)}, expected {options[dimension]}")
    media_type = output.get("type") or ""
    for part in EXPECTED_TYPE_PARTS.get(options.get("format"), ()):
        if part not in media_type:
            raise RuntimeError(f"task {task['id']}: output type {media_type!r} lacks {part!r}")


def runCommands(commands, work_dir):
    """Run command lines one after another and return their summed time and largest RSS."""
    seconds = 0.0
    peak_kib = 0
    for argv in commands:
        measurement = measure.runCommand(argv, work_dir)
        seconds += measurement["seconds"]
        peak_kib = max(peak_kib, measurement["peak_rss_kib"])
    return {"seconds": seconds, "peak_rss_kib": peak_kib, "total_peak_kib": peak_kib}


def summarizeRuns(runs):
    seconds = [run["seconds"] for run in runs]
    summary = {
        "median": median(seconds),
        "min": min(seconds),
        "max": max(seconds),
        "total_peak_kib": max(run["total_peak_kib"] for run in runs),
    }
    if "task_peak_kib" in runs[0]:
        summary["task_peak_kib"] = max(run["task_peak_kib"] for run in runs)
        summary["server_peak_kib"] = max(run["server_peak_kib"] for run in runs)
        summary["worker_median"] = median([run["worker_seconds"] for run in runs])
    return summary


class Benchmark:
    """The state of one benchmark run: arguments, servers, uploaded inputs, results."""

    def __init__(self, arguments):
        self.arguments = arguments
        self.inputs = arguments.inputs
        self.work_dir = arguments.work_dir
        self.out_dir = os.path.join(self.work_dir, "outputs")
        os.makedirs(self.out_dir, exist_ok=True)
        self.server = None
        self.client = None
        self.file_ids = {}
        self.sections = []
        self.targets = []
        self.commands = []  # (case, [argv, ...]) of every baseline
        self.loads = [report.loadAverage()]
        self.sample_task_id = None
        self.idle_memory = (0, {"Rss": 0, "Pss": 0, "Anonymous": 0})
        self.lua_script = None  # post-task.lua of the POST /tasks row

    def log(self, message):
        print(f"bench: {message}", file=sys.stderr, flush=True)

    def inputPath(self, name):
        return os.path.join(self.inputs, name)

    def outputPath(self, name):
        return os.path.join(self.out_dir, name)

    def startMainServer(self):
        self.server = BitmillServer(self.arguments.bitmill,
                                    os.path.join(self.work_dir, "data-main")).start()
        self.client = BitmillClient(self.server.api_url, self.server.delivery_url,
                                    self.server.api_key)
        self.log(f"bitmill serve pid {self.server.pid} at {self.server.api_url}")
        # The workers start their task hosts at once. The wait lets the hosts load the
        # libraries (about 0.1 s each when measured) before the idle memory is read.
        time.sleep(IDLE_SETTLE_SECONDS)
        self.idle_memory = measure.idleMemoryKib(self.server.pid)

    def idleMemoryNote(self):
        count, kib = self.idle_memory
        return (f"Idle, before the first task, the server and its task hosts ({count} "
                f"processes) had RSS adding up to {report.formatMib(kib['Rss'])} MiB, "
                f"proportional set size (PSS) adding up to {report.formatMib(kib['Pss'])} MiB "
                f"and anonymous memory adding up to {report.formatMib(kib['Anonymous'])} MiB. "
                "RSS counts each shared library page in every process that maps it, and PSS "
                "counts a page that n processes map as 1/n in each.")

    def upload(self, name):
        if name not in self.file_ids:
            self.file_ids[name] = self.client.upload(self.inputPath(name))
        return self.file_ids[name]

    # Rows 1 to 4: tasks against command-line tools.

    def definePairs(self):
        clip = self.inputPath("clip.mp4")
        video = self.inputPath("video.mp4")
        image = self.inputPath("image.jpg")
        audio = self.inputPath("audio.wav")
        out = self.outputPath
        ffmpeg = ["ffmpeg", "-nostdin", "-y", "-v", "error"]
        scale_720p = ["-vf", "scale=1280:720", "-pix_fmt", "yuv420p"]
        # bitmill's settings for these outputs (src/media/ffmpeg/video_encoding.cc and
        # src/media/vips/image_convert.cc), repeated on the command lines.
        h264 = ["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-crf", "23"]
        vp9 = ["-c:v", "libvpx-vp9", "-deadline", "good", "-cpu-used", "5", "-row-mt", "1",
               "-crf", "33", "-b:v", "0"]
        webp_vips = "[Q=80,effort=4,strip]"
        avif_vips = "[Q=80,compression=av1,effort=2,bitdepth=8,strip]"

        def vipsthumbnail(extension, options):
            return ["vipsthumbnail", image, "--size", "800x",
                    "-o", out(f"image-vips.{extension}") + options]

        def convert(extension):
            return ["/usr/bin/convert", image, "-resize", "800x", "-auto-orient", "-strip",
                    "-quality", "80", out(f"image-magick.{extension}")]

        def bitmillImage(image_format):
            return {"kind": "image", "file_id": self.upload("image.jpg"), "width": 800,
                    "format": image_format, "quality": 80}

        def bitmillVideo(video_format):
            return {"kind": "video", "file_id": self.upload("clip.mp4"), "width": 1280,
                    "height": 720, "format": video_format}

        return [
            Pair("video H.264/AAC MP4", "video 1080p -> 720p H.264 + AAC MP4", [
                Contestant("bitmill", tasks=[bitmillVideo("mp4")]),
                Contestant("ffmpeg", commands=[
                    ffmpeg + ["-i", clip] + scale_720p + h264 +
                    ["-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart",
                     out("video.mp4")]]),
            ], lambda s: self.ratioTargets("video H.264/AAC MP4", s, "ffmpeg", VIDEO_MAX_RATIO)),
            Pair("video VP9/Opus WebM", "video 1080p -> 720p VP9 + Opus WebM", [
                Contestant("bitmill", tasks=[bitmillVideo("webm")]),
                Contestant("ffmpeg", commands=[
                    ffmpeg + ["-i", clip] + scale_720p + vp9 +
                    ["-c:a", "libopus", "-b:a", "128k", out("video.webm")]]),
            ], lambda s: self.ratioTargets("video VP9/Opus WebM", s, "ffmpeg", VIDEO_MAX_RATIO)),
            Pair("image WebP", "JPEG 4000x3000 -> WebP 800 px Q80", [
                Contestant("bitmill", tasks=[bitmillImage("webp")]),
                Contestant("vipsthumbnail", commands=[vipsthumbnail("webp", webp_vips)]),
                Contestant("convert", commands=[convert("webp")]),
            ], lambda s: self.imageTargets("image WebP", s)),
            Pair("image AVIF", "JPEG 4000x3000 -> AVIF 800 px Q80", [
                Contestant("bitmill", tasks=[bitmillImage("avif")]),
                Contestant("vipsthumbnail", commands=[vipsthumbnail("avif", avif_vips)]),
                Contestant("convert", commands=[convert("avif")]),
            ], lambda s: self.imageTargets("image AVIF", s)),
            Pair("two outputs WebP + AVIF", "JPEG -> WebP + AVIF, 2 tasks submitted at once", [
                     Contestant("bitmill", tasks=[bitmillImage("webp"), bitmillImage("avif")]),
                     Contestant("2x vipsthumbnail", commands=[
                         vipsthumbnail("webp", webp_vips), vipsthumbnail("avif", avif_vips)]),
                 ], lambda s: self.ratioTargets("two outputs WebP + AVIF", s,
                                                "2x vipsthumbnail", TWO_OUTPUTS_MAX_RATIO)),
            Pair("frame grab", "frame grab at 5 s of the 1080p video -> JPEG", [
                Contestant("bitmill", tasks=[{"kind": "image", "file_id": self.upload("video.mp4"),
                                              "format": "jpeg", "start": 5}]),
                Contestant("ffmpeg", commands=[
                    ffmpeg + ["-ss", "5", "-i", video, "-frames:v", "1", out("frame.jpg")]]),
            ], lambda s: self.ratioTargets("frame grab", s, "ffmpeg", FRAME_GRAB_MAX_RATIO)),
            Pair("audio MP3", "WAV 44.1 kHz stereo -> MP3 128 kbit/s", [
                Contestant("bitmill", tasks=[{"kind": "audio", "file_id": self.upload("audio.wav"),
                                              "format": "mp3", "bitrate": 128000}]),
                Contestant("ffmpeg", commands=[
                    ffmpeg + ["-i", audio, "-c:a", "libmp3lame", "-b:a", "128k",
                              out("audio.mp3")]]),
            ], lambda s: [Target("audio MP3", "none set",
                                 f"{formatRatioOf(s, 'ffmpeg')} of ffmpeg", "no target")]),
        ]

    def ratioTargets(self, row, summaries, baseline, max_ratio):
        ratio = summaries["bitmill"]["median"] / summaries[baseline]["median"]
        return [Target(row, f"<= {max_ratio:.2f}x {baseline} time",
                       f"{ratio:.2f}x", verdict(ratio <= max_ratio))]

    def imageTargets(self, row, summaries):
        targets = self.ratioTargets(row, summaries, "vipsthumbnail", IMAGE_MAX_RATIO)
        bitmill = summaries["bitmill"]
        magick = summaries["convert"]
        slower = magick["median"] / bitmill["median"]
        more_memory = magick["total_peak_kib"] / max(bitmill["total_peak_kib"], 1)
        targets.append(Target(
            row, f"ImageMagick >= {IMAGEMAGICK_MIN_FACTOR}x slower and >= "
                 f"{IMAGEMAGICK_MIN_FACTOR}x more memory than bitmill (server + task)",
            f"{slower:.2f}x slower, {more_memory:.2f}x memory",
            verdict(slower >= IMAGEMAGICK_MIN_FACTOR and more_memory >= IMAGEMAGICK_MIN_FACTOR)))
        return targets

    def runPair(self, pair):
        measurements = {contestant.name: [] for contestant in pair.contestants}
        rounds = self.arguments.warmup + self.arguments.runs
        for round_index in range(rounds):
            for contestant in pair.contestants:
                if contestant.tasks is not None:
                    measurement = runBitmillTasks(self.client, self.server.pid,
                                                  contestant.tasks, checkOutput)
                    self.sample_task_id = measurement["task_ids"][0]
                else:
                    measurement = runCommands(contestant.commands, self.out_dir)
                counted = round_index >= self.arguments.warmup
                if counted:
                    measurements[contestant.name].append(measurement)
                self.log(f"{pair.case}: {contestant.name} "
                         f"{'run' if counted else 'warm-up'} {round_index + 1}/{rounds}: "
                         f"{measurement['seconds']:.3f} s")
        for contestant in pair.contestants:
            if contestant.commands is not None:
                self.commands.append((pair.case, contestant.commands))
        return {name: summarizeRuns(runs) for name, runs in measurements.items()}

    def runTaskPairs(self):
        rows = []
        for pair in self.definePairs():
            if self.arguments.pairs and not any(part in pair.row
                                                for part in self.arguments.pairs):
                continue
            self.loads.append(report.loadAverage())
            summaries = self.runPair(pair)
            bitmill_median = summaries["bitmill"]["median"]
            for contestant in pair.contestants:
                summary = summaries[contestant.name]
                if contestant.name == "bitmill":
                    ratio = "-"
                    in_worker = report.formatSeconds(summary["worker_median"])
                    memory = (f"{report.formatMib(summary['total_peak_kib'])} (task "
                              f"{report.formatMib(summary['task_peak_kib'])}, server "
                              f"{report.formatMib(summary['server_peak_kib'])})")
                else:
                    ratio = report.formatRatio(bitmill_median / summary["median"])
                    in_worker = "-"
                    memory = report.formatMib(summary["total_peak_kib"])
                rows.append([pair.case, contestant.name,
                             report.formatSeconds(summary["median"]),
                             f"{summary['min']:.3f}-{summary['max']:.3f}", in_worker, ratio,
                             memory])
            self.targets.extend(pair.targets(summaries))
        self.sections.append((
            "Tasks against command-line tools",
            ["Seconds are wall time. For a tool they cover the whole command. For bitmill "
             "they run from just before `POST /tasks` until the task's `finished` timestamp, "
             "when the server marked it `completed`. The client polls `GET /tasks/{id}` to "
             "see that, every 50 ms at first and less often as the task goes on. "
             "bitmill / tool is bitmill's median divided by the tool's (below 1 means bitmill "
             "was faster). \"in worker\" is the median time from the task's `started` to its "
             "`finished` timestamp, which bitmill's worker sets around the task process: the "
             "rest of bitmill's time is HTTP and queueing. Peak RSS of bitmill is its server and task "
             "processes together (the task process and the server alone in brackets).",
             self.idleMemoryNote(),
             "bitmill has no `workflow` kind yet, so the two-outputs case submits two `image` "
             "tasks on the same uploaded file at once and waits for both; the server's workers "
             "may run them side by side. Its baseline runs vipsthumbnail twice, one run after "
             "the other."],
            report.markdownTable(
                ["case", "contestant", "median s", "min-max s", "in worker s",
                 "bitmill / tool", "peak RSS MiB"], rows, numeric_columns=(2, 3, 4, 5))))

    # Row 5: HTTP.

    def runWrkRounds(self, case, contestants, headers, script=None):
        """Run wrk against each contestant in turn, round after round; return counted runs.

        `contestants` are (name, url, pid of the server to sample) tuples. Warm-up rounds
        last at most HTTP_WARMUP_SECONDS. A run with a non-2xx response or a socket
        error raises, because its numbers would describe errors.
        """
        seconds = self.arguments.http_seconds
        rounds = self.arguments.warmup + self.arguments.runs
        results = {name: [] for name, _, _ in contestants}
        for round_index in range(rounds):
            counted = round_index >= self.arguments.warmup
            duration = seconds if counted else min(seconds, HTTP_WARMUP_SECONDS)
            for name, url, pid in contestants:
                with measure.RssSampler(pid, HTTP_RSS_SAMPLE_INTERVAL_SECONDS) as sampler:
                    result = measure.runWrk(url, duration, HTTP_CONNECTIONS, self.wrkThreads(),
                                            headers=headers, script=script)
                if result["non_2xx"] or result["errors"]:
                    raise RuntimeError(f"{case} at {url}: {result['non_2xx']} responses were "
                                       f"not 2xx and {result['errors']} socket errors")
                result["total_peak_kib"] = sampler.total_peak_kib
                if counted:
                    results[name].append(result)
                self.log(f"{case}: {name} {'run' if counted else 'warm-up'} "
                         f"{round_index + 1}/{rounds}: {result['requests_per_second']:.0f} "
                         f"req/s, p99 {result['p99_ms']:.2f} ms")
        return results

    def wrkThreads(self):
        return min(os.cpu_count(), HTTP_CONNECTIONS)

    def wrkCommand(self, *extra):
        return ["wrk", "--latency", "-t", str(self.wrkThreads()), "-c", str(HTTP_CONNECTIONS),
                "-d", f"{self.arguments.http_seconds}s", "--timeout", "10s",
                "-H", "Authorization: Bearer $KEY", *extra]

    def runHttpGet(self):
        """Measure GET /tasks/{id} of a completed task against nginx serving the same bytes."""
        self.loads.append(report.loadAverage())
        if self.sample_task_id is None:
            tiny = self.upload("tiny.png")
            measurement = runBitmillTasks(self.client, self.server.pid,
                                          [tinyTaskOptions(tiny)], checkOutput)
            self.sample_task_id = measurement["task_ids"][0]
        task_id = self.sample_task_id
        body = self.client.getTaskBody(task_id)
        # cpp-httplib serves each keep-alive connection on one thread of a fixed pool until
        # the connection closes, so an idle connection left open here would hold a thread
        # that wrk's connections need.
        self.client.api.close()

        nginx_dir = tempfile.mkdtemp(prefix="bitmill-bench-nginx.")
        nginx = NginxServer(nginx_dir, "task.json", body, os.cpu_count()).start()
        self.log(f"nginx pid {nginx.pid} at {nginx.url}, body {len(body)} bytes")
        contestants = [
            ("bitmill", f"{self.server.api_url}/tasks/{task_id}", self.server.pid),
            ("nginx", nginx.url, nginx.pid),
        ]
        try:
            results = self.runWrkRounds("GET /tasks/{id}", contestants,
                                        [f"Authorization: Bearer {self.server.api_key}"])
        finally:
            nginx.stop()
            shutil.rmtree(nginx_dir, ignore_errors=True)
        self.commands.append((
            "HTTP GET (both contestants; nginx serves a copy of the bitmill response body)",
            [self.wrkCommand("$URL"),
             ["nginx", "-p", "$NGINX_DIR", "-c", "$NGINX_DIR/nginx.conf", "-g", "daemon off;"]]))

        summaries = {name: summarizeHttp(runs) for name, runs in results.items()}
        rows = []
        for name, _, _ in contestants:
            summary = summaries[name]
            share = summaries["bitmill"]["rate"] / summary["rate"]
            rows.append([f"GET /tasks/{{id}}, {len(body)} byte body", name,
                         f"{summary['rate']:.0f}",
                         f"{summary['rate_min']:.0f}-{summary['rate_max']:.0f}",
                         f"{summary['p50']:.2f}", f"{summary['p99']:.2f}",
                         formatCount(summary["listen_overflows"]),
                         "-" if name == "bitmill" else report.formatRatio(share),
                         report.formatMib(summary["total_peak_kib"])])
        share = summaries["bitmill"]["rate"] / summaries["nginx"]["rate"]
        p99 = summaries["bitmill"]["p99"]
        self.targets.append(Target(
            "HTTP GET /tasks/{id}",
            f">= {GET_MIN_SHARE_OF_NGINX:.2f}x nginx req/s and p99 < {GET_MAX_P99_MS:.0f} ms",
            f"{share:.2f}x nginx, p99 {p99:.2f} ms",
            verdict(share >= GET_MIN_SHARE_OF_NGINX and p99 < GET_MAX_P99_MS)))
        return rows

    def runHttpPost(self):
        """Measure POST /tasks on a server of its own, started with --workers 0."""
        self.loads.append(report.loadAverage())
        server = BitmillServer(self.arguments.bitmill, os.path.join(self.work_dir, "data-post"),
                               workers=0).start()
        self.log(f"bitmill serve (--workers 0) pid {server.pid} at {server.api_url}")
        try:
            client = BitmillClient(server.api_url, server.delivery_url, server.api_key)
            options = tinyTaskOptions(client.upload(self.inputPath("tiny.png")))
            client.api.close()
            self.lua_script = ('wrk.method = "POST"\n'
                               f"wrk.body = {json.dumps(json.dumps(options))}\n"
                               'wrk.headers["Content-Type"] = "application/json"\n')
            script = os.path.join(self.work_dir, "post-task.lua")
            with open(script, "w") as lua:
                lua.write(self.lua_script)

            results = self.runWrkRounds(
                "POST /tasks", [("bitmill", f"{server.api_url}/tasks", server.pid)],
                [f"Authorization: Bearer {server.api_key}"], script)["bitmill"]

            # Requests still in flight when wrk stopped may create tasks after this point,
            # so the tasks that ran are counted by their own statuses.
            created = client.countTasks()
            ran = sum(client.countTasks(status) for status in
                      ("processing", "completed", "failed", "cancelled"))
        finally:
            server.stop()
        self.commands.append(("HTTP POST /tasks",
                              [self.wrkCommand("-s", "post-task.lua", "$API/tasks")]))

        summary = summarizeHttp(results)
        row = ["POST /tasks, tiny image task", "bitmill", f"{summary['rate']:.0f}",
               f"{summary['rate_min']:.0f}-{summary['rate_max']:.0f}", f"{summary['p50']:.2f}",
               f"{summary['p99']:.2f}", formatCount(summary["listen_overflows"]), "-",
               report.formatMib(summary["total_peak_kib"])]
        self.targets.append(Target("HTTP POST /tasks", "none set",
                                   f"{summary['rate']:.0f} req/s, p99 {summary['p99']:.2f} ms",
                                   "no target"))
        return row, created, ran

    def runHttp(self):
        rows = self.runHttpGet()
        post_row, created, ran = self.runHttpPost()
        rows.append(post_row)
        notes = [f"wrk with {HTTP_CONNECTIONS} keep-alive connections and {self.wrkThreads()} "
                 f"threads, {self.arguments.http_seconds} s per counted run, on the same "
                 "machine as the server. req/s and latencies are medians over the counted "
                 f"runs. nginx runs {os.cpu_count()} worker processes with access_log off and "
                 "serves a static file with the same bytes as bitmill's response body. "
                 "\"listen overflows\" is how many connections the kernel dropped during "
                 "the counted runs because a listen queue was full (TcpExt ListenOverflows, "
                 "counted for the whole machine). A dropped handshake is retried after 1 s, "
                 "then 2 s and so on, which shows in p99."]
        post_note = (f"POST /tasks runs on a server of its own, started with `--workers 0`, "
                     f"with the Lua script post-task.lua below; it created {created} tasks "
                     "(warm-up included). ")
        if ran:
            post_note += (f"This build still ran {ran} of them during the row, so task "
                          "processes shared the CPU with the server.")
        else:
            post_note += "All of them stayed queued: no task process ran during the row."
        notes.append(post_note)
        self.sections.append(("HTTP", notes, report.markdownTable(
            ["case", "contestant", "median req/s", "min-max req/s", "p50 ms", "p99 ms",
             "listen overflows", "bitmill / nginx req/s", "peak RSS MiB"], rows,
            numeric_columns=(2, 3, 4, 5, 6, 7, 8))))

    # Row 6: queue throughput.

    def runQueue(self):
        self.loads.append(report.loadAverage())
        count = self.arguments.queue_tasks
        options = tinyTaskOptions(self.upload("tiny.png"))
        rss_before = measure.readStatusKib(self.server.pid, "VmRSS")
        with measure.RssSampler(self.server.pid) as sampler:
            submitted_at = time.time()
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(QUEUE_SUBMIT_THREADS) as pool:
                tasks = list(pool.map(lambda _: self.client.submitTask(options), range(count)))
            submitted = time.perf_counter()
            self.log(f"queue: {count} tasks submitted in {submitted - started:.2f} s")
            deadline = started + TASK_TIMEOUT_SECONDS
            worker_seconds = []
            last_finished = submitted_at
            # The workers take tasks in about the order of submission. So the client
            # waits for the last task first and reads the others after it, which leaves
            # the CPU to the workers meanwhile.
            tasks.insert(0, tasks.pop())
            for task in tasks:
                task = self.client.getTask(task["id"])
                while task["status"] not in FINAL_STATUSES:
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"queue: task {task['id']} is still {task['status']} "
                                           f"after {TASK_TIMEOUT_SECONDS} s")
                    time.sleep(POLL_INTERVAL_SECONDS)
                    task = self.client.getTask(task["id"])
                if task["status"] != "completed":
                    raise RuntimeError(f"queue: task {task['id']} ended {task['status']}: "
                                       f"{task.get('error')}")
                worker_seconds.append(workerSpan([task]))
                last_finished = max(last_finished, parseTimestamp(task["finished"]))
            observed = time.perf_counter() - started
        # Let the workers finish their bookkeeping before the leak check reads the RSS.
        time.sleep(1)
        rss_after = measure.readStatusKib(self.server.pid, "VmRSS")
        submit_rate = count / (submitted - started)
        all_completed = last_finished - submitted_at
        end_to_end_rate = count / all_completed
        self.log(f"queue: all {count} completed after {all_completed:.2f} s (seen after "
                 f"{observed:.2f} s)")
        rows = [[f"{count} tiny image tasks (64x64 PNG -> 32 px JPEG), SQLite",
                 f"{submitted - started:.2f}", f"{submit_rate:.0f}",
                 f"{all_completed:.2f}", f"{end_to_end_rate:.1f}",
                 f"{median(worker_seconds) * 1000:.0f}",
                 report.formatMib(sampler.total_peak_kib),
                 f"{report.formatMib(rss_before)} -> {report.formatMib(rss_after)}"]]
        start_seconds, start_kib, libraries = self.measureProcessStart()
        dispatch_note = self.measureDispatch(count)
        self.targets.append(Target(
            "queue of tiny tasks", f">= {QUEUE_MIN_TASKS_PER_SECOND:.0f} tasks/s end to end",
            f"{end_to_end_rate:.1f} tasks/s (submitted at {submit_rate:.0f}/s)",
            verdict(end_to_end_rate >= QUEUE_MIN_TASKS_PER_SECOND)))
        growth = (rss_after - rss_before) / KIB_PER_MIB
        self.targets.append(Target(
            "server RSS across queue", "none set (leak check)",
            f"{report.formatMib(rss_before)} -> {report.formatMib(rss_after)} MiB "
            f"({growth:+.1f} MiB over {count} tasks)", "no target"))
        self.sections.append((
            "Queue",
            [f"All tasks are submitted by {QUEUE_SUBMIT_THREADS} threads, each on its own "
             "keep-alive connection, while the server's workers already run them. The "
             "end-to-end rate counts from the first submission until the latest `finished` "
             "timestamp, when the server marked the last task `completed`. \"in worker\" is the median of each task's `finished` minus its "
             "`started`. The server's RSS is read before the first submission and 1 s after "
             "the last task completed.",
             f"Each task runs in a process forked from its worker's task host, which loaded "
             f"the libraries once. For scale: `bitmill version`, which starts the binary "
             f"(exec and dynamic linking of {libraries} shared libraries) and exits, takes "
             f"{start_seconds * 1000:.0f} ms (median of {PROCESS_START_RUNS} runs) and "
             f"{report.formatMib(start_kib)} MiB on this machine; the fork skips that cost.",
             dispatch_note],
            report.markdownTable(
                ["case", "submit s", "submit tasks/s", "all completed s", "end-to-end tasks/s",
                 "in worker ms (median)", "peak RSS MiB (server + tasks)",
                 "server RSS before -> after MiB"],
                rows, numeric_columns=(1, 2, 3, 4, 5, 6, 7))))

    def runQueueBench(self, database_url, count, workers):
        """Run bitmill_queue_bench once and return its dispatch rate in tasks/s."""
        result = subprocess.run(
            [self.arguments.queue_bench, "--database-url", database_url, "--tasks", str(count),
             "--workers", str(workers)], capture_output=True, text=True, cwd=self.work_dir)
        try:
            dispatch = json.loads(result.stdout.strip().splitlines()[0])
            return float(dispatch["dispatch_per_second"])
        except (IndexError, KeyError, ValueError):
            raise RuntimeError(f"bitmill_queue_bench exited {result.returncode} without its "
                               f"JSON line: {result.stderr[-2000:]}") from None

    def measureDispatch(self, count):
        """Run bitmill_queue_bench on SQLite and PostgreSQL and return sentences about it.

        It claims and completes empty tasks through the same queue and store code from
        several worker processes, without task processes or media work. The PostgreSQL
        run uses 4 workers against the server run.sh started, when it started one.
        """
        binary = self.arguments.queue_bench
        if not binary or not os.access(binary, os.X_OK):
            return ("bitmill_queue_bench (bench/queue) was not found next to the bitmill "
                    "binary, so the queue's own dispatch rate is not shown.")
        workers = os.cpu_count()
        database = os.path.join(self.work_dir, "dispatch", "queue.db")
        os.makedirs(os.path.dirname(database), exist_ok=True)
        rate = self.runQueueBench(f"sqlite://{database}", count, workers)
        self.log(f"queue: dispatch alone {rate:.0f} tasks/s")
        note = (f"The queue itself is faster: bench/queue's bitmill_queue_bench claimed and "
                f"completed {count} empty tasks in a fresh SQLite database at {rate:.0f} "
                f"tasks/s with {workers} worker processes, with no task process and no media "
                "work.")
        if not self.arguments.postgres_url:
            return note + " PostgreSQL was not available, so its dispatch rate is not shown."
        pg_count = max(count, 5000)
        pg_rate = self.runQueueBench(self.arguments.postgres_url, pg_count, 4)
        self.log(f"queue: PostgreSQL dispatch {pg_rate:.0f} tasks/s")
        self.targets.append(Target("queue dispatch on PostgreSQL, 4 workers",
                                   ">= 1000 tasks/s", f"{pg_rate:.0f} tasks/s",
                                   verdict(pg_rate >= 1000)))
        return (note + f" On PostgreSQL 15 (a throwaway server on tmpfs with fsync off, as "
                f"the tests run it), 4 worker processes dispatched {pg_count} empty tasks at "
                f"{pg_rate:.0f} tasks/s (target: at least 1000).")

    def measureProcessStart(self):
        """Time `bitmill version`: the cost of starting bitmill's binary, paid per task."""
        runs = [measure.runCommand([self.arguments.bitmill, "version"], self.out_dir)
                for _ in range(PROCESS_START_RUNS)]
        ldd = subprocess.run(["ldd", self.arguments.bitmill], capture_output=True, text=True)
        libraries = sum(1 for line in ldd.stdout.splitlines() if "=>" in line)
        return (median([run["seconds"] for run in runs]),
                max(run["peak_rss_kib"] for run in runs), libraries)

    # Row 7: memory growth with input length.

    def runGrowth(self):
        self.loads.append(report.loadAverage())
        rows = []
        peaks = []
        commands = []
        for seconds in self.arguments.growth_seconds:
            name = f"growth-{seconds}.mp4"
            path = self.inputPath(name)
            options = {"kind": "video", "file_id": self.upload(name), "width": 160,
                       "format": "mp4"}

            def checkGrowthOutput(options, task, expected=seconds):
                checkOutput(options, task)
                duration = (task.get("output") or {}).get("duration") or 0
                if abs(duration - expected) > 1:
                    raise RuntimeError(f"task {task['id']}: output lasts {duration} s, "
                                       f"expected about {expected} s")

            bitmill = runBitmillTasks(self.client, self.server.pid, [options], checkGrowthOutput)
            argv = ["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", path,
                    "-vf", "scale=160:90", "-pix_fmt", "yuv420p", "-c:v", "libx264",
                    "-preset", "veryfast", "-profile:v", "high", "-crf", "23",
                    "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart",
                    self.outputPath("growth.mp4")]
            commands.append(argv)
            baseline = runCommands([argv], self.out_dir)
            peaks.append(bitmill["task_peak_kib"])
            self.log(f"growth {seconds} s: bitmill {bitmill['seconds']:.2f} s, task peak "
                     f"{report.formatMib(bitmill['task_peak_kib'])} MiB; ffmpeg "
                     f"{baseline['seconds']:.2f} s, "
                     f"{report.formatMib(baseline['peak_rss_kib'])} MiB")
            rows.append([f"{seconds} s", f"{os.path.getsize(path) / 2**20:.1f}",
                         f"{bitmill['seconds']:.2f}", report.formatMib(bitmill["task_peak_kib"]),
                         f"{baseline['seconds']:.2f}", report.formatMib(baseline["peak_rss_kib"])])
        self.commands.append(("memory growth (one per input length)", commands))
        first_mib = peaks[0] / KIB_PER_MIB
        last_mib = peaks[-1] / KIB_PER_MIB
        largest_mib = max(peaks) / KIB_PER_MIB
        allowed_growth = max(first_mib * GROWTH_FLAT_SHARE, GROWTH_FLAT_MIN_MIB)
        flat = last_mib - first_mib <= allowed_growth and all(peaks)
        lengths = self.arguments.growth_seconds
        self.targets.append(Target(
            "memory growth",
            f"task peak RSS flat in input length (grows <= {GROWTH_FLAT_SHARE:.0%} or "
            f"{GROWTH_FLAT_MIN_MIB} MiB) and < 300 MB ({GROWTH_MAX_PEAK_MIB:.0f} MiB)",
            f"{first_mib:.0f} MiB at {lengths[0]} s, {last_mib:.0f} MiB at {lengths[-1]} s",
            verdict(flat and largest_mib < GROWTH_MAX_PEAK_MIB)))
        self.sections.append((
            "Memory growth",
            ["The real phone clip scaled once to 320x180 (H.264 + AAC) and repeated without "
             "re-encoding, so every length has the same bitrate, transcoded to 160x90 H.264 "
             "+ AAC MP4 (bitmill: `video`, width 160, mp4; its H.264 preset is veryfast). One "
             "run per length. bitmill's column is the peak RSS (VmHWM) of the task process."],
            report.markdownTable(
                ["input length", "input MiB", "bitmill s", "bitmill task peak RSS MiB",
                 "ffmpeg s", "ffmpeg peak RSS MiB"], rows, numeric_columns=(1, 2, 3, 4, 5))))

    # The report.

    def describeInputs(self):
        lines = []
        names = ["clip.mp4", "video.mp4", "image.jpg", "audio.wav", "tiny.png"]
        names += [f"growth-{seconds}.mp4" for seconds in self.arguments.growth_seconds]
        for name in dict.fromkeys(names):
            lines.append(f"- `{name}`: {probeDescription(self.inputPath(name))}")
        return lines

    def writeReport(self, started_at, wall_seconds):
        cores, model, memory_gib, os_name, kernel = report.describeMachine()
        arguments = self.arguments
        one_minute_loads = [float(load.split()[0]) for load in self.loads]
        text = [
            f"## Results ({arguments.mode} run)",
            "",
            f"- Run: {arguments.mode}, {arguments.warmup} warm-up + {arguments.runs} counted "
            "runs per contestant, contestants interleaved; started "
            f"{started_at:%Y-%m-%d %H:%M} UTC, took {wall_seconds / 60:.1f} min",
            f"- Machine: {cores} cores, {model}, {memory_gib:.1f} GiB RAM; {os_name}, "
            f"Linux {kernel}",
            f"- Load average (1, 5, 15 min) at the start {self.loads[0]}, at the end "
            f"{report.loadAverage()}; 1-minute load at the start of each row "
            f"{min(one_minute_loads):.2f} to {max(one_minute_loads):.2f}",
        ]
        text += report.versionLines(arguments.bitmill, arguments.repo)
        text += ["", "Inputs (made by bench/run.sh from real media):", ""]
        text += self.describeInputs()
        for title, notes, table in self.sections:
            text += ["", f"### {title}", ""]
            for note in notes:
                text += [note, ""]
            text += table
        text += ["", "### Targets", ""]
        targets = sorted(self.targets, key=lambda target: ROW_NAMES.index(target.row))
        text += report.markdownTable(
            ["row", "target", "measured", "result"],
            [[target.row, target.target, target.measured, target.verdict]
             for target in targets])
        text += ["", "### Baseline commands", "",
                 "`$INPUTS` is the folder of inputs listed above and `$OUT` a scratch folder.",
                 ""]
        grouped = {}
        for case, commands in self.commands:
            grouped.setdefault(case, []).extend(commands)
        for case, commands in grouped.items():
            text += [f"{case}:", "", "```sh"]
            text += [self.shellCommand(argv) for argv in commands]
            text += ["```", ""]
        if self.lua_script:
            text += ["post-task.lua (its file_id is the tiny PNG uploaded to that server):", "",
                     "```lua", self.lua_script.rstrip(), "```", ""]
        content = "\n".join(text).rstrip() + "\n"
        print(content)
        os.makedirs(os.path.dirname(os.path.abspath(arguments.output)), exist_ok=True)
        with open(arguments.output, "w") as output:
            output.write(content)

    def shellCommand(self, argv):
        """Return argv as one shell line, with $OUT and $INPUTS in place of the folders."""
        quoted = []
        for word in argv:
            word = word.replace(self.out_dir, "$OUT").replace(self.inputs, "$INPUTS")
            if any(character in word for character in " ;[]'{}()"):
                # Double quotes keep $OUT, $INPUTS and $KEY expandable.
                word = '"' + word + '"'
            quoted.append(word)
        return " ".join(quoted)


def formatRatioOf(summaries, baseline):
    return report.formatRatio(summaries["bitmill"]["median"] / summaries[baseline]["median"])


def formatCount(value):
    return "n/a" if value is None else str(value)


def tinyTaskOptions(file_id):
    return {"kind": "image", "file_id": file_id, "width": 32, "format": "jpeg"}


def summarizeHttp(runs):
    rates = [run["requests_per_second"] for run in runs]
    overflows = [run.get("listen_overflows") for run in runs]
    return {
        "listen_overflows": None if None in overflows else sum(overflows),
        "rate": median(rates),
        "rate_min": min(rates),
        "rate_max": max(rates),
        "p50": median([run["p50_ms"] for run in runs]),
        "p99": median([run["p99_ms"] for run in runs]),
        "total_peak_kib": max(run["total_peak_kib"] for run in runs),
    }


def probeDescription(path):
    """Describe a media file with ffprobe: streams, size, duration, bitrate, file size."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "stream=codec_type,codec_name,width,height,avg_frame_rate,sample_rate,channels:"
         "format=duration,bit_rate", "-of", "json", path], capture_output=True, text=True)
    size_mib = os.path.getsize(path) / 2**20
    try:
        probe = json.loads(result.stdout)
    except json.JSONDecodeError:
        return f"{size_mib:.1f} MiB"
    parts = []
    media_format = probe.get("format", {})
    # ffprobe gives a still image a duration of 0 (or none) and a nominal 25 fps.
    moving = float(media_format.get("duration", 0) or 0) > 0.05
    for stream in probe.get("streams", []):
        if stream.get("codec_type") == "video":
            description = f"{stream.get('codec_name')} {stream.get('width')}x{stream.get('height')}"
            numerator, _, denominator = stream.get("avg_frame_rate", "0/0").partition("/")
            if moving and denominator not in ("", "0") and numerator not in ("", "0"):
                description += f" {float(numerator) / float(denominator):.0f} fps"
            parts.append(description)
        elif stream.get("codec_type") == "audio":
            parts.append(f"{stream.get('codec_name')} {stream.get('sample_rate')} Hz "
                         f"{stream.get('channels')} ch")
    if moving:
        parts.append(f"{float(media_format['duration']):.1f} s")
    if moving and media_format.get("bit_rate"):
        parts.append(f"{int(media_format['bit_rate']) / 1e6:.2f} Mbit/s")
    parts.append(f"{size_mib:.2f} MiB")
    return ", ".join(parts)


def parseArguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bitmill", required=True, help="the bitmill binary to start")
    parser.add_argument("--inputs", required=True, help="folder of inputs made by bench/run.sh")
    parser.add_argument("--work-dir", required=True,
                        help="scratch folder for data directories and baseline outputs")
    parser.add_argument("--output", required=True, help="Markdown file to write the report to")
    parser.add_argument("--repo", required=True, help="bitmill's source tree, for its commit")
    parser.add_argument("--mode", default="full", help="name of the run in the report header")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted runs per contestant")
    parser.add_argument("--runs", type=int, default=5, help="counted runs per contestant")
    parser.add_argument("--http-seconds", type=int, default=10, help="wrk duration per run")
    parser.add_argument("--queue-tasks", type=int, default=1000,
                        help="tasks the queue row submits")
    parser.add_argument("--growth-seconds", default="10,100,1000",
                        help="comma-separated input lengths of the memory growth row, "
                             "matching growth-N.mp4 inputs")
    parser.add_argument("--queue-bench", default="",
                        help="bitmill_queue_bench binary (bench/queue), for the queue's own "
                             "dispatch rate; optional")
    parser.add_argument("--postgres-url", default="",
                        help="PostgreSQL database for the dispatch benchmark; optional")
    parser.add_argument("--rows", default="tasks,http,queue,growth",
                        help="comma-separated subset of tasks, http, queue, growth "
                             "(a partial report, for trying one row)")
    parser.add_argument("--pairs", default="",
                        help="comma-separated parts of row names, such as 'video,frame': "
                             "the tasks row then runs only the pairs whose row name "
                             "contains one of them (default: every pair)")
    arguments = parser.parse_args()
    arguments.pairs = [part for part in arguments.pairs.split(",") if part]
    arguments.growth_seconds = [int(value) for value in arguments.growth_seconds.split(",")]
    arguments.rows = arguments.rows.split(",")
    arguments.inputs = os.path.abspath(arguments.inputs)
    arguments.work_dir = os.path.abspath(arguments.work_dir)
    if arguments.runs < 1:
        parser.error("--runs must be at least 1")
    return arguments


def main():
    arguments = parseArguments()
    # SIGTERM (from run.sh or a test timeout) unwinds like an exception, so the servers
    # started below are stopped by the finally blocks.
    signal.signal(signal.SIGTERM, lambda signal_number, frame: sys.exit(128 + signal_number))
    started_at = datetime.datetime.now(datetime.timezone.utc)
    started = time.monotonic()
    benchmark = Benchmark(arguments)
    benchmark.startMainServer()
    try:
        if "tasks" in arguments.rows:
            benchmark.runTaskPairs()
        if "http" in arguments.rows:
            benchmark.runHttp()
        if "queue" in arguments.rows:
            benchmark.runQueue()
        if "growth" in arguments.rows:
            benchmark.runGrowth()
    finally:
        benchmark.server.stop()
    benchmark.writeReport(started_at, time.monotonic() - started)


if __name__ == "__main__":
    main()
