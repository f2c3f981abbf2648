#!/usr/bin/env bash
# Runs bench/run.sh --quick against a built bitmill and checks that it exited 0 and that
# its report lists every row in the targets table. Timings are never checked: the
# machine running the tests is shared. Exits 77 (skipped) when run.sh does.
#
# Usage: bench/check-quick.sh BITMILL_BINARY MEDIA_DIR

set -euo pipefail

bitmill=${1:?usage: $0 BITMILL_BINARY MEDIA_DIR}
media=${2:?usage: $0 BITMILL_BINARY MEDIA_DIR}
repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
results=$(mktemp -d "${TMPDIR:-/tmp}/bitmill-bench-check.XXXXXX")
trap 'rm -rf -- "$results"' EXIT

status=0
BITMILL=$bitmill MEDIA_DIR=$media RESULTS_DIR=$results "$repo/bench/run.sh" --quick \
    --no-install || status=$?
if ((status == 77)); then
    exit 77
fi
if ((status != 0)); then
    echo "check-quick: bench/run.sh --quick exited $status" >&2
    exit 1
fi

report=$results/latest.md
[[ -s $report ]] || { echo "check-quick: no report at $report" >&2; exit 1; }
rows=(
    "video H.264/AAC MP4"
    "video VP9/Opus WebM"
    "image WebP"
    "image AVIF"
    "two outputs WebP + AVIF"
    "frame grab"
    "audio MP3"
    "HTTP GET /tasks/{id}"
    "HTTP POST /tasks"
    "queue of tiny tasks"
    "queue dispatch on PostgreSQL, 4 workers"
    "memory growth"
    "server RSS across queue"
)
failed=0
targets=$(sed -n '/^### Targets$/,/^### /p' "$report")
for row in "${rows[@]}"; do
    line=$(grep -F -- "| $row | " <<< "$targets" | head -n 1 || true)
    if [[ $line != "| $row | "* || ! $line =~ \|\ (met|missed|no\ target)\ \|$ ]]; then
        echo "check-quick: the targets table has no row '$row'" >&2
        failed=1
    fi
done
for section in "Tasks against command-line tools" "HTTP" "Queue" "Memory growth" \
    "Baseline commands"; do
    if ! grep -qx "### $section" "$report"; then
        echo "check-quick: the report has no section '$section'" >&2
        failed=1
    fi
done
if ((failed)); then
    exit 1
fi
echo "check-quick: the quick report has all ${#rows[@]} rows"
