#!/usr/bin/env bash
# Sets up .venv if needed, then runs every test (unit and end-to-end). Extra arguments go to pytest.
#   --fast  sets up .venv only and runs the tests not marked e2e (minutes); a test that needs a service this
#           lane does not start (Docker, PostgreSQL, ...) skips and says why, even where CI is set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "${1:-}" = --fast ]; then
  shift
  exec env -u CI .venv/bin/python -m pytest -ra -m "not e2e" "$@"
fi
bash scripts/docker.sh  # the Docker backend's tests need an engine
bash scripts/prometheus.sh --install  # the metrics test reads a campaign back through Debian's Prometheus
bash scripts/chromium.sh  # the web view's tests drive Debian's headless chromium
export EVOLVE_TEST_POSTGRES_URL=${EVOLVE_TEST_POSTGRES_URL:-$(bash scripts/postgres.sh)}  # the database tests' PostgreSQL
[ -n "${EVOLVE_TEST_LLAMA_MODEL:-}" ] || eval "$(bash scripts/llama.sh)"  # the real-model test's llama.cpp server and model
exec .venv/bin/python -m pytest -ra "$@"
