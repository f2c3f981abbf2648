#!/usr/bin/env bash
# Benchmarks bitmill tasks against the ffmpeg, vipsthumbnail and ImageMagick command
# lines on the same inputs and writes a Markdown table to bench/results/latest.md.
# bench/README.md describes what is measured and how to read the table.
#
# Usage: bench/run.sh [--quick]
#   --quick  1 warm-up + 1 counted run per tool and a shorter video and WAV.
# Environment:
#   BITMILL     a built bitmill binary to use instead of running `make build`
#   MEDIA_DIR   where scripts/fetch-test-media.sh keeps its files (default build/test-media)

set -euo pipefail
export LC_ALL=C.UTF-8

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
quick=0
for argument in "$@"; do
    case $argument in
        --quick) quick=1 ;;
        *) echo "bench: unknown argument '$argument' (expected --quick)" >&2; exit 2 ;;
    esac
done

if ((quick)); then
    warmup=1 runs=1 video_seconds=6 audio_seconds=15
else
    warmup=1 runs=5 video_seconds=10 audio_seconds=60
fi

# Debian packages of the baselines and of GNU time.
missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v vipsthumbnail >/dev/null 2>&1 || missing+=(libvips-tools)
[[ -x /usr/bin/convert ]] || missing+=(imagemagick)
[[ -x /usr/bin/time ]] || missing+=(time)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if ((${#missing[@]})); then
    echo "bench: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

if [[ -n ${BITMILL:-} ]]; then
    bitmill=$BITMILL
else
    make -C "$repo" build >&2
    bitmill=$repo/build/bitmill
fi
[[ -x $bitmill ]] || { echo "bench: bitmill binary not found at $bitmill" >&2; exit 1; }

media=${MEDIA_DIR:-$repo/build/test-media}
# fetch-test-media.sh exits 1 when any of its files is missing, but only three are needed.
"$repo/scripts/fetch-test-media.sh" "$media" >&2 || true
source_video=$media/forensics/VID_20191220_170832.mp4
source_image=$media/forensics/IMG_20200124_231153.jpg
source_speech=$media/pocketsphinx/sense_and_sensibility_01_austen_64kb-0870.wav
for file in "$source_video" "$source_image" "$source_speech"; do
    [[ -s $file ]] || { echo "bench: input missing: $file (run apt-get update?)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/bitmill-bench.XXXXXX")
server_pid=
stopServer() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf -- "$work"
}
trap stopServer EXIT

echo "bench: preparing inputs in $work" >&2
mkdir -p "$work/inputs" "$work/outputs" "$work/data"
# The phone clip is 1.6 s long, so it is repeated without re-encoding.
ffmpeg -nostdin -v error -stream_loop 10 -i "$source_video" -t "$video_seconds" -c copy \
    "$work/inputs/video.mp4"
cp -- "$source_image" "$work/inputs/image.jpg"
# 7 s of 16 kHz mono speech, repeated and resampled to CD-style 44.1 kHz stereo.
ffmpeg -nostdin -v error -stream_loop -1 -i "$source_speech" -t "$audio_seconds" \
    -ar 44100 -ac 2 -c:a pcm_s16le "$work/inputs/audio.wav"

# bitmill requires an API key of at least 16 characters.
api_key=bench-$(od -An -N16 -tx1 /dev/urandom | tr -d " \n")
"$bitmill" serve --data-dir "$work/data" --listen 127.0.0.1:0 \
    --delivery-listen 127.0.0.1:0 --api-key "$api_key" --log-level warn \
    >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    [[ -s $work/data/listen.json ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
done
[[ -s $work/data/listen.json ]] || { echo "bench: bitmill wrote no listen.json" >&2; exit 1; }
api_url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api"])' \
    "$work/data/listen.json")
delivery_url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["delivery"])' \
    "$work/data/listen.json")

mkdir -p "$repo/bench/results"
mode=$([[ $quick == 1 ]] && echo quick || echo full)
title="$("$bitmill" version 2>/dev/null | head -1 || echo 'bitmill (unknown version)'), $mode run"
title+=" ($warmup warm-up + $runs counted per tool), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ);"
title+=" video ${video_seconds} s, WAV ${audio_seconds} s"
python3 "$repo/bench/bench.py" --api "$api_url" --delivery "$delivery_url" \
    --api-key "$api_key" --server-pid "$server_pid" --inputs "$work/inputs" \
    --work-dir "$work/outputs" --warmup "$warmup" --runs "$runs" \
    --output "$repo/bench/results/latest.md" --title "$title"
