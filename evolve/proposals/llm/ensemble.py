"""Several models behind one proposer: a model per proposal, by weight or by what has paid off.

`selection: fixed` draws by weight. `ucb` and `thompson` treat each model as a bandit arm whose payoff
is the chance that its edit improves on the parent, divided by what a call costs (plus `cost_floor`,
so that a free model that never helps does not win by default). A model that fails `rest_after` times
in a row is rested for `rest_seconds` (doubling each time, at most `max_rest_seconds`) while the others
carry on, with a warning that names its last error. When every model has been resting or failing for
`max_wait_seconds` with no proposal in between, `propose` raises `ModelsResting`: the campaign stops.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from evolve.errors import ModelsResting, ProposerError
from evolve.proposals.llm.base import Prompt, PromptTooLarge, Proposal, Proposer

__all__ = ["ArmStats", "Ensemble"]

_log = logging.getLogger(__name__)


@dataclass
class ArmStats:
    """What one model has done so far in this campaign."""

    weight: float = 1.0
    calls: int = 0
    failures: int = 0
    outcomes: int = 0
    improvements: int = 0
    cost: float = 0.0
    consecutive_failures: int = 0
    rests: int = 0
    rested_until: float = 0.0
    last_error: str = ""

    @property
    def cost_per_call(self) -> float:
        """Mean USD per successful call."""
        return self.cost / self.calls if self.calls else 0.0


class Ensemble(Proposer):
    """Chooses one of `models` per proposal and learns from `observe(proposal, improved)`.

    Safe for concurrent `propose` calls on one event loop; each model has its own concurrency limit.
    """

    name = "ensemble"

    def __init__(self, models: Sequence[Proposer], weights: Sequence[float] | None = None,
                 concurrency: Sequence[int] | None = None, selection: str = "thompson", exploration: float = 1.0,
                 rest_after: int = 3, rest_seconds: float = 30.0, max_rest_seconds: float = 300.0,
                 max_wait_seconds: float = 600.0, cost_floor: float = 1e-4, seed: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if selection not in ("fixed", "ucb", "thompson"):
            raise ValueError(f"llm.selection={selection!r}: use fixed, ucb or thompson")
        if not models:
            raise ValueError("an ensemble needs at least one model (llm.models)")
        self.models = {m.name: m for m in models}
        if len(self.models) != len(models):
            raise ValueError("two models of the ensemble share a name; give them distinct `name`s")
        weights = list(weights or [1.0] * len(models))
        self.stats = {m.name: ArmStats(weight=w) for m, w in zip(models, weights)}
        self._slots = {m.name: asyncio.Semaphore(c) for m, c in zip(models, concurrency or [4] * len(models))}
        self.selection, self.exploration = selection, exploration
        self.rest_after, self.rest_seconds, self.cost_floor = rest_after, rest_seconds, cost_floor
        self.max_rest_seconds, self.max_wait_seconds = max_rest_seconds, max_wait_seconds
        self._stalled_since: float | None = None  # every model resting, and no proposal since
        self._rng = random.Random(seed)
        self._clock = clock

    def _value(self, name: str, total: int) -> tuple[float, str]:
        s = self.stats[name]
        price = s.cost_per_call + self.cost_floor
        if self.selection == "ucb":
            if s.outcomes == 0:
                return math.inf, "untried"
            rate = s.improvements / s.outcomes
            bonus = self.exploration * math.sqrt(math.log(max(total, 1)) / s.outcomes)
            return (rate + bonus) / price, f"rate {rate:.2f}+{bonus:.2f} / ${price:.5f}"
        p = self._rng.betavariate(s.improvements + s.weight, s.outcomes - s.improvements + 1)
        return p / price, f"sampled p={p:.2f} / ${price:.5f}"

    def choose(self) -> tuple[str, str]:
        """The model for the next proposal, and why (a line kept with the program)."""
        now = self._clock()
        awake = [n for n, s in self.stats.items() if s.rested_until <= now]
        if not awake:
            raise LookupError(min(s.rested_until for s in self.stats.values()) - now)
        if self.selection == "fixed" or len(awake) == 1:
            name = self._rng.choices(awake, weights=[self.stats[n].weight for n in awake])[0]
            return name, f"{self.selection}: weight {self.stats[name].weight:g} of {len(awake)} awake"
        total = sum(s.outcomes for s in self.stats.values())
        scored = {n: self._value(n, total) for n in awake}
        name = max(scored, key=lambda n: scored[n][0])
        others = ", ".join(f"{n} {v:.3g}" for n, (v, _) in scored.items() if n != name)
        return name, f"{self.selection}: {scored[name][1]} -> {scored[name][0]:.3g}/$ (vs {others})"

    async def propose(self, prompt: Prompt) -> Proposal:
        """Ask the chosen model; when every model is resting, wait for the first to wake, at most
        `max_wait_seconds` since they all stopped answering (then raise `ModelsResting`)."""
        return await self.propose_built(lambda budget: prompt)

    async def propose_built(self, build: Callable[[int | None], Prompt]) -> Proposal:
        """As `propose`, with the prompt built by `build(budget)` only once the chosen model has a free
        slot: `budget` is the model's `context_tokens` minus its `max_tokens` (None when unknown). A
        prompt that cannot fit (`PromptTooLarge`) is never sent and does not count against the model."""
        while True:
            try:
                name, reason = self.choose()
                break
            except LookupError as wait:
                now = self._clock()
                if self._stalled_since is None:
                    self._stalled_since = now
                    _log.warning("every model is resting; waiting up to %g s (llm.max_wait_seconds) for one to "
                                 "answer again", self.max_wait_seconds)
                left = self._stalled_since + self.max_wait_seconds - now
                if left <= 0:
                    raise ModelsResting(self._resting_message()) from None
                await asyncio.sleep(max(0.01, min(float(wait.args[0]), left)))
        stats = self.stats[name]
        try:
            async with self._slots[name]:
                try:
                    prompt = build(self.models[name].prompt_budget)
                except PromptTooLarge as exc:
                    raise PromptTooLarge(f"{name}: {exc}", name) from None
                proposal = await self.models[name].propose(prompt)
        except PromptTooLarge:
            raise
        except ProposerError as exc:
            stats.failures += 1
            stats.consecutive_failures += 1
            stats.last_error = str(exc)
            if stats.consecutive_failures >= self.rest_after:
                stats.rests += 1
                rest = min(self.max_rest_seconds, self.rest_seconds * 2.0 ** min(stats.rests - 1, 60))
                stats.rested_until = self._clock() + rest
                stats.consecutive_failures = 0
                _log.warning("model %s is resting %g s after %d failure%s in a row (last error: %s)", name, rest,
                             self.rest_after, "s" if self.rest_after != 1 else "", " ".join(str(exc).split())[:300])
            raise
        stats.calls += 1
        stats.cost += proposal.cost
        stats.consecutive_failures = 0
        self._stalled_since = None
        return replace(proposal, model=name, reason=reason)

    def _resting_message(self) -> str:
        errors = "; ".join(f"{n}: {' '.join(s.last_error.removeprefix(f'{n}: ').split())[:200] or 'no error'}"
                           for n, s in self.stats.items())
        return (f"every model has been resting or failing for {self.max_wait_seconds:g} s "
                f"(llm.max_wait_seconds); last errors: {errors}; fix the endpoint (llm.base_url, llm.model, "
                f"the key) and resume the run")

    def observe(self, proposal: Proposal, improved: bool) -> None:
        """Credit the model that wrote `proposal` with whether its child beat the parent."""
        stats = self.stats.get(proposal.model)
        if stats is not None:
            stats.outcomes += 1
            stats.improvements += bool(improved)

    async def close(self) -> None:
        """Close every model's client."""
        for model in self.models.values():
            await model.close()
