"""The Markdown report: machine and version header, result tables and targets.

Every run writes the same layout, so a later run's file can replace the tables in
docs/benchmarks.md as they are.
"""

import os
import platform
import re
import shutil
import subprocess

# Debian packages of the libraries that bitmill and the baselines use, as dpkg-query
# patterns. libvips loads its AVIF support (libheif, which encodes with libaom and
# decodes with libdav1d) as a module, so ldd of bitmill would not show it.
LIBRARY_PACKAGE_PATTERNS = (
    "libavcodec[0-9]*", "libavformat[0-9]*", "libavfilter[0-9]*", "libavutil[0-9]*",
    "libswscale[0-9]*", "libswresample[0-9]*", "libx264-[0-9]*", "libvpx[0-9]*",
    "libopus[0-9]*", "libmp3lame[0-9]*", "libvips[0-9]*", "libheif[0-9]*", "libaom[0-9]*",
    "libdav1d[0-9]*", "libwebp[0-9]*", "libjpeg62-turbo", "libspng[0-9]*",
    "libsqlite3-[0-9]*", "libcpp-httplib[0-9]*")
TOOL_PACKAGES = ("ffmpeg", "libvips-tools", "imagemagick-6.q16", "nginx", "nginx-common", "wrk")


def _run(command):
    """Return a command's stdout and stderr, or '' when it cannot run."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (result.stdout + result.stderr).strip()


def describeMachine():
    """Return (cores, CPU model, RAM in GiB, OS name, kernel)."""
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_gib = 0.0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_gib = int(line.split()[1]) / 1024 / 1024
                break
    os_name = platform.system()
    try:
        with open("/etc/os-release") as release:
            for line in release:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except FileNotFoundError:
        pass
    return os.cpu_count(), model, memory_gib, os_name, platform.release()


def loadAverage():
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def _packageVersions(patterns):
    """Map each installed Debian package matching one of `patterns` to its version."""
    versions = {}
    listing = _run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Package} ${Version}\n"]
                   + list(patterns))
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "ii":
            versions[parts[1]] = parts[2]
    return versions


def _firstLine(command):
    """Return the first line a command prints, without a trailing copyright notice."""
    output = _run(command)
    if not output:
        return "not installed"
    return output.splitlines()[0].split(" Copyright")[0]


def gitDescription(repo):
    commit = _run(["git", "-C", repo, "rev-parse", "--short=12", "HEAD"])
    if not re.fullmatch(r"[0-9a-f]+", commit or ""):
        return "unknown commit"
    dirty = _run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"])
    return commit + (" with uncommitted changes" if dirty else "")


def versionLines(bitmill, repo):
    """Return Markdown list items naming bitmill's commit and every library and tool."""
    lines = [f"- bitmill: {_firstLine([bitmill, 'version'])}, commit {gitDescription(repo)}"]
    libraries = _packageVersions(LIBRARY_PACKAGE_PATTERNS)
    if libraries:
        listed = ", ".join(f"{name} {version}" for name, version in sorted(libraries.items()))
        lines.append(f"- Library packages (used by bitmill and the tools alike): {listed}")
    lines.append(f"- ffmpeg CLI: {_firstLine(['ffmpeg', '-hide_banner', '-version'])}")
    libav = [line.strip() for line in _run(["ffmpeg", "-version"]).splitlines()
             if re.match(r"^(libav|libsw)", line)]
    if libav:
        lines.append("- ffmpeg CLI libraries: " + "; ".join(" ".join(item.split()[:3])
                                                               for item in libav))
    lines.append(f"- vips CLI: {_firstLine(['vips', '--version'])}")
    lines.append(f"- ImageMagick: {_firstLine(['/usr/bin/convert', '-version'])}")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    lines.append(f"- nginx: {_firstLine([nginx, '-v'])}")
    lines.append(f"- wrk: {_firstLine(['wrk', '-v'])}")
    tools = _packageVersions(TOOL_PACKAGES)
    if tools:
        listed = ", ".join(f"{name} {version}" for name, version in tools.items())
        lines.append(f"- Tool packages: {listed}")
    return lines


def formatSeconds(seconds):
    return f"{seconds:.3f}"


def formatMib(kib):
    return f"{kib / 1024:.0f}" if kib else "n/a"


def formatRatio(value):
    return f"{value:.2f}x" if value == value else "n/a"  # NaN is not equal to itself


def markdownTable(header, rows, numeric_columns=()):
    """Return the lines of a Markdown table whose `numeric_columns` are right-aligned."""
    lines = ["| " + " | ".join(header) + " |"]
    alignment = ["---:" if index in numeric_columns else "---" for index in range(len(header))]
    lines.append("| " + " | ".join(alignment) + " |")
    for row in rows:
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return lines
