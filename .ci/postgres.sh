#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the test suite, without systemd.
#
# Usage (as root, after `apt-get install -y postgresql` on Debian 12):
#   eval "$(.ci/postgres.sh)"      # exports PARLEY_TEST_POSTGRES_URL
#   .ci/postgres.sh stop           # stops it (data stays in $PARLEY_PG_DIR)
#
# Idempotent: a second run finds the cluster running and just prints the URL.
# Environment overrides: PARLEY_PG_DIR (default /tmp/parley-pg), PARLEY_PG_PORT
# (default 5432, or the next free port if 5432 is taken by something else).
set -euo pipefail

PGDIR="${PARLEY_PG_DIR:-/tmp/parley-pg}"
DATA="$PGDIR/data"
SOCK="$PGDIR/sock"
LOG="$PGDIR/postgres.log"
PGUSER_OS=postgres

log() { echo "postgres.sh: $*" >&2; }

BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
if [[ -z "$BIN" || ! -x "$BIN/pg_ctl" ]]; then
  log "PostgreSQL binaries not found; run: apt-get install -y postgresql"
  exit 1
fi

# Run a command as the postgres OS user (initdb/postgres refuse to run as root).
as_pg() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u "$PGUSER_OS" -- "$@"
  else
    "$@"
  fi
}

port_in_use() {
  # bash's /dev/tcp: succeeds when something accepts on the port.
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

if [[ "${1:-}" == stop ]]; then
  if [[ -s "$DATA/PG_VERSION" ]]; then
    as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  log "stopped"
  exit 0
fi

mkdir -p "$PGDIR" "$SOCK"
if [[ "$(id -u)" == 0 ]]; then
  chown "$PGUSER_OS" "$PGDIR" "$SOCK"
fi

if [[ ! -s "$DATA/PG_VERSION" ]]; then
  log "initdb into $DATA"
  # Local socket: trust (for this script's admin commands); TCP: real passwords.
  as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C >/dev/null
fi

if as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  # Already running: reuse the port it was started with.
  PORT="$(sed -n 4p "$DATA/postmaster.pid")"
  log "already running on port $PORT"
else
  PORT="${PARLEY_PG_PORT:-5432}"
  if [[ -z "${PARLEY_PG_PORT:-}" ]]; then
    while port_in_use "$PORT"; do PORT=$((PORT + 1)); done
  fi
  log "starting on 127.0.0.1:$PORT"
  # Tests do not need crash safety of the test database; fsync off makes them fast.
  as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -p $PORT -k $SOCK -c fsync=off -c max_connections=200" \
    >/dev/null
fi

# Wait until it accepts connections (pg_ctl -w already waits; this covers reuse).
for _ in $(seq 1 60); do
  if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then break; fi
  sleep 0.5
done
"$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" || { log "not ready; see $LOG"; exit 1; }

psql_pg() { as_pg "$BIN/psql" -h "$SOCK" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }

if [[ "$(psql_pg -c "SELECT 1 FROM pg_roles WHERE rolname='parley'")" != 1 ]]; then
  psql_pg -c "CREATE ROLE parley LOGIN PASSWORD 'parley'"
fi
# CREATEDB: tests that start servers make a fresh database of their own each run
# (tests/support/postgres.py), never trusting what parley_test's schema holds.
psql_pg -c "ALTER ROLE parley CREATEDB"
if [[ "$(psql_pg -c "SELECT 1 FROM pg_database WHERE datname='parley_test'")" != 1 ]]; then
  psql_pg -c "CREATE DATABASE parley_test OWNER parley"
fi

echo "export PARLEY_TEST_POSTGRES_URL=postgresql+asyncpg://parley:parley@127.0.0.1:$PORT/parley_test"
