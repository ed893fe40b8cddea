"""Per-evaluation overhead of the sandbox backends, side by side with two baselines, in one run.

    .venv/bin/python benchmarks/sandbox_overhead.py

The candidate imports numpy and answers three calls (the attack suite's contract evaluator). Baselines:
the same work in-process (no isolation at all), and a fresh `subprocess` of the same interpreter per
evaluation (exec + imports + JSON out: the cost of naive isolation). Targets: the process backend at
most 10 ms per candidate session, the Docker backend at most 50 ms with a warm container (measured when
an engine answers; `bash scripts/docker.sh` starts one).
"""

from __future__ import annotations

import json
import subprocess
import sys

import timing

from evaluators import evaluate_program
from evolve.testing.attacks import ContractEvaluator
from evolve.testing.docker_engine import EngineUnavailable, docker_sandbox
from sandboxes import ProcessSandbox, SandboxLimits

SOURCE = "import numpy as np\ndef solve(x):\n    return int(np.int64(2) * x)\n"
REPEATS = 60


def median_ms(fn, repeats: int = REPEATS) -> float:
    """Median milliseconds of `fn()` after one warm-up call."""
    return timing.median_ms(fn, repeats, warm_up=True)


def in_process() -> None:
    namespace: dict = {}
    exec(compile(SOURCE, "candidate.py", "exec"), namespace)
    assert [json.loads(json.dumps(namespace["solve"](x))) for x in (1, 2, 3)] == [2, 4, 6]


def fresh_subprocess() -> None:
    script = SOURCE + "import json\nprint(json.dumps([solve(x) for x in (1, 2, 3)]))\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [2, 4, 6]


def main() -> None:
    limits = SandboxLimits(call_timeout=5, wall_seconds=20)
    process = ProcessSandbox()
    rows = {
        "in-process call, no isolation (baseline)": median_ms(in_process),
        "fresh subprocess of the same interpreter (baseline)": median_ms(fresh_subprocess, 20),
        "process backend: fork server, namespaces, Landlock, seccomp": median_ms(
            lambda: evaluate_program(ContractEvaluator(), process, SOURCE, limits)),
    }
    try:
        docker = docker_sandbox()
    except EngineUnavailable as exc:
        print(f"(no Docker row: no engine answers: {exc})")
        docker = None
    if docker is not None:
        rows["docker backend: warm container, same fork server"] = median_ms(
            lambda: evaluate_program(ContractEvaluator(), docker, SOURCE, limits))
        docker.close()
    base = rows["in-process call, no isolation (baseline)"]
    sub = rows["fresh subprocess of the same interpreter (baseline)"]
    print("| evaluation (load + 3 calls) | median ms | vs in-process | vs fresh subprocess |")
    print("| --- | ---: | ---: | ---: |")
    for name, ms in rows.items():
        print(f"| {name} | {ms:.2f} | {ms / base:.0f}x | {ms / sub:.2f}x |")
    process.close()


if __name__ == "__main__":
    main()
