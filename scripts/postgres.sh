#!/usr/bin/env bash
# Makes a PostgreSQL server available for the database tests: installs Debian's postgresql when run as
# root and it is missing, starts a throwaway cluster owned by the postgres user on 127.0.0.1 (data under
# /tmp), creates the role and database `evolve_test`, and prints its URL on stdout. Quick when it runs.
# Tests read the URL from EVOLVE_TEST_POSTGRES_URL (scripts/test.sh exports it).
set -uo pipefail
PORT=${EVOLVE_PG_PORT:-54329}
DATA=/tmp/evolve-postgres-$PORT
URL="postgresql+psycopg://evolve_test:evolve_test@127.0.0.1:$PORT/evolve_test"
say() { echo "postgres: $*" >&2; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
ready() { [ -n "$(bin)" ] && "$(bin)/pg_isready" -q -h 127.0.0.1 -p "$PORT" >/dev/null 2>&1; }

if ! ready; then
  if [ -z "$(bin)" ]; then
    if [ "$(id -u)" != 0 ]; then say "not installed and this is not root; the PostgreSQL tests will be skipped"; exit 0; fi
    say "installing Debian's postgresql"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
      || { say "apt-get install postgresql failed"; exit 1; }
  fi
  BIN=$(bin)
  if [ ! -f "$DATA/PG_VERSION" ]; then
    rm -rf "$DATA" && mkdir -p "$DATA" && { [ "$(id -u)" != 0 ] || chown postgres: "$DATA"; }
    as_pg "$BIN/initdb" -D "$DATA" -U postgres -A trust --no-sync >/dev/null || { say "initdb failed"; exit 1; }
  fi
  say "starting a cluster on 127.0.0.1:$PORT (data and log: $DATA)"
  as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $PORT -k /tmp -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null \
    || { say "the server did not start (see $DATA/server.log)"; exit 1; }
fi
psql() { "$(bin)/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -tAq "$@"; }
if [ "$(psql -c "SELECT 1 FROM pg_roles WHERE rolname='evolve_test'")" != 1 ]; then
  psql -c "CREATE ROLE evolve_test LOGIN CREATEDB PASSWORD 'evolve_test'" || exit 1
fi
if [ "$(psql -c "SELECT 1 FROM pg_database WHERE datname='evolve_test'")" != 1 ]; then
  psql -c "CREATE DATABASE evolve_test OWNER evolve_test" || exit 1
fi
echo "$URL"
