"""An evaluator in OpenEvolve's shape, unchanged: it loads the program from program_path with importlib
and calls run_search(); under evolve the call runs inside the sandbox session."""

import importlib.util
import time

import numpy as np
from openevolve.evaluation_result import EvaluationResult

GLOBAL_MIN = -1.5187  # at about (-1.705, 0.678), found by a fine grid


def load(program_path):
    spec = importlib.util.spec_from_file_location("program", program_path)
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    return program


def distance_score(value):
    return 1.0 / (1.0 + abs(value - GLOBAL_MIN))


def evaluate_stage1(program_path):
    """One quick run: is the answer a finite point with a plausible value?"""
    try:
        program = load(program_path)
        x, y, value = program.run_search()
    except Exception as exc:  # noqa: BLE001 (the candidate's failure is its score)
        return {"combined_score": 0.0, "error": f"run_search failed: {exc}"}
    if not all(np.isfinite([x, y, value])):
        return {"combined_score": 0.0, "error": "non-finite result"}
    return {"value_score": distance_score(value), "combined_score": distance_score(value)}


def evaluate(program_path):
    """Three runs: the mean closeness to the minimum, plus reliability."""
    program = load(program_path)
    values, started = [], time.perf_counter()
    for _ in range(3):
        try:
            _x, _y, value = program.run_search()
        except Exception as exc:  # noqa: BLE001 (the candidate's failure is its score)
            return EvaluationResult(metrics={"combined_score": 0.0, "error": str(exc)[:200]},
                                    artifacts={"stderr": str(exc)[:200]})
        values.append(float(value))
    value_score = float(np.mean([distance_score(v) for v in values]))
    reliability = float(np.mean([abs(v - GLOBAL_MIN) < 0.01 for v in values]))
    combined = 0.8 * value_score + 0.2 * reliability
    with open(program_path) as f:
        length = len(f.read())
    return EvaluationResult(
        metrics={"value_score": value_score, "reliability_score": reliability, "combined_score": combined,
                 "program_chars": length},
        artifacts={"best_values": ", ".join(f"{v:.4f}" for v in values),
                   "seconds": f"{time.perf_counter() - started:.2f}"})


def evaluate_stage2(program_path):
    return evaluate(program_path)
