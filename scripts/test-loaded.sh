#!/usr/bin/env bash
# Runs the whole test suite beside busy loops (two per core by default: LOAD_PER_CORE=N), as on a shared
# CI machine: no verdict may depend on wall-clock speed. The loops end with the script, whatever happens.
# They run at the niceness Ray gives its workers (15, LOAD_NICE=N): at 0 they would take nearly all the
# CPU from the evaluation workers and slow the suite tenfold without testing anything more.
#
#   bash scripts/test-loaded.sh [PYTEST ARGS]          the suite
#   bash scripts/test-loaded.sh campaigns N [OVERRIDES]  N campaigns, one after another (by default the
#       README's: problem=warehouse_tsp budget.iterations=300), in run dirs under runs/loaded/; counts how
#       many finish (exit 0) and prints each failure's last line. The figure: LOAD_PER_CORE=8 ... campaigns 10
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
if [ "${1:-}" = campaigns ]; then
  n=${2:?campaigns N: how many campaigns}
  shift 2
  overrides=("$@")
  [ ${#overrides[@]} -gt 0 ] || overrides=(problem=warehouse_tsp budget.iterations=300)
  evolve=${EVOLVE:-.venv/bin/evolve}
  root="runs/loaded/$(date +%Y%m%d-%H%M%S)"
  mkdir -p "$root"
  finished=0
  for i in $(seq 1 "$n"); do
    dir="$root/$i"
    start=$(date +%s)
    "$evolve" run "${overrides[@]}" "hydra.run.dir=$dir" progress=off >"$root/$i.out" 2>"$root/$i.err" </dev/null
    code=$?
    [ "$code" -eq 0 ] && finished=$(( finished + 1 ))
    last=""
    [ "$code" -eq 0 ] || last=": $(tail -n 1 "$root/$i.err")"
    echo "test-loaded: campaign $i of $n: exit $code after $(( $(date +%s) - start )) s ($dir);" \
         "$(grep -c '' "$root/$i.err") lines on stderr$last" >&2
  done
  echo "test-loaded: $finished of $n campaigns finished (${overrides[*]}); load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  [ "$finished" -eq "$n" ]
  exit $?
fi
bash scripts/test.sh "$@"
code=$?
echo "test-loaded: load average $(cut -d' ' -f1-3 /proc/loadavg) at the end" >&2
exit "$code"
