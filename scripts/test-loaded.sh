#!/usr/bin/env bash
# Runs the whole test suite beside busy loops (two per core by default: LOAD_PER_CORE=N), as on a shared
# CI machine: no verdict may depend on wall-clock speed. The loops end with the script, whatever happens.
# They run at the niceness Ray gives its workers (15, LOAD_NICE=N): at 0 they would take nearly all the
# CPU from the evaluation workers and slow the suite tenfold without testing anything more.
set -uo pipefail
cd "$(dirname "$0")/.."
per_core=${LOAD_PER_CORE:-2}
hogs=()
cleanup() { for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null; done; }
trap cleanup EXIT INT TERM
for _ in $(seq 1 $(( per_core * $(nproc) ))); do
  nice -n "${LOAD_NICE:-15}" bash -c 'while :; do :; done' &
  hogs+=($!)
done
echo "test-loaded: ${#hogs[@]} busy loops on $(nproc) cores" >&2
bash scripts/test.sh "$@"
code=$?
echo "test-loaded: load average $(cut -d' ' -f1-3 /proc/loadavg) at the end" >&2
exit "$code"
