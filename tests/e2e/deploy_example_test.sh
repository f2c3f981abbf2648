#!/usr/bin/env bash
# Runs the example of docs/deploy.md: 2 API processes and 3 workers sharing
# PostgreSQL and S3 (the servers of the postgres and s3 CTest fixtures), on
# port 0 instead of the fixed ports. It uploads a real video through one API
# process, creates tasks through the other, waits until the workers complete
# them, and checks a worker's /healthz and /metrics.
#
# usage: deploy_example_test.sh BITMILL_BINARY SERVICES_DIR
set -euo pipefail

bitmill=$1
services=$2
work=$(mktemp -d /tmp/bitmill-deploy-example.XXXXXX)
pids=()

cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ $status -ne 0 ]]; then
        for log in "$work"/*.log; do
            echo "---- $log"
            tail -n 30 "$log"
        done
    fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "deploy example: $*" >&2
    exit 1
}

for file in postgres.url s3.url s3.env; do
    [[ -s $services/$file ]] || fail "$services/$file is missing: run through ctest (fixtures postgres and s3)"
done

# A database and a key prefix of this test's own.
server_url=$(cat "$services/postgres.url")
database=deploy_$RANDOM$RANDOM
psql "$server_url" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $database"
s3_url=$(cat "$services/s3.url")
bucket_part=${s3_url%%\?*}
bucket=${bucket_part#s3://}
bucket=${bucket%%/*}

# The environment of docs/deploy.md.
export BITMILL_DATABASE_URL=${server_url%/*}/$database
export BITMILL_STORAGE_URL="s3://$bucket/deploy-$database?${s3_url#*\?}"
set -a
# shellcheck disable=SC1091
source "$services/s3.env"
set +a
BITMILL_SECRET=$(openssl rand -hex 32)
export BITMILL_SECRET

# Waits for DIR/listen.json and prints the value of FIELD.
listen_field() {
    local dir=$1 field=$2
    for _ in $(seq 1 200); do
        if [[ -s $dir/listen.json ]]; then
            python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
                "$dir/listen.json" "$field" && return 0
        fi
        sleep 0.1
    done
    fail "no $dir/listen.json after 20 s"
}

key=$("$bitmill" keys create --name admin --data-dir "$work/admin" | grep -o 'bm_[A-Za-z0-9]*' | head -n 1)
[[ -n $key ]] || fail "bitmill keys create printed no key"

for i in 1 2; do
    "$bitmill" serve --workers 0 --data-dir "$work/api-$i" \
        --listen 127.0.0.1:0 --delivery-listen 127.0.0.1:0 >"$work/api-$i.log" 2>&1 &
    pids+=($!)
done
for i in 1 2 3; do
    "$bitmill" worker --workers 2 --data-dir "$work/worker-$i" \
        --health-listen 127.0.0.1:0 >"$work/worker-$i.log" 2>&1 &
    pids+=($!)
done
api1=$(listen_field "$work/api-1" api)
delivery1=$(listen_field "$work/api-1" delivery)
api2=$(listen_field "$work/api-2" api)
health3=$(listen_field "$work/worker-3" health)

# Upload a real clip through API process 1 (delivery listener).
clip=${BITMILL_TEST_MEDIA:-}
if [[ -z $clip ]]; then
    clip=$(dirname "$bitmill")/test-media/forensics/VID_20191220_170832.mp4
fi
if [[ ! -s $clip ]]; then
    # No real media fetched: make a short clip instead.
    clip=$work/clip.mp4
    ffmpeg -v error -f lavfi -i testsrc2=size=640x360:rate=30 -t 3 -pix_fmt yuv420p "$clip"
fi
file_id=$(curl -sf -X PUT -H "Authorization: Bearer $key" --data-binary @"$clip" \
    "$delivery1/examples/clip.mp4" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

# Create six tasks through API process 2; the three workers share them.
task_ids=()
for width in 160 192 224 256 288 320; do
    body="{\"kind\":\"image\",\"file_id\":\"$file_id\",\"width\":$width,\"format\":\"jpeg\"}"
    id=$(curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
        -d "$body" "$api2/tasks" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    task_ids+=("$id")
done
video_body="{\"kind\":\"video\",\"file_id\":\"$file_id\",\"width\":320,\"format\":\"mp4\"}"
task_ids+=("$(curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d "$video_body" "$api2/tasks" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')")

for id in "${task_ids[@]}"; do
    status=pending
    for _ in $(seq 1 600); do
        status=$(curl -sf -H "Authorization: Bearer $key" "$api1/tasks/$id" |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
        [[ $status == completed || $status == failed || $status == cancelled ]] && break
        sleep 0.2
    done
    [[ $status == completed ]] || fail "task $id ended $status"
done

# The output is delivered from S3 through either API process.
output_url=$(curl -sf -H "Authorization: Bearer $key" "$api2/tasks/${task_ids[0]}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["output"]["url"])')
curl -sf -o "$work/out.jpg" "$output_url"
width=$(ffprobe -v error -select_streams v:0 -show_entries stream=width -of csv=p=0 "$work/out.jpg")
[[ $width == 160 ]] || fail "output width $width, expected 160"

# Whole bodies first: `grep -q` on a pipe would end curl with SIGPIPE, which
# pipefail reports as a failure.
health=$(curl -sf "$health3/healthz")
worker_metrics=$(curl -sf "$health3/metrics")
api_metrics=$(curl -sf "$api1/metrics")
grep -q '"ok"' <<<"$health" || fail "worker /healthz is not ok: $health"
grep -q '^# TYPE bitmill_tasks gauge' <<<"$worker_metrics" || fail "worker /metrics has no queue depth"
grep -q 'bitmill_http_request_duration_seconds_count' <<<"$api_metrics" ||
    fail "API /metrics has no HTTP latency"
echo "deploy example: 2 API processes and 3 workers completed ${#task_ids[@]} tasks"
