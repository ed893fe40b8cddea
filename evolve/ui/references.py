"""A problem's reference lines (best known, optimum) from its evaluator's `reference_scores`."""

from __future__ import annotations

import logging
import math

from evolve.config import ProblemConfig

__all__ = ["reference_lines"]

_log = logging.getLogger("evolve.ui")


def reference_lines(problem: ProblemConfig) -> list[dict]:
    """`[{"name", "value"}]` in natural units; empty when the evaluator has none or cannot be built here
    (a warning says why: the charts are drawn without them)."""
    from evolve.problems import build_evaluator

    try:
        scores = build_evaluator(problem).reference_scores()
    except Exception as exc:  # noqa: BLE001 (the problem's code: any failure only costs the lines)
        _log.warning("no reference lines for problem %r: %s: %s", problem.name, type(exc).__name__, exc)
        return []
    return [{"name": str(name), "value": float(value)} for name, value in scores.items()
            if isinstance(value, (int, float)) and math.isfinite(value)]
