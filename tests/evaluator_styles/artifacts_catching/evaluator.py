"""circle_packing_with_artifacts' style: numpy arrays from the program, every exception caught and
returned as a zero score with artifacts but no `error` entry."""
import importlib.util
import traceback

import numpy as np
from openevolve.evaluation_result import EvaluationResult

N = 6


def validate(centers, radii):
    for i in range(N):
        x, y = centers[i]
        if x - radii[i] < -1e-9 or x + radii[i] > 1 + 1e-9 or y - radii[i] < -1e-9 or y + radii[i] > 1 + 1e-9:
            return False
        for j in range(i + 1, N):
            if np.hypot(*(centers[i] - centers[j])) < radii[i] + radii[j] - 1e-9:
                return False
    return True


def run(program_path):
    spec = importlib.util.spec_from_file_location("program", program_path)
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    return program.run_packing()


def evaluate(program_path):
    try:
        centers, radii, total = run(program_path)
        if centers.shape != (N, 2) or radii.shape != (N,):
            return EvaluationResult(metrics={"validity": 0.0, "combined_score": 0.0},
                                    artifacts={"stderr": f"shapes {centers.shape} and {radii.shape}"})
        valid = validate(centers, radii)
        score = float(np.sum(radii)) if valid else 0.0
        return EvaluationResult(metrics={"validity": float(valid), "sum_radii": score, "combined_score": score},
                                artifacts={"packing_summary": f"sum of radii {score:.4f}"})
    except Exception as exc:
        return EvaluationResult(metrics={"validity": 0.0, "combined_score": 0.0},
                                artifacts={"stderr": str(exc), "traceback": traceback.format_exc()[-300:]})
