#!/usr/bin/env bash
# Sets up .venv if needed, then runs every test (unit and end-to-end). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/docker.sh  # the Docker backend's tests need an engine
export EVOLVE_TEST_POSTGRES_URL=${EVOLVE_TEST_POSTGRES_URL:-$(bash scripts/postgres.sh)}  # the database tests' PostgreSQL
exec .venv/bin/python -m pytest -ra "$@"
