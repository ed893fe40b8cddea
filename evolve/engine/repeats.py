"""Repeated scorings for a problem noisy by nature (`problem.repeats: k`): a would-be best is ranked on its mean.

A deterministic problem (k = 1, the contract) is scored once. Otherwise a valid program whose first score
beats the best so far is scored k - 1 more times; it is recorded with the mean as its score and the spread
in its metrics (`evolve.program.SPREAD_METRICS`), so the campaign's best is not just its luckiest draw.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics

from evaluators.cascade import EvaluationResult
from evaluators.direction import natural
from evolve.config import ProblemConfig
from evolve.evaluation.pool import Pool
from evolve.program import SPREAD_METRICS, Program

__all__ = ["rescored"]


async def rescored(pool: Pool, code: str, result: EvaluationResult, problem: ProblemConfig,
                   best: Program | None) -> EvaluationResult:
    """`result`, or for a would-be best of a problem with `repeats` k > 1, the mean of k scorings with
    their spread; invalid when any of them is."""
    k = problem.repeats
    if k <= 1 or not result.valid or result.score is None or \
            (best is not None and best.score is not None and result.score <= best.score):
        return result
    others = await asyncio.gather(*(pool.evaluate(code) for _ in range(k - 1)))
    seconds = result.seconds + sum(r.seconds for r in others)
    failed = next((r for r in others if not r.valid or r.score is None), None)
    if failed is not None:
        return dataclasses.replace(failed, seconds=seconds,
                                   feedback=f"invalid in one of {k} scorings (problem.repeats={k}): {failed.feedback}")
    scores = [result.score, *(r.score for r in others if r.score is not None)]  # every one is valid here
    mean = statistics.fmean(scores)
    shown = [natural(s, problem.direction) for s in scores]
    spread = {"n": k, "min": min(shown), "max": max(shown), "std": statistics.pstdev(scores)}
    metrics = {**result.metrics, **{SPREAD_METRICS[name]: value for name, value in spread.items()}}
    feedback = (f"{result.feedback}\nmean of {k} scorings (the problem is noisy): "
                f"{natural(mean, problem.direction):.6g}, "
                f"from {spread['min']:.6g} to {spread['max']:.6g}, std {spread['std']:.3g}")
    return dataclasses.replace(result, score=mean, metrics=metrics, feedback=feedback, seconds=seconds)
