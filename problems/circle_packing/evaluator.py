"""Trusted scoring for circle packing: strict feasibility, then the sum of radii."""

from __future__ import annotations

import math

import numpy as np

from evaluators import CallBudget, Evaluator, OverBudget, Score, Session

BEST_KNOWN = 2.635  # AlphaEvolve (2025) for n=26; ShinkaEvolve reports 2.63598


class CirclePacking(Evaluator):
    """`solve(n)` must return n triples `[x, y, r]` inside the unit square with no overlap.

    Any circle outside the square or any overlap beyond `tolerance` makes the candidate invalid, and so
    does using more than `cpu_seconds` of CPU time, its import included (measured outside the sandbox, so
    a busy machine does not change the verdict); a call still running after `kill_multiple` times that
    of wall-clock time (a sleeper) is killed.
    """

    entrypoint = "solve"

    def __init__(self, n: int = 26, tolerance: float = 1e-12, cpu_seconds: float = 20.0,
                 kill_multiple: float = 20.0) -> None:
        if kill_multiple < 1:
            raise ValueError(f"kill_multiple={kill_multiple}: the wall-clock kill must leave at least the budget")
        self.n = n
        self.tolerance = tolerance
        self.cpu_seconds = float(cpu_seconds)
        self.kill_multiple = float(kill_multiple)

    def evaluate(self, candidate: Session) -> Score:
        """Call `solve(n)` once within the CPU budget, check the packing strictly, and score the sum of radii."""
        try:
            packing = CallBudget(candidate, self.cpu_seconds).call("solve", self.n,
                                                                   timeout=self.kill_multiple * self.cpu_seconds)
        except OverBudget as exc:
            return Score.invalid(str(exc))
        problem = self.check(packing)
        if problem:
            return Score.invalid(problem)
        circles = np.array(packing, dtype=float)
        radii = circles[:, 2]
        total = float(radii.sum())
        spread = float(radii.std() / radii.mean()) if radii.mean() > 0 else 0.0
        return Score(
            value=total,
            metrics={"sum_radii": total, "ratio_to_best_known": total / BEST_KNOWN,
                     "min_radius": float(radii.min()), "max_radius": float(radii.max())},
            features={"radius_spread": spread},
            feedback=(f"valid packing, sum of radii {total:.6f} ({100 * total / BEST_KNOWN:.2f}% of the "
                      f"best known {BEST_KNOWN}); radii from {radii.min():.4f} to {radii.max():.4f}"),
        )

    def reference_scores(self, split: str = "train") -> dict[str, float]:
        """The best known sum of radii for n=26 (none for other n); the problem has a single split."""
        return {f"best known ({BEST_KNOWN})": BEST_KNOWN} if self.n == 26 else {}

    def check(self, packing: object) -> str | None:
        """Return why `packing` is not a strictly feasible packing of n circles, or None if it is."""
        if not isinstance(packing, list) or len(packing) != self.n:
            got = f"{len(packing)} items" if isinstance(packing, list) else type(packing).__name__
            return f"solve({self.n}) must return a list of {self.n} [x, y, r] triples, got {got}"
        for i, c in enumerate(packing):
            if not (isinstance(c, list) and len(c) == 3
                    and all(type(v) in (int, float) and math.isfinite(v) for v in c)):
                return f"circle {i} is {str(c)[:80]}, not [x, y, r] of finite numbers"
        a = np.array(packing, dtype=float)
        x, y, r = a[:, 0], a[:, 1], a[:, 2]
        tol = self.tolerance
        if (r < 0).any():
            return f"circle {int(np.argmin(r))} has a negative radius {r.min():.3g}"
        outside = np.maximum.reduce([r - x, x + r - 1.0, r - y, y + r - 1.0])
        if (outside > tol).any():
            i = int(np.argmax(outside))
            return f"circle {i} (x={x[i]:.6f}, y={y[i]:.6f}, r={r[i]:.6f}) leaves the unit square by {outside[i]:.3g}"
        gap = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :]) - (r[:, None] + r[None, :])
        np.fill_diagonal(gap, np.inf)
        if (gap < -tol).any():
            i, j = np.unravel_index(int(np.argmin(gap)), gap.shape)
            return f"circles {i} and {j} overlap by {-gap[i, j]:.3g}"
        return None
