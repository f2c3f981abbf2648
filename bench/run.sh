#!/usr/bin/env bash
# Benchmarks bitmill against the ffmpeg, vipsthumbnail and ImageMagick command lines and
# nginx, checks it against its targets, and writes a Markdown report to
# bench/results/latest.md. bench/README.md describes the rows and how to read them.
#
# Usage: bench/run.sh [--quick] [--no-install]
#   --quick       1 warm-up + 1 counted run per contestant and small inputs (under 2 minutes)
#   --no-install  only check that the tools are there, and exit 77 (the test's "skipped")
#                 when one is missing or the real media cannot be fetched
# Environment:
#   BITMILL      a built bitmill binary to use instead of running `make build`
#   BUILD_DIR    the build folder of `make build` (default build)
#   MEDIA_DIR    where scripts/fetch-test-media.sh keeps its files (default $BUILD_DIR/test-media)
#   RESULTS_DIR  where latest.md is written (default bench/results)
#   BENCH_ROWS   a comma-separated subset of tasks,http,queue,growth (default all of them)
#   BENCH_PAIRS  comma-separated parts of row names, such as video,frame: the tasks row
#                then runs only the pairs whose row name contains one (default all pairs)
#   BITMILL_QUEUE_BENCH  bench/queue's dispatch benchmark (default: next to bitmill)

set -euo pipefail
export LC_ALL=C.UTF-8

readonly skip_status=77
repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
quick=0
install=1
for argument in "$@"; do
    case $argument in
        --quick) quick=1 ;;
        --no-install) install=0 ;;
        *) echo "bench: unknown argument '$argument' (expected --quick or --no-install)" >&2
           exit 2 ;;
    esac
done

if ((quick)); then
    mode=quick warmup=1 runs=1 http_seconds=2 queue_tasks=50 growth_seconds=2,5,10
    growth_base_seconds=2
    # The frame grab at 5 s needs 6 s of video; the transcodes take the first second.
    video_seconds=6 clip_seconds=1 audio_seconds=15
else
    mode=full warmup=1 runs=5 http_seconds=10 queue_tasks=1000 growth_seconds=10,100,1000
    growth_base_seconds=10
    video_seconds=10 clip_seconds=10 audio_seconds=60
fi

# The baselines and GNU time come from Debian (scripts/install-deps.sh bench).
missingTools() {
    local tool
    for tool in ffmpeg ffprobe vips vipsthumbnail wrk python3; do
        command -v "$tool" >/dev/null 2>&1 || echo "$tool"
    done
    command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || echo nginx
    [[ -x /usr/bin/convert ]] || echo /usr/bin/convert
    [[ -x /usr/bin/time ]] || echo /usr/bin/time
}
missing=$(missingTools)
if [[ -n $missing ]]; then
    if ((install)); then
        "$repo/scripts/install-deps.sh" bench >&2
    else
        echo "bench: skipped: missing $(echo $missing); run scripts/install-deps.sh bench" >&2
        exit $skip_status
    fi
fi

# BUILD_DIR is relative to the repository, as in the Makefile, unless it is absolute.
build_dir=${BUILD_DIR:-build}
[[ $build_dir == /* ]] || build_dir=$repo/$build_dir
if [[ -n ${BITMILL:-} ]]; then
    bitmill=$BITMILL
else
    make -C "$repo" build BUILD_DIR="$build_dir" BUILD_TYPE=Release >&2
    bitmill=$build_dir/bitmill
    # The queue dispatch benchmark is optional: the queue row only mentions its rate.
    cmake --build "$build_dir" -j "$(nproc)" --target bitmill_queue_bench >&2 ||
        echo "bench: bitmill_queue_bench did not build; the report goes without it" >&2
fi
[[ -x $bitmill ]] || { echo "bench: bitmill binary not found at $bitmill" >&2; exit 1; }
bitmill=$(cd -- "$(dirname -- "$bitmill")" && pwd)/$(basename -- "$bitmill")
# bench/queue's binary sits in the same build folder as bitmill.
queue_bench=${BITMILL_QUEUE_BENCH:-$(dirname -- "$bitmill")/bench/queue/bitmill_queue_bench}

media=${MEDIA_DIR:-$build_dir/test-media}
# fetch-test-media.sh exits 1 when any of its files is missing, but only three are needed.
"$repo/scripts/fetch-test-media.sh" "$media" >&2 || true
source_video=$media/forensics/VID_20191220_170832.mp4
source_image=$media/forensics/IMG_20200124_231153.jpg
source_speech=$media/pocketsphinx/sense_and_sensibility_01_austen_64kb-0870.wav
for file in "$source_video" "$source_image" "$source_speech"; do
    if [[ ! -s $file ]]; then
        echo "bench: input missing: $file (run apt-get update, then this script again)" >&2
        ((install)) && exit 1
        exit $skip_status
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/bitmill-bench.XXXXXX")
bench_pid=
cleanUp() {
    if [[ -n $bench_pid ]] && kill -0 "$bench_pid" 2>/dev/null; then
        kill -TERM "$bench_pid" 2>/dev/null || true
        wait "$bench_pid" 2>/dev/null || true
    fi
    if [[ -s $work/postgres/postgres.path ]]; then
        "$repo/tests/services/postgres.sh" stop "$work/postgres" >&2 || true
    fi
    rm -rf -- "$work"
}
trap cleanUp EXIT
trap 'exit 143' TERM INT

started=$SECONDS
echo "bench: making the inputs in $work/inputs" >&2
inputs=$work/inputs
mkdir -p "$inputs"
ffmpegQuiet() {
    ffmpeg -nostdin -hide_banner -v error -y "$@"
}
# The phone clip lasts 1.6 s at about 27 fps (variable). The full run repeats it and
# encodes it once to constant 30 fps with a keyframe each second, as phones write them,
# which takes about 20 s of CPU; the quick run repeats it without re-encoding.
if ((quick)); then
    ffmpegQuiet -stream_loop -1 -i "$source_video" -t "$video_seconds" -c copy \
        -movflags +faststart "$inputs/video.mp4"
else
    ffmpegQuiet -stream_loop -1 -i "$source_video" -t "$video_seconds" -vf fps=30 \
        -c:v libx264 -preset veryfast -crf 18 -g 30 -pix_fmt yuv420p \
        -c:a aac -b:a 128k -movflags +faststart "$inputs/video.mp4"
fi
if ((clip_seconds == video_seconds)); then
    ln "$inputs/video.mp4" "$inputs/clip.mp4"
else
    ffmpegQuiet -i "$inputs/video.mp4" -t "$clip_seconds" -c copy -movflags +faststart \
        "$inputs/clip.mp4"
fi
cp -- "$source_image" "$inputs/image.jpg"
# 7 s of 16 kHz mono speech, repeated and resampled to CD-style 44.1 kHz stereo.
ffmpegQuiet -stream_loop -1 -i "$source_speech" -t "$audio_seconds" \
    -ar 44100 -ac 2 -c:a pcm_s16le "$inputs/audio.wav"
# The queue row's tiny task input, cut from the phone photo.
ffmpegQuiet -i "$source_image" -vf scale=64:64 "$inputs/tiny.png"
# Memory growth: the clip scaled once to 320x180, then repeated without re-encoding, so
# every length has the same bitrate.
ffmpegQuiet -stream_loop -1 -i "$source_video" -t "$growth_base_seconds" -vf scale=320:180,fps=30 \
    -c:v libx264 -preset veryfast -crf 23 -g 30 -pix_fmt yuv420p -c:a aac -b:a 96k \
    "$work/growth-base.mp4"
for seconds in ${growth_seconds//,/ }; do
    ffmpegQuiet -stream_loop -1 -i "$work/growth-base.mp4" -t "$seconds" -c copy \
        -movflags +faststart "$inputs/growth-$seconds.mp4"
done
echo "bench: inputs made in $((SECONDS - started)) s" >&2

# A throwaway PostgreSQL server for the queue dispatch benchmark, when the
# machine has one installed (scripts/install-deps.sh test installs it).
postgres_url=
if [[ -x /usr/lib/postgresql/15/bin/initdb && -x $queue_bench ]]; then
    if "$repo/tests/services/postgres.sh" start "$work/postgres" >&2; then
        server_url=$(cat "$work/postgres/postgres.url")
        psql "$server_url" -q -c "CREATE DATABASE dispatch" >&2 &&
            postgres_url=${server_url%/*}/dispatch
    else
        echo "bench: PostgreSQL did not start; the dispatch row uses SQLite only" >&2
    fi
fi

results_dir=${RESULTS_DIR:-$repo/bench/results}
mkdir -p "$results_dir"
python3 "$repo/bench/bench.py" --bitmill "$bitmill" --inputs "$inputs" --work-dir "$work" \
    --output "$results_dir/latest.md" --repo "$repo" --mode "$mode" \
    --warmup "$warmup" --runs "$runs" --http-seconds "$http_seconds" \
    --queue-tasks "$queue_tasks" --growth-seconds "$growth_seconds" \
    --queue-bench "$queue_bench" --postgres-url "$postgres_url" --rows "${BENCH_ROWS:-tasks,http,queue,growth}" \
    --pairs "${BENCH_PAIRS:-}" &
bench_pid=$!
status=0
wait "$bench_pid" || status=$?
bench_pid=
echo "bench: finished in $((SECONDS - started)) s with status $status; report in" \
    "$results_dir/latest.md" >&2
exit "$status"
