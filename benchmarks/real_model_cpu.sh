#!/usr/bin/env bash
# Issue 23's real-model benchmark on CPU: Qwen2.5-Coder 0.5B Instruct (a GGUF) served by llama.cpp's
# OpenAI-compatible server (llama-cpp-python, at nice 10), evolve with structured edits against OpenEvolve
# 0.4.0 on the same server (benchmarks/search_quality.py runs both), then a short text-format (diff) run.
# Slow: a proposal takes 5-100 s on 2 loaded cores. Everything goes under OUT; samples of `uptime` too.
# Summaries of every run dir (benchmarks/model_run_summary.py) end in OUT/summary.md and OUT/summary.json.
#   LLAMA_PYTHON=/path/.venv-llama/bin/python MODEL=/path/qwen.gguf OUT=/work/bench/qwen \
#     bash benchmarks/real_model_cpu.sh [circle_packing,warehouse_tsp] [PROPOSALS] [DIFF_PROPOSALS] [DIFF_PROBLEM]
set -uo pipefail
cd "$(dirname "$0")/.."
PROBLEMS=${1:-circle_packing,warehouse_tsp}
PROPOSALS=${2:-100}
DIFF_PROPOSALS=${3:-30}
DIFF_PROBLEM=${4:-circle_packing}
OUT=${OUT:?set OUT to a folder for the results}
PORT=${PORT:-8712}
PYTHON=${PYTHON:-$(dirname "$0")/../.venv/bin/python}
EVOLVE=$(dirname "$PYTHON")/evolve
URL=http://127.0.0.1:$PORT/v1
mkdir -p "$OUT"
export PYTHONPATH=$PWD

if ! curl -sf "$URL/models" >/dev/null; then
  nohup nice -n 10 "${LLAMA_PYTHON:?set LLAMA_PYTHON}" -m llama_cpp.server --model "${MODEL:?set MODEL}" \
    --model_alias qwen --n_ctx 4096 --n_threads 2 --host 127.0.0.1 --port "$PORT" > "$OUT/server.log" 2>&1 &
  until curl -sf "$URL/models" >/dev/null; do sleep 2; done
fi
while true; do echo "$(date -u +%H:%M:%S) $(uptime)"; sleep 60; done >> "$OUT/uptime.log" &
sampler=$!
trap 'kill $sampler' EXIT

# one proposal at a time (the server answers one request at a time, its model list too: no pre-flight
# ping), long timeouts, never stop on misses
COMMON=(llm.context_tokens=4096 llm.max_tokens=1024 llm.concurrency=1 max_in_flight=1 llm.timeout=600
        llm.max_wait_seconds=900 llm.max_retries=0 llm.max_unapplied_in_a_row=null llm.probe_timeout=null
        ray.start_after=1e9 progress=off)
for problem in ${PROBLEMS//,/ }; do
  "$PYTHON" benchmarks/search_quality.py --problems "$problem" --seeds 0 --proposals "$PROPOSALS" \
    "${COMMON[@]/#/--override=}" --override=llm.edit_format=structured --override=llm.structured_edits=1 \
    --llm-base-url "$URL" --llm-model qwen --timeout 36000 --work "$OUT/sq" \
    --json "$OUT/${problem}_structured.json" > "$OUT/${problem}_structured.md" 2> "$OUT/${problem}_structured.log"
done
if [ "$DIFF_PROPOSALS" -gt 0 ]; then
  "$EVOLVE" run "problem=$DIFF_PROBLEM" llm=openai "llm.base_url=$URL" llm.model=qwen llm.api_key_env=null \
    "${COMMON[@]}" llm.edit_format=diff "budget.iterations=$DIFF_PROPOSALS" \
    "hydra.run.dir=$OUT/runs/${DIFF_PROBLEM}_diff" > "$OUT/${DIFF_PROBLEM}_diff.log" 2>&1
fi
openevolve=(); for d in "$OUT"/sq/*/openevolve/seed0/output; do openevolve+=(--openevolve "$d"); done
"$PYTHON" benchmarks/model_run_summary.py "$OUT"/sq/*/islands/seed0 "$OUT"/runs/*_diff "${openevolve[@]}" \
  --json "$OUT/summary.json" > "$OUT/summary.md"
