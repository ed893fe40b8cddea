"""The evaluator contract, as a pytest suite a problem's author runs against their own problem.

    # test_contract.py beside config.yaml (`evolve new-problem` writes it)
    from pathlib import Path
    from evolve.testing.contract import ContractSuite

    class TestContract(ContractSuite):
        problem = Path(__file__).parent          # a folder, or a problem's name

What it checks, each in a real sandbox session:

    preflight        the initial program and the evaluator pass `evolve.engine.preflight`
    initial valid    the initial program scores as valid
    determinism      the same program scores the same twice, in two evaluator instances (validity,
                     value, metrics but the evaluator's `timing_metrics`, features); a problem that
                     declares `repeats` > 1 (noisy by nature) is exempt
    raising          a candidate whose entrypoint raises is invalid, with the exception as the reason
    garbage          a candidate whose entrypoint returns garbage is invalid with a reason, and the
                     evaluator does not crash on it (no evaluator error)
    hanging          a candidate whose entrypoint never returns is killed within the limits

The bad candidates are the initial program with its entrypoint redefined at the end, so helpers stay.
Without pytest (it comes with `pip install 'evolve[test]'`), `python test_contract.py` runs the same
checks through `ContractSuite.main()`, one line each, and exits non-zero when one fails.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["ContractSuite", "bad_candidate"]

RAISING = "raise RuntimeError('contract: this candidate raises on purpose')"
GARBAGE = "return {'contract': 'garbage'}"
HANGING = "while True:\n        pass"


def bad_candidate(initial: str, entrypoint: str, body: str) -> str:
    """`initial` with `entrypoint` redefined at the end to run `body`."""
    return f"{initial.rstrip()}\n\n\ndef {entrypoint}(*args, **kwargs):\n    {body}\n"


class ContractSuite:
    """Subclass it as `TestContract` in a test file and set `problem`; pytest runs the checks.

    `hang_seconds` caps the session's wall clock for the hanging candidate (the problem's own limits
    otherwise), so the check is quick even for a problem with long limits. `run_seed` is the run's seed
    the evaluators get (`Evaluator.run_seed`).
    """

    problem: ClassVar[str | Path | None] = None
    hang_seconds: ClassVar[float] = 5.0
    run_seed: ClassVar[int] = 0
    _cache: ClassVar[dict[str, Any]] = {}

    # -- set-up -----------------------------------------------------------------------------------
    @classmethod
    def _parts(cls):
        key = f"{cls.__module__}.{cls.__qualname__}"
        if key not in ContractSuite._cache:
            from evolve.config import SandboxConfig
            from evolve.evaluation.sandboxing import make_sandbox
            from evolve.problems import load_evaluator, read_initial_program, resolve

            if cls.problem is None:
                raise AssertionError(f"{cls.__name__}.problem is not set: a problem folder or name")
            config = resolve(cls.problem)
            ContractSuite._cache[key] = (config, load_evaluator(config, run_seed=cls.run_seed),
                                         make_sandbox(SandboxConfig(), config), read_initial_program(config))
        return ContractSuite._cache[key]

    def score(self, code: str, limits=None, evaluator=None):
        from evaluators import evaluate_program

        config, built, sandbox, _ = self._parts()
        return evaluate_program(evaluator or built, sandbox, code, limits or config.limits, config.stage_limits)

    def bad(self, body: str) -> str:
        _, evaluator, _, initial = self._parts()
        return bad_candidate(initial, evaluator.entrypoint, body)

    @classmethod
    def main(cls) -> int:
        """Run every check without pytest, print one line each; return 0 when all pass, else 1."""
        names = sorted(n for n in dir(cls) if n.startswith("test_") and callable(getattr(cls, n)))
        failed = 0
        for name in names:
            try:
                getattr(cls(), name)()
            except AssertionError as exc:
                failed += 1
                print(f"FAILED {name}: {' '.join(str(exc).split())[:1000]}")
            else:
                print(f"passed {name}")
        print(f"{len(names) - failed} passed, {failed} failed")
        return 1 if failed else 0

    # -- the contract -----------------------------------------------------------------------------
    def test_preflight(self):
        from evolve.engine.preflight import preflight

        config = self._parts()[0]
        report = preflight(config)
        assert report.ok, "\n".join(report.failures)

    def test_initial_program_is_valid(self):
        result = self.score(self._parts()[3])
        assert result.valid, f"the initial program is invalid at stage {result.stage}: {result.feedback}"
        assert not result.evaluator_error

    def test_deterministic(self):
        from evolve.engine.preflight import nondeterminism
        from evolve.problems import load_evaluator

        config, evaluator, _, initial = self._parts()
        first = self.score(initial)
        second = self.score(initial, evaluator=load_evaluator(config, run_seed=self.run_seed))  # a fresh instance
        failure = nondeterminism(config, first, second, evaluator.timing_metrics)
        if failure:
            raise AssertionError(failure)

    def test_raising_candidate_is_rejected(self):
        result = self.score(self.bad(RAISING))
        assert not result.valid and not result.evaluator_error, result.feedback
        assert "contract: this candidate raises on purpose" in result.feedback, \
            f"the reason should name the candidate's exception; got: {result.feedback}"

    def test_garbage_is_rejected_with_a_reason(self):
        result = self.score(self.bad(GARBAGE))
        assert not result.evaluator_error, f"the evaluator crashed on a garbage reply: {result.feedback}"
        assert not result.valid, "a candidate returning garbage was scored as valid"
        assert result.feedback.strip(), "an invalid score needs a reason (Score.invalid(reason))"

    def test_hanging_candidate_is_killed(self):
        config = self._parts()[0]
        seconds = min(config.limits.wall_seconds, self.hang_seconds)
        limits = dataclasses.replace(config.limits, wall_seconds=seconds,
                                     call_timeout=min(config.limits.call_timeout, seconds))
        result = self.score(self.bad(HANGING), limits)
        assert not result.valid and not result.evaluator_error, result.feedback
        assert any(word in result.feedback for word in ("timed out", "killed", "budget", "slow")), \
            f"a hanging candidate should be stopped by a limit; got: {result.feedback}"
