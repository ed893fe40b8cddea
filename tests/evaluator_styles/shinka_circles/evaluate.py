"""ShinkaEvolve's evaluate.py convention: main(program_path, results_dir) scores the program with
run_shinka_eval, which writes metrics.json and correct.json into results_dir."""
import argparse
import os

import numpy as np
from shinka.core import run_shinka_eval

N = 5


def check(run_output, atol=1e-6):
    centers, radii, reported = run_output
    centers, radii = np.asarray(centers), np.asarray(radii)
    if centers.shape != (N, 2) or radii.shape != (N,):
        return False, f"expected shapes ({N}, 2) and ({N},), got {centers.shape} and {radii.shape}"
    if not np.isclose(radii.sum(), reported, atol=atol):
        return False, f"reported sum {reported:.6f} is not the radii's sum {radii.sum():.6f}"
    for i in range(N):
        x, y = centers[i]
        if min(x - radii[i], y - radii[i]) < -atol or max(x + radii[i], y + radii[i]) > 1 + atol:
            return False, f"circle {i} leaves the square"
        for j in range(i + 1, N):
            if np.linalg.norm(centers[i] - centers[j]) < radii[i] + radii[j] - atol:
                return False, f"circles {i} and {j} overlap"
    return True, "valid"


def aggregate(results, results_dir):
    centers, radii, reported = results[0]
    np.savez(os.path.join(results_dir, "extra.npz"), centers=centers, radii=radii)
    return {"combined_score": float(reported),
            "public": {"num_circles": int(centers.shape[0]), "centers_str": str(np.round(centers, 3).tolist())},
            "private": {"reported_sum_of_radii": float(reported)}}


def main(program_path, results_dir):
    os.makedirs(results_dir, exist_ok=True)
    metrics, correct, error = run_shinka_eval(
        program_path=program_path,
        results_dir=results_dir,
        experiment_fn_name="run_packing",
        num_runs=1,
        get_experiment_kwargs=lambda run: {},
        validate_fn=check,
        aggregate_metrics_fn=lambda results: aggregate(results, results_dir),
    )
    print("correct" if correct else f"incorrect: {error}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--program_path", default="initial.py")
    parser.add_argument("--results_dir", default="results")
    args = parser.parse_args()
    main(args.program_path, args.results_dir)
