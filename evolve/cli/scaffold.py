"""`evolve new-problem NAME`: a working problem folder and its contract test, ready to edit.

The problem written is small but complete: `predict(x)` approximates a hidden curve, scored by mean
squared error (`direction: minimize`) through `SplitEvaluator` (a cheap smoke stage, then train;
validation and test held out), with every candidate call checked and batched (`call_many`).
"""

from __future__ import annotations

import keyword
from pathlib import Path

from evolve.errors import ConfigError

__all__ = ["FILES", "new_problem"]

CONFIG = '''# Hydra group file of the problem (validated against evolve.config.ProblemConfig).
name: {name}
description: "approximate a hidden curve with predict(x); mean squared error, lower is better"
evaluator: evaluator:Approximation     # evaluator.py beside this file, class Approximation
initial: initial.py
readme: README.md
direction: minimize                    # the evaluator's Score.value is an error: lower is better
params:
  seed: 0
  call_timeout: 1.0
features:
  - {{name: code_length, min: 100, max: 2000, bins: 5}}
limits:
  wall_seconds: 30.0
  call_timeout: 2.0
  cpu_seconds: 30
  memory_mb: 1024
'''

INITIAL = '''"""{name}: approximate a hidden curve on [-3, 3]; `predict(x)` returns one number for one x."""

import math


# EVOLVE-BLOCK-START
def predict(x):
    """A first guess: a straight line."""
    return 0.5 * x
# EVOLVE-BLOCK-END
'''

EVALUATOR = '''"""Trusted scoring for {name}: mean squared error of predict(x) against a hidden curve.

It runs in a Ray worker, never in the sandbox; the candidate is reached only through the session.
"""

from __future__ import annotations

import math
import random

from evaluators import Score, Session, SplitEvaluator, check_numbers


def target(x: float) -> float:
    """The hidden curve (the candidate never sees this file)."""
    return math.sin(x) + 0.3 * x * x


class Approximation(SplitEvaluator):
    """Scores `predict(x)` by mean squared error on seeded points: smoke (3), train, val and test."""

    entrypoint = "predict"

    def __init__(self, seed: int = 0, call_timeout: float = 1.0) -> None:
        self.call_timeout = call_timeout
        rng = random.Random(seed)
        self.splits = {{name: [rng.uniform(-3.0, 3.0) for _ in range(n)]
                       for name, n in (("train", 40), ("val", 40), ("test", 100))}}
        self.smoke_set = self.splits["train"][:3]

    def score(self, candidate: Session, instances: list[float], split: str) -> Score:
        got = candidate.call_many("predict", [[x] for x in instances], timeout=self.call_timeout)
        problem = check_numbers(got, len(instances), "predictions")
        if problem:
            return Score.invalid(f"predict(x) {{problem}}")
        errors = [(g - target(x)) ** 2 for g, x in zip(got, instances)]
        mse = sum(errors) / len(errors)
        if not math.isfinite(mse):
            return Score.invalid("predictions overflow: the error is not finite")
        worst = max(range(len(instances)), key=errors.__getitem__)
        return Score(value=mse, metrics={{"mse": mse}},
                     feedback=f"{{split}}: mean squared error {{mse:.4g}}; worst at x={{instances[worst]:.2f}} "
                              f"(predicted {{got[worst]:.3f}})")
'''

README = '''# {name}

Write `predict(x)`: given one number `x` in [-3, 3], return one number as close as possible to a
hidden smooth curve. The score is the mean squared error over many points (lower is better).
`predict` may use the standard library (`math`) and numpy; it is called once per point.
'''

TEST = '''"""The evaluator contract for {name}: run with `python test_contract.py` (no pytest needed), or
`pytest test_contract.py` where pytest is installed (`pip install 'evolve[test]'`)."""

from pathlib import Path

from evolve.testing.contract import ContractSuite


class TestContract(ContractSuite):
    problem = Path(__file__).resolve().parent


if __name__ == "__main__":
    raise SystemExit(TestContract.main())
'''

FILES = {"config.yaml": CONFIG, "initial.py": INITIAL, "evaluator.py": EVALUATOR, "README.md": README,
         "test_contract.py": TEST}


def new_problem(name: str, parent: str | Path = ".") -> Path:
    """Write the folder `parent/name` with a working problem; refuse to overwrite anything."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ConfigError(f"new-problem {name!r}: the name must be a Python identifier (letters, digits, _)")
    folder = Path(parent) / name
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"new-problem: {folder} exists and is not empty; choose another name or --dir")
    folder.mkdir(parents=True, exist_ok=True)
    for filename, template in FILES.items():
        (folder / filename).write_text(template.format(name=name))
    return folder
