"""function_minimization's style: stages, a thread-pool timeout around each call, EvaluationResult."""
import concurrent.futures
import importlib.util

import numpy as np
from openevolve.evaluation_result import EvaluationResult

TARGET = -1.5187


def with_timeout(func, args=(), kwargs={}, seconds=5):
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(func, *args, **kwargs).result(timeout=seconds)


def load(path):
    spec = importlib.util.spec_from_file_location("program", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def closeness(value):
    return 1.0 / (1.0 + abs(value - TARGET))


def evaluate_stage1(program_path):
    try:
        result = with_timeout(load(program_path).run_search)
    except Exception as exc:
        return EvaluationResult(metrics={"combined_score": 0.0, "error": str(exc)},
                                artifacts={"stage": "stage1", "failure": type(exc).__name__})
    if not isinstance(result, tuple) or len(result) != 3:
        return {"combined_score": 0.0, "error": f"run_search returned {type(result).__name__}, not (x, y, value)"}
    return {"combined_score": closeness(float(result[2]))}


def evaluate(program_path):
    program = load(program_path)
    values = [float(with_timeout(program.run_search)[2]) for _ in range(2)]
    score = float(np.mean([closeness(v) for v in values]))
    return EvaluationResult(metrics={"value_score": score, "combined_score": score},
                            artifacts={"values": ", ".join(f"{v:.4f}" for v in values)})


def evaluate_stage2(program_path):
    return evaluate(program_path)
