"""signal_processing's style: keyword arguments, scipy in the evaluator, error counts among the metrics
and a composite score that is not called combined_score."""
import concurrent.futures
import importlib.util

import numpy as np
from scipy.stats import pearsonr


def run_with_timeout(func, args=(), kwargs={}, timeout_seconds=10):
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(func, *args, **kwargs).result(timeout=timeout_seconds)


def signals():
    t = np.linspace(0, 4 * np.pi, 200)
    clean = np.sin(t) + 0.3 * np.sin(3 * t)
    noise = 0.3 * np.cos(17 * t) + 0.2 * np.sin(29 * t + 1.0)
    return clean, clean + noise


def evaluate(program_path):
    spec = importlib.util.spec_from_file_location("program", program_path)
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    clean, noisy = signals()
    filtered = np.asarray(run_with_timeout(program.run_filter, args=(noisy,),
                                           kwargs={"window_size": 7, "scale": 1.0}))
    if filtered.shape != clean.shape or not np.all(np.isfinite(filtered)):
        return {"composite_score": 0.0, "error": f"run_filter returned shape {filtered.shape}"}
    avg_error = float(np.mean(np.abs(filtered - clean)))
    reversals = float(np.sum(np.diff(np.sign(np.diff(filtered))) != 0))
    correlation = float(pearsonr(filtered, clean)[0])
    composite = correlation / (1.0 + avg_error) / (1.0 + reversals / 100)
    return {"composite_score": composite, "avg_error": avg_error, "false_reversals": reversals,
            "correlation": correlation}
