"""The toy problem both tools evolve in `vs_openevolve.py`, and the fake model's reply.

The candidate's `run(seconds, cpu)` sleeps (or burns CPU time) for the evaluation cost E and returns
its score. The fake model answers every request with one SEARCH/REPLACE edit that keeps its anchor
line and adds a term with a number never sent before, so each child applies (in evolve and in
OpenEvolve) and differs from every program before it (no duplicate is dropped). Each evaluator
appends the wall-clock time at which it finished to a log, which gives the last evaluation's end.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

__all__ = ["Responder", "read_times", "write_evolve_problem", "write_openevolve_files"]

ANCHOR = "    score = 1.0\n"

INITIAL = '''"""Benchmark toy: run(seconds, cpu) waits or burns `seconds`, then returns its score."""

import time


# EVOLVE-BLOCK-START
def run(seconds, cpu):
    """Sleep (or burn CPU time) for `seconds`, then return the score."""
    if cpu:
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass
    elif seconds > 0:
        time.sleep(seconds)
''' + ANCHOR + '''    return score
# EVOLVE-BLOCK-END
'''

EVOLVE_CONFIG = '''name: toy_bench
description: "benchmark toy: each evaluation costs a fixed time"
evaluator: evaluator:Toy
initial: initial.py
readme: README.md
params: {{seconds: {seconds}, cpu: {cpu}, log: "{log}"}}
packages: []
limits: {{wall_seconds: 60.0, call_timeout: 30.0, cpu_seconds: 60, memory_mb: 1024}}
'''

EVOLVE_EVALUATOR = '''"""Benchmark toy evaluator: calls run(seconds, cpu) in the sandbox and logs when it finished."""

import time

from evaluators import Evaluator, Score


class Toy(Evaluator):
    entrypoint = "run"

    def __init__(self, seconds: float = 0.0, cpu: bool = False, log: str = "") -> None:
        self.seconds, self.cpu, self.log = seconds, cpu, log

    def evaluate(self, candidate):
        got = candidate.call("run", self.seconds, self.cpu, timeout=30.0)
        with open(self.log, "a") as out:
            out.write(f"{time.time()}\\n")
        if not isinstance(got, (int, float)):
            return Score.invalid(f"run() returned {type(got).__name__}")
        return Score(value=float(got), metrics={"score": float(got)})
'''

OPENEVOLVE_EVALUATOR = '''"""Benchmark toy evaluator (OpenEvolve's API): runs run(seconds, cpu), logs when it ended."""

import importlib.util
import time

SECONDS, CPU, LOG = {seconds}, {cpu}, "{log}"


def evaluate(program_path):
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    score = float(module.run(SECONDS, CPU))
    with open(LOG, "a") as out:
        out.write(f"{{time.time()}}\\n")
    return {{"combined_score": score}}
'''

OPENEVOLVE_CONFIG = '''max_iterations: {iterations}
llm:
  api_base: "{base_url}"
  api_key: "bench"
  models:
    - {{name: "fake-model", weight: 1.0}}
evaluator:
  parallel_evaluations: {slots}
'''


class Responder:
    """The fake model's answer: an edit at the anchor adding a term with a fresh number."""

    def __init__(self) -> None:
        self._count = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self, request: dict) -> str:
        with self._lock:
            n = next(self._count)
        return (f"Add a small term.\n<<<<<<< SEARCH\n{ANCHOR}=======\n{ANCHOR}"
                f"    score += {n} * 1e-06\n>>>>>>> REPLACE\n")


def write_evolve_problem(folder: Path, seconds: float, cpu: bool, log: Path) -> Path:
    """A problem folder (`problem=FOLDER`) whose evaluations cost `seconds`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(EVOLVE_CONFIG.format(seconds=seconds, cpu=str(cpu).lower(), log=log))
    (folder / "evaluator.py").write_text(EVOLVE_EVALUATOR)
    (folder / "initial.py").write_text(INITIAL)
    (folder / "README.md").write_text("Return a high score from run(seconds, cpu); it must wait `seconds`.\n")
    return folder


def write_openevolve_files(folder: Path, seconds: float, cpu: bool, log: Path, base_url: str,
                           iterations: int, slots: int) -> tuple[Path, Path, Path]:
    """OpenEvolve's initial program, evaluator file and config, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    initial, evaluator, config = folder / "initial.py", folder / "evaluator.py", folder / "config.yaml"
    initial.write_text(INITIAL)
    evaluator.write_text(OPENEVOLVE_EVALUATOR.format(seconds=seconds, cpu=cpu, log=log))
    config.write_text(OPENEVOLVE_CONFIG.format(iterations=iterations, base_url=base_url, slots=slots))
    return initial, evaluator, config


def read_times(log: Path) -> list[float]:
    """The wall-clock times an evaluator logged, sorted."""
    if not log.exists():
        return []
    return sorted(float(line) for line in log.read_text().split() if line)
