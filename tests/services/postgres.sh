#!/usr/bin/env bash
# Starts and stops a throwaway PostgreSQL server for the postgres test suites.
# `start DIR` writes the server's URL to DIR/postgres.url and its data folder
# to DIR/postgres.path; `stop DIR` stops that server and removes the folder.
set -euo pipefail

readonly pg_bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
readonly start_attempts=5

usage() {
    echo "usage: $0 start|stop DIR" >&2
    exit 2
}

fail() {
    echo "postgres fixture: $*" >&2
    exit 1
}

# Runs a command as the `postgres` OS user when running as root, because
# PostgreSQL refuses to run as root; otherwise as the current user.
as_server_user() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Prints the server log, so a failure in CTest's output shows its cause.
print_log() {
    local log=$1
    if [[ -f $log ]]; then
        echo "---- $log" >&2
        tail -n 40 "$log" >&2
        echo "----" >&2
    fi
}

# Prints a TCP port in 20000-59999 on which nothing listens on 127.0.0.1.
pick_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

stop_server() {
    local dir=$1
    local path_file=$dir/postgres.path
    if [[ ! -f $path_file ]]; then
        return 0
    fi
    local folder
    folder=$(<"$path_file")
    if [[ -f $folder/data/postmaster.pid ]]; then
        (cd "$folder" && as_server_user "$pg_bindir/pg_ctl" stop -D "$folder/data" -m immediate \
            -w -t 30 >/dev/null) || echo "postgres fixture: stop server in '$folder' failed" >&2
    fi
    # Only folders this script created are removed.
    if [[ $(basename "$folder") == bitmill-pg.* ]]; then
        rm -rf "$folder"
    fi
    rm -f "$path_file" "$dir/postgres.url"
}

start_server() {
    local dir=$1
    [[ -x $pg_bindir/initdb ]] ||
        fail "initdb not found in '$pg_bindir': install postgresql (scripts/install-deps.sh test)" \
            "or set PG_BINDIR"
    mkdir -p "$dir"
    # A server left by an interrupted run is stopped first.
    stop_server "$dir"

    local base=$dir
    if [[ -d /dev/shm && -w /dev/shm ]]; then
        base=/dev/shm
    fi
    local folder
    folder=$(mktemp -d "$base/bitmill-pg.XXXXXX") || fail "create data folder in '$base' failed"
    echo "$folder" >"$dir/postgres.path"
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres: "$folder" || fail "give '$folder' to the postgres user failed"
    fi

    cd "$folder"
    if ! as_server_user "$pg_bindir/initdb" -D "$folder/data" --no-sync -A trust -U postgres \
        -E UTF8 --locale=C >"$folder/initdb.log" 2>&1; then
        print_log "$folder/initdb.log"
        fail "initdb in '$folder/data' failed"
    fi
    # Durability is not needed for throwaway test data, and the suites open
    # many connections at once when CTest runs them in parallel.
    cat >>"$folder/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$folder'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF

    local port log=$folder/server.log
    for attempt in $(seq 1 "$start_attempts"); do
        port=$(pick_port) || fail "no free TCP port found on 127.0.0.1"
        if as_server_user "$pg_bindir/pg_ctl" start -D "$folder/data" -l "$log" -w -t 30 \
            -o "-p $port" >/dev/null 2>&1; then
            echo "postgres://postgres@127.0.0.1:$port/postgres" >"$dir/postgres.url"
            echo "postgres fixture: server ready url=postgres://postgres@127.0.0.1:$port/postgres" \
                "data=$folder"
            return 0
        fi
        # Another process may have taken the port after pick_port checked it.
        if ! grep -q "could not bind\|Address already in use" "$log" 2>/dev/null; then
            break
        fi
        echo "postgres fixture: port $port was taken, attempt $attempt of $start_attempts" >&2
    done
    print_log "$log"
    fail "start server in '$folder/data' failed"
}

[[ $# -eq 2 ]] || usage
case $1 in
    start) start_server "$2" ;;
    stop) stop_server "$2" ;;
    *) usage ;;
esac
