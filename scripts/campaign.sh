#!/usr/bin/env bash
# Sets up .venv if needed, then runs `evolve run` with the given Hydra overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/evolve run "$@"
