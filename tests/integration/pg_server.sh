#!/usr/bin/env bash
# tests/integration/pg_server.sh - a throw-away PostgreSQL server for the
# tests: initdb in a temporary directory, postgres on 127.0.0.1 on a free
# port with its unix socket directory inside the temporary directory, one
# database "cloister", trust authentication (loopback only, test data only).
# As root everything runs as the `postgres` user (runuser), in a directory
# that user owns.
#
# usage:
#   pg_server.sh start          starts a server; prints shell assignments
#                               CL_PG_DIR=... and CL_TEST_PG_CONNINFO='...'
#                               (eval them); the caller must `stop` it
#   pg_server.sh stop DIR       stops the server of DIR and removes DIR
#   pg_server.sh env DIR        prints the assignments again
#   pg_server.sh run CMD...     start, run CMD with CL_TEST_PG_CONNINFO in its
#                               environment, stop and remove everything on any
#                               exit; exits with CMD's status
# Exit 77 when the PostgreSQL server binaries are not installed (initdb,
# pg_ctl under /usr/lib/postgresql/*/bin or on PATH), 1 on other failures.
set -u

find_bin() {
    local b
    for b in /usr/lib/postgresql/*/bin/"$1"; do
        [ -x "$b" ] && { echo "$b"; return 0; }
    done
    command -v "$1" 2>/dev/null
}

as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

conninfo_of() {
    echo "host=127.0.0.1 port=$(cat "$1/port") dbname=cloister user=postgres connect_timeout=5"
}

print_env() {
    printf "CL_PG_DIR='%s'\nCL_TEST_PG_CONNINFO='%s'\n" "$1" "$(conninfo_of "$1")"
}

pg_stop() {
    local dir=$1 pg_ctl
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    [ -f "$dir/port" ] || [ -d "$dir/data" ] || { echo "pg_server: $dir is not ours" >&2; return 1; }
    pg_ctl=$(find_bin pg_ctl)
    if [ -n "$pg_ctl" ] && [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1
    fi
    rm -rf "$dir"
}

pg_start() {
    local initdb pg_ctl dir port try
    initdb=$(find_bin initdb)
    pg_ctl=$(find_bin pg_ctl)
    if [ -z "$initdb" ] || [ -z "$pg_ctl" ]; then
        echo "SKIP: PostgreSQL server binaries (initdb, pg_ctl) not installed" >&2
        return 77
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        echo "SKIP: running as root but there is no postgres user" >&2
        return 77
    fi
    dir=$(mktemp -d "${TMPDIR:-/tmp}/cl_pg.XXXXXX") || return 1
    chmod 0755 "$dir"
    mkdir -p "$dir/sock"
    [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
    if ! as_pg "$initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 \
        >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        rm -rf "$dir"
        return 1
    fi
    for try in 1 2 3 4 5 6 7 8; do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        port_free "$port" || continue
        if as_pg "$pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c fsync=on" \
            start >/dev/null 2>&1; then
            echo "$port" >"$dir/port"
            break
        fi
        echo "pg_server: start on port $port failed (try $try)" >&2
    done
    if [ ! -f "$dir/port" ]; then
        tail -n 20 "$dir/server.log" >&2 2>/dev/null
        rm -rf "$dir"
        return 1
    fi
    if ! as_pg "$(dirname "$pg_ctl")/createdb" -h 127.0.0.1 -p "$port" -U postgres cloister \
        >&2; then
        pg_stop "$dir"
        return 1
    fi
    print_env "$dir"
}

case "${1:-}" in
start)
    pg_start
    exit $?
    ;;
stop)
    pg_stop "${2:?usage: pg_server.sh stop DIR}"
    ;;
env)
    print_env "${2:?usage: pg_server.sh env DIR}"
    ;;
run)
    shift
    [ $# -gt 0 ] || { echo "usage: pg_server.sh run CMD..." >&2; exit 2; }
    out=$(pg_start)
    rc=$?
    [ "$rc" = 0 ] || exit "$rc"
    eval "$out"
    trap 'pg_stop "$CL_PG_DIR"' EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
    export CL_TEST_PG_CONNINFO
    "$@"
    exit $?
    ;;
*)
    echo "usage: pg_server.sh start | stop DIR | env DIR | run CMD..." >&2
    exit 2
    ;;
esac
