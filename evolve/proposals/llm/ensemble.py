"""Several models behind one proposer: a model per proposal, by weight or by what has paid off.

`selection: fixed` draws by weight. `ucb` and `thompson` treat each model as a bandit arm whose payoff
is the chance that its edit improves on the parent, divided by what a call costs (plus `cost_floor`,
so that a free model that never helps does not win by default). `selection: tiers` (`llm=tiers`) takes the
models as ordered from cheap to strong: it asks the current tier (the cheapest at first), moves one tier up
after `escalate_after` of its proposals in a row brought no new best program of the campaign, and one tier
down after each new best (`observe_best`); a resting tier is skipped for the nearest awake one, stronger
first. A model that fails `rest_after` times
in a row is rested for `rest_seconds` (doubling each time, at most `max_rest_seconds`) while the others
carry on. A model in trouble is named once per outage, with its endpoint and the cause: a warning at its
first failure, or when a request has waited `warn_after_seconds` with no answer from it (a hung endpoint
fails only at its timeout); one line follows when it answers again. When every model has been failing
for `max_wait_seconds` (counted from the first request that failed, with no answer since), `propose`
raises `ModelsResting`: the campaign stops.
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
    failing_since: float | None = None  # when the first request that failed since the last answer was sent
    failed_in_a_row: int = 0  # failed requests since the last answer (rests do not reset it)
    answered_at: float | None = None
    slowest: float = 0.0  # seconds of the slowest answer so far
    named_since: float | None = None  # named on the terminal as failing or silent since then (None: not named)

    @property
    def cost_per_call(self) -> float:
        """Mean USD per successful call."""
        return self.cost / self.calls if self.calls else 0.0


def _endpoint(model: Proposer) -> str:
    """`model at URL`, or the model's name alone when it has no endpoint."""
    endpoint = getattr(model, "endpoint", "")
    return f"{model.name} at {endpoint}" if endpoint else model.name


def _timeout(model: Proposer) -> str:
    """`; the request fails after N s (llm.timeout)`, or nothing when the model has no timeout."""
    timeout = getattr(getattr(model, "config", None), "timeout", None)
    return f"; the request fails after {timeout:g} s (llm.timeout)" if timeout else ""


class Ensemble(Proposer):
    """Chooses one of `models` per proposal and learns from `observe(proposal, improved)`.

    Safe for concurrent `propose` calls on one event loop; each model has its own concurrency limit.
    """

    name = "ensemble"

    def __init__(self, models: Sequence[Proposer], weights: Sequence[float] | None = None,
                 concurrency: Sequence[int] | None = None, selection: str = "thompson", exploration: float = 1.0,
                 rest_after: int = 3, rest_seconds: float = 30.0, max_rest_seconds: float = 300.0,
                 max_wait_seconds: float = 120.0, warn_after_seconds: float = 45.0, cost_floor: float = 1e-4,
                 escalate_after: int = 10, seed: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if selection not in ("fixed", "ucb", "thompson", "tiers"):
            raise ValueError(f"llm.selection={selection!r}: use fixed, ucb, thompson or tiers")
        if escalate_after < 1:
            raise ValueError(f"llm.escalate_after={escalate_after}: must be at least 1 (proposals without a new best)")
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
        self.warn_after_seconds = warn_after_seconds
        self.escalate_after = escalate_after
        self.tier = 0  # `selection: tiers`: the index in `models` of the model asked now
        self.without_best = 0  # the current tier's proposals observed since it was entered or made a new best
        self._told_all_failing = False  # "every model is failing" was said, and none has answered since
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
        if self.selection == "tiers":
            return self._choose_tier(awake)
        if self.selection == "fixed" or len(awake) == 1:
            name = self._rng.choices(awake, weights=[self.stats[n].weight for n in awake])[0]
            return name, f"{self.selection}: weight {self.stats[name].weight:g} of {len(awake)} awake"
        total = sum(s.outcomes for s in self.stats.values())
        scored = {n: self._value(n, total) for n in awake}
        name = max(scored, key=lambda n: scored[n][0])
        others = ", ".join(f"{n} {v:.3g}" for n, (v, _) in scored.items() if n != name)
        return name, f"{self.selection}: {scored[name][1]} -> {scored[name][0]:.3g}/$ (vs {others})"

    def _choose_tier(self, awake: list[str]) -> tuple[str, str]:
        """The current tier's model (escalating first when it is due), or the nearest awake one, stronger first."""
        names = list(self.stats)
        if self.without_best >= self.escalate_after and self.tier < len(names) - 1:
            self.tier += 1
            _log.info("tiers: %d proposals of %s without a new best; escalating to %s", self.without_best,
                      names[self.tier - 1], names[self.tier])
            self.without_best = 0
        order = names[self.tier:] + names[:self.tier][::-1]
        name = next(n for n in order if n in awake)
        why = "" if name == names[self.tier] else f" ({names[self.tier]} is resting)"
        return name, (f"tiers: tier {names.index(name) + 1} of {len(names)}{why}, "
                      f"{self.without_best} of {self.escalate_after} proposals without a new best")

    async def propose(self, prompt: Prompt) -> Proposal:
        """Ask the chosen model; when every model is resting, wait for the first to wake; raise `ModelsResting`
        once every model has been failing for `max_wait_seconds`."""
        return await self.propose_built(lambda budget, counter=None, edit_format="auto": prompt)

    async def propose_built(self, build: Callable[..., Prompt]) -> Proposal:
        """As `propose`, with the prompt built by `build(budget, counter)` only once the chosen model has a
        free slot: `budget` is the model's `context_tokens` minus its `max_tokens` (None when unknown), in
        the tokens its `token_counter` counts (and the model's `edit_format` third, unless it is `auto`). A
        prompt that cannot fit (`PromptTooLarge`) is never sent and does not count against the model."""
        while True:
            now, deadline = self._clock(), self._deadline()
            if deadline is not None and now >= deadline:
                raise ModelsResting(self._resting_message())
            try:
                name, reason = self.choose()
                break
            except LookupError as wait:
                pause = float(wait.args[0]) if deadline is None else min(float(wait.args[0]), deadline - now)
                await asyncio.sleep(max(0.01, pause))
        model, stats = self.models[name], self.stats[name]
        sent = self._clock()
        try:
            async with self._slots[name]:
                try:
                    prompt = await model.build_prompt(build)
                except PromptTooLarge as exc:
                    raise PromptTooLarge(f"{name}: {exc}", name) from None
                sent, answers, after = self._clock(), stats.calls, max(self.warn_after_seconds, 1.5 * stats.slowest)
                watch = asyncio.get_running_loop().call_later(after, self._silent, name, sent, answers, after)
                try:
                    proposal = await model.propose(prompt)
                finally:
                    watch.cancel()
        except PromptTooLarge:
            raise
        except ProposerError as exc:
            self._failed(name, exc, sent)
            raise
        self._answered(name, sent)
        stats.cost += proposal.cost
        return replace(proposal, model=name, reason=reason)

    def _deadline(self) -> float | None:
        """When to give up: `max_wait_seconds` after every model was failing (None: one is not failing)."""
        since = [s.failing_since for s in self.stats.values()]
        return None if None in since else max(since) + self.max_wait_seconds

    def _silent(self, name: str, sent: float, answers: int, after: float) -> None:
        """Name a model that has not answered in `after` seconds since a request was sent (once per outage)."""
        stats = self.stats[name]
        if stats.calls == answers and stats.named_since is None:
            stats.named_since = sent
            _log.warning("model %s has not answered in %g s (hung or overloaded?)%s", _endpoint(self.models[name]),
                         round(after, 1), _timeout(self.models[name]))

    def _failed(self, name: str, exc: ProposerError, sent: float) -> None:
        """Count a failure; name the model at the first of an outage, rest it after `rest_after` in a row."""
        stats = self.stats[name]
        stats.failures += 1
        stats.consecutive_failures += 1
        stats.failed_in_a_row += 1
        stats.last_error = str(exc)
        if stats.failing_since is None:
            stats.failing_since = sent if stats.answered_at is None else max(sent, stats.answered_at)
        named = stats.named_since is None
        if named:
            stats.named_since = stats.failing_since
        if stats.consecutive_failures >= self.rest_after:
            stats.rests += 1
            rest = min(self.max_rest_seconds, self.rest_seconds * 2.0 ** min(stats.rests - 1, 60))
            stats.rested_until = self._clock() + rest
            stats.consecutive_failures = 0
            _log.info("model %s is resting %g s after %d failure%s in a row (last error: %s)", name, rest,
                      self.rest_after, "s" if self.rest_after != 1 else "", " ".join(str(exc).split())[:300])
        deadline, clock = self._deadline(), ""
        if deadline is not None and not self._told_all_failing:
            self._told_all_failing = True
            left = math.ceil(deadline - self._clock())
            if left > 0:  # (a deadline already passed is said by the next proposal's error)
                clock = (f"; {'every model is failing: ' if len(self.stats) > 1 else ''}the campaign stops in {left} s "
                         f"(llm.max_wait_seconds={self.max_wait_seconds:g}) unless "
                         f"{'one' if len(self.stats) > 1 else 'it'} answers")
        if named or clock:
            _log.warning("model %s is failing: %s%s", _endpoint(self.models[name]),
                         " ".join(str(exc).removeprefix(f"{name}: ").split())[:300], clock)

    def _answered(self, name: str, sent: float) -> None:
        """Count an answer; say so when the model had been named as failing or silent."""
        stats, now = self.stats[name], self._clock()
        if stats.named_since is not None:
            if stats.calls == 0 and not stats.failures:
                _log.info("model %s answered after %.0f s: slow, not hung (raise llm.timeout if answers may take "
                          "longer)", _endpoint(self.models[name]), now - sent, extra={"terminal": True})
            else:
                _log.info("model %s answers again, %.0f s after it stopped (%d failed request%s)",
                          _endpoint(self.models[name]), now - stats.named_since, stats.failed_in_a_row,
                          "" if stats.failed_in_a_row == 1 else "s", extra={"terminal": True})
        stats.calls += 1
        stats.consecutive_failures = stats.failed_in_a_row = 0
        stats.slowest = max(stats.slowest, now - sent)
        stats.answered_at, stats.rested_until = now, 0.0
        stats.failing_since = stats.named_since = None
        self._told_all_failing = False

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
        if self.selection == "tiers" and proposal.model == list(self.stats)[self.tier]:
            self.without_best += 1

    def observe_best(self, proposal: Proposal) -> None:
        """Under `selection: tiers`, step one tier down: the child of `proposal` is the campaign's new best."""
        if self.selection != "tiers" or proposal.model not in self.stats:
            return
        names = list(self.stats)
        if self.tier > 0:
            _log.info("tiers: %s made a new best; stepping down from %s to %s", proposal.model, names[self.tier],
                      names[self.tier - 1])
            self.tier -= 1
        self.without_best = 0

    async def close(self) -> None:
        """Close every model's client."""
        for model in self.models.values():
            await model.close()
