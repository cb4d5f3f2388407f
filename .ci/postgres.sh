#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the test suite and print the line that points the tests at it:
#
#     eval "$(bash .ci/postgres.sh)"
#
# Idempotent: when the cluster already answers, it only makes sure the database exists and prints the
# export again. On a fresh Debian machine (as root) it installs PostgreSQL from Debian packages first.
# stdout carries only the export line; everything else goes to stderr so `eval` stays safe.
# Test-only settings: trust authentication on 127.0.0.1, fsync off. Never point real money at it.
set -euo pipefail

PORT="${IMAGINE_PG_PORT:-54329}"
DATA="${IMAGINE_PG_DIR:-/var/tmp/imagine-pg-$PORT}"
DB="imagine_test"
URL="postgresql://postgres@127.0.0.1:$PORT/$DB"

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
    # Debian keeps the server binaries out of PATH, one directory per major version; take the newest.
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
        echo "$dir"
    elif command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
    fi
}

BIN="$(find_bindir)"
if [ -z "$BIN" ]; then
    if [ "$(id -u)" != 0 ]; then
        log "PostgreSQL is not installed and this is not root: install the 'postgresql' package first"
        exit 1
    fi
    log "installing PostgreSQL from Debian packages"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update && apt-get install -y --no-install-recommends postgresql; } >&2
    BIN="$(find_bindir)"
    [ -n "$BIN" ] || { log "PostgreSQL binaries still not found after apt-get install"; exit 1; }
fi

# The server refuses to run as root: as root, run everything as the postgres user (created if missing).
if [ "$(id -u)" = 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        log "creating the postgres system user"
        useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

ready() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -d postgres -U postgres; }

if ! ready; then
    mkdir -p "$DATA"
    [ "$(id -u)" = 0 ] && chown postgres: "$DATA"
    chmod 700 "$DATA"
    if [ ! -s "$DATA/PG_VERSION" ]; then
        log "initdb in $DATA"
        as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C >&2
    fi
    start() {
        as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
            -o "-h 127.0.0.1 -p $PORT -k $DATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >&2
    }
    if ! start; then
        # A container restart leaves postmaster.pid behind, sometimes naming a live, unrelated pid.
        log "start failed; removing a stale postmaster.pid and retrying once (log: $DATA/server.log)"
        rm -f "$DATA/postmaster.pid"
        start || { tail -n 20 "$DATA/server.log" >&2 || true; exit 1; }
    fi
    ready || { log "server started but does not answer on 127.0.0.1:$PORT"; exit 1; }
fi

exists="$("$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$DB'")"
if [ "$exists" != 1 ]; then
    "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qc "CREATE DATABASE $DB" >&2
fi

echo "export IMAGINE_TEST_POSTGRES_URL=$URL"
