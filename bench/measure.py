"""Measurements: resident memory read from /proc, baseline commands under GNU time, wrk.

Memory is the resident set size (RSS) that the kernel reports in /proc/PID/status,
in KiB. Shared library pages count in every process that maps them, so the sum over a
server and its task processes is an upper bound of what they use together.
"""

import os
import re
import subprocess
import tempfile
import threading
import time

# Listing the children of all 134 threads of an idle bitmill server took 0.9 ms of CPU on
# the 2-core benchmark machine. Every 20 ms, that is about 5% of one core taken from the
# work being measured. So a sampler lists all threads every FULL_SCAN_INTERVAL_SECONDS
# and in between only the threads that had children.
FULL_SCAN_INTERVAL_SECONDS = 0.5
RSS_SAMPLE_INTERVAL_SECONDS = 0.02
# Between samples, a sampler waits its interval or 1/SAMPLES_PER_ELAPSED of the time
# sampled so far, whichever is longer, up to MAX_ADAPTIVE_INTERVAL_SECONDS.
SAMPLES_PER_ELAPSED = 20
MAX_ADAPTIVE_INTERVAL_SECONDS = 0.25


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


def readThreadChildren(pid, thread):
    """Return the children that THREAD of PID started, or None when the file is missing."""
    try:
        with open(f"/proc/{pid}/task/{thread}/children") as listing:
            return [int(child) for child in listing.read().split()]
    except FileNotFoundError:
        return None


def _childrenFromTaskFiles(pid):
    """Return PID's children from /proc/PID/task/*/children, or None without that file."""
    children = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []
    for thread in threads:
        found = readThreadChildren(pid, thread)
        if found is None:
            if not os.path.exists(f"/proc/{pid}/task/{thread}"):
                continue  # the thread exited while listing
            return None  # a kernel without CONFIG_PROC_CHILDREN
        children.extend(found)
    return children


def _parentsOfAllProcesses():
    """Map every pid to its parent pid by reading /proc/*/stat."""
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
    return parents


def hasChildrenFiles(pid):
    """Return whether this kernel has /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN)."""
    return os.path.exists(f"/proc/{pid}/task/{pid}/children")


def listDescendants(pid):
    """Return every pid below PID (children, their children, and so on)."""
    found = []
    pending = [pid]
    parents = None
    while pending:
        parent = pending.pop()
        children = _childrenFromTaskFiles(parent)
        if children is None:
            if parents is None:
                parents = _parentsOfAllProcesses()
            children = [child for child, owner in parents.items() if owner == parent]
        found.extend(children)
        pending.extend(children)
    return found


def readSmapsRollupKib(pid):
    """Return the `Rss`, `Pss` and `Anonymous` fields of /proc/PID/smaps_rollup in KiB."""
    fields = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    fields[parts[0].rstrip(":")] = int(parts[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return {name: fields.get(name, 0) for name in ("Rss", "Pss", "Anonymous")}


def idleMemoryKib(root_pid):
    """Return the process count and the summed Rss, Pss and Anonymous KiB of ROOT and
    its descendants.

    Pss (proportional set size) counts a page that n processes map as 1/n in each. So
    its sum counts a shared library page about once, and the Rss sum once per process.
    """
    pids = [root_pid] + listDescendants(root_pid)
    totals = {"Rss": 0, "Pss": 0, "Anonymous": 0}
    for pid in pids:
        for name, kib in readSmapsRollupKib(pid).items():
            totals[name] += kib
    return len(pids), totals


class DescendantFinder:
    """Lister of the descendants of one root process, cheap enough for every sample.

    Only a few threads of the root (its workers) start processes, and they keep doing
    so. After a scan of every thread, only those are read until the next full scan.
    A descendant's children are read from its main thread only, because bitmill's task
    hosts and task processes start processes from that thread.
    """

    def __init__(self, root_pid):
        self.root_pid = root_pid
        self._parent_threads = []
        self._next_full_scan = 0.0

    def _rootChildren(self):
        now = time.monotonic()
        if now < self._next_full_scan:
            children = []
            for thread in self._parent_threads:
                children.extend(readThreadChildren(self.root_pid, thread) or [])
            return children
        self._next_full_scan = now + FULL_SCAN_INTERVAL_SECONDS
        self._parent_threads = []
        children = []
        try:
            threads = os.listdir(f"/proc/{self.root_pid}/task")
        except FileNotFoundError:
            return []
        for thread in threads:
            found = readThreadChildren(self.root_pid, thread)
            if found:
                self._parent_threads.append(thread)
                children.extend(found)
        return children

    def list(self):
        found = []
        pending = self._rootChildren()
        while pending:
            child = pending.pop()
            found.append(child)
            pending.extend(readThreadChildren(child, child) or [])
        return found


class RssSampler(threading.Thread):
    """Samples the memory of one root process and its descendants until stopped.

    Fields after stop():
      root_peak_kib: the largest VmRSS of the root process seen.
      descendant_peak_kib: the largest VmHWM (the kernel's own peak over the process's
        life) of any descendant, so a descendant needs to be seen once, before it exits.
      total_peak_kib: the largest sum, at one sample, of the root's VmRSS and the VmHWM
        of each descendant alive then (an upper bound of what they held together).
      descendants_seen: how many distinct descendants were sampled.
    A descendant that starts and exits between two samples is missed.
    """

    def __init__(self, root_pid, interval=RSS_SAMPLE_INTERVAL_SECONDS):
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.interval = interval
        self.root_peak_kib = 0
        self.descendant_peak_kib = 0
        self.total_peak_kib = 0
        self._seen = set()
        self._finder = DescendantFinder(root_pid) if hasChildrenFiles(root_pid) else None
        self._stop_event = threading.Event()

    @property
    def descendants_seen(self):
        return len(self._seen)

    def run(self):
        started = time.monotonic()
        while not self._stop_event.is_set():
            self.sample()
            # A descendant's peak is its own VmHWM, so a long-lived one needs to be seen
            # only once. The interval grows with the time sampled so far, which leaves
            # more CPU to a long task.
            elapsed = time.monotonic() - started
            self._stop_event.wait(min(max(self.interval, elapsed / SAMPLES_PER_ELAPSED),
                                      MAX_ADAPTIVE_INTERVAL_SECONDS))
        self.sample()

    def sample(self):
        root_rss = readStatusKib(self.root_pid, "VmRSS")
        total = root_rss
        children = (self._finder.list() if self._finder is not None
                    else listDescendants(self.root_pid))
        for child in children:
            peak = readStatusKib(child, "VmHWM")
            if peak:
                self._seen.add(child)
                self.descendant_peak_kib = max(self.descendant_peak_kib, peak)
                total += peak
        self.root_peak_kib = max(self.root_peak_kib, root_rss)
        self.total_peak_kib = max(self.total_peak_kib, total)

    def stop(self):
        self._stop_event.set()
        self.join()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()


def runCommand(argv, work_dir):
    """Run a baseline command under GNU time and return its wall time and peak RSS.

    GNU time's %M is the largest resident set of the command and of every child it
    waited for, in KiB.
    """
    with tempfile.NamedTemporaryFile("r", dir=work_dir, suffix=".time") as time_output:
        command = ["/usr/bin/time", "-f", "%M", "-o", time_output.name] + argv
        started = time.perf_counter()
        result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            stderr_tail = result.stderr.decode("utf-8", "replace")[-2000:]
            raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {stderr_tail}")
        peak_kib = int(time_output.read().strip().splitlines()[-1])
    return {"seconds": elapsed, "peak_rss_kib": peak_kib}


def readListenOverflows():
    """Return the kernel's count of connections dropped because a listen queue was full.

    The count (TcpExt ListenOverflows in /proc/net/netstat) covers every socket of the
    network namespace, not only the server under test. Returns None when it is missing.
    """
    try:
        with open("/proc/net/netstat") as netstat:
            lines = netstat.read().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            fields = dict(zip(names.split()[1:], values.split()[1:]))
            if "ListenOverflows" in fields:
                return int(fields["ListenOverflows"])
    return None


_LATENCY_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parseWrkLatency(text):
    """Convert a wrk latency such as '1.23ms' or '850.00us' to milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"unrecognised wrk latency {text!r}")
    return float(match.group(1)) * _LATENCY_UNITS[match.group(2)]


def parseWrkOutput(output):
    """Return requests per second, p50/p99 latency (ms), request and error counts."""
    result = {"errors": 0, "non_2xx": 0}
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("Requests/sec:"):
            result["requests_per_second"] = float(line.split()[1])
        elif re.match(r"^50(\.0+)?%\s", line):
            result["p50_ms"] = parseWrkLatency(line.split()[1])
        elif re.match(r"^99(\.0+)?%\s", line):
            result["p99_ms"] = parseWrkLatency(line.split()[1])
        elif re.match(r"^\d+ requests in ", line):
            result["requests"] = int(line.split()[0])
        elif line.startswith("Socket errors:"):
            result["errors"] = sum(int(count) for count in re.findall(r"\d+", line))
        elif line.startswith("Non-2xx or 3xx responses:"):
            result["non_2xx"] = int(line.split(":")[1])
    missing = {"requests_per_second", "p50_ms", "p99_ms", "requests"} - result.keys()
    if missing:
        raise RuntimeError(f"wrk output lacks {', '.join(sorted(missing))}:\n{output}")
    return result


def runWrk(url, seconds, connections, threads, headers=(), script=None):
    """Run wrk with --latency against URL and return parseWrkOutput's fields.

    The result also has `listen_overflows`, the growth of readListenOverflows() during the
    run, when the kernel reports it.
    """
    command = ["wrk", "--latency", "-t", str(threads), "-c", str(connections),
               "-d", f"{seconds}s", "--timeout", "10s"]
    for header in headers:
        command += ["-H", header]
    if script:
        command += ["-s", script]
    command.append(url)
    overflows_before = readListenOverflows()
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    overflows_after = readListenOverflows()
    if result.returncode != 0:
        raise RuntimeError(f"wrk exited {result.returncode}: {result.stderr[-2000:]}")
    parsed = parseWrkOutput(result.stdout)
    if overflows_before is not None and overflows_after is not None:
        parsed["listen_overflows"] = overflows_after - overflows_before
    return parsed
