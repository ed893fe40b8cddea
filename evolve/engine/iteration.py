"""One iteration, from its parents to its committed row.

    parent, inspirations = schedule.parents(iteration, island)
    once a model slot is free (at most llm.concurrency at once, and each model's own concurrency):
      prompt   = prompts.build(parent, inspirations, recent failures, lineage's attempts, scratchpad)  fitted
                 to its context, counted by its model's token counter
      proposal = await proposer.propose(prompt)               timed from here: no queueing counted
    child    = edits.apply_proposal(parent.code, proposal.text)
    duplicate or near-duplicate?  -> committed as such, never evaluated
    result   = await pool.evaluate(child)                     (one Ray actor per evaluation)
    a would-be best of a noisy problem (`problem.repeats`)?  -> scored k times, ranked on the mean
    database.aadd(child, result)                              (committed at once, off the event loop)
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING, Any

from evolve.config import Config
from evolve.engine.repeats import rescored
from evolve.engine.schedule import Schedule
from evolve.errors import EditError, InitialProgramError, ProposerError
from evolve.population.grid import unseen_features
from evolve.program import Program, ProgramStatus, beats
from evolve.proposals.edits import apply_proposal, normalized_hash, python_tokens
from evolve.proposals.lineage import Lineage
from evolve.proposals.llm import Prompt, Proposal, Proposer
from evolve.proposals.llm.base import PromptTooLarge
from evolve.proposals.novelty import NoveltyFilter, canonical_hash, canonical_tokens
from evolve.proposals.prompts import PromptBuilder
from evolve.proposals.scratchpad import Scratchpad
from evolve.proposals.tokens import TokenCounter
from evolve.storage.database import ProgramDatabase

if TYPE_CHECKING:  # only their types are needed here
    from evaluators.cascade import EvaluationResult
    from evolve.evaluation.pool import Pool

__all__ = ["IterationRunner"]

_log = logging.getLogger("evolve.engine.campaign")


class IterationRunner:
    """Runs iterations: every iteration ends in exactly one committed program, whatever happened.

    Many iterations run at once on one event loop; the proposer is called at most `llm.concurrency`
    times at once, and a child is never evaluated while the same code is already in flight.
    `consecutive_failures` and `last_error` tell the campaign when the proposer keeps failing.
    """

    def __init__(self, config: Config, database: ProgramDatabase, proposer: Proposer, pool: Pool,
                 prompts: PromptBuilder, schedule: Schedule, scratchpad: Scratchpad) -> None:
        self._config = config
        self._db = database
        self._proposer = proposer
        self._pool = pool
        self._prompts = prompts
        self._schedule = schedule
        self._scratchpad = scratchpad
        self._lineage = Lineage(database) if config.prompt.attempts > 0 else None
        self._novelty = NoveltyFilter(database, config.novelty.threshold)
        self._llm_slots = asyncio.Semaphore(max(1, config.llm.concurrency))
        self._in_flight: set[str] = set()  # normalised and canonical hashes of children being evaluated
        self.consecutive_failures = 0
        self.last_error = ""
        self._closed = False
        self._paid = database.total_cost  # USD of every reply so far, committed with its program or not yet

    async def initial(self, code: str) -> Program:
        """Evaluate and commit the initial program (iteration 0); raise when it is invalid."""
        result = await rescored(self._pool, code, await self._pool.evaluate(code), self._config.problem, None)
        status = _status(result)
        program = self._db.add(iteration=0, status=status, code=code, code_hash=normalized_hash(code),
                               canonical_hash=canonical_hash(code), score=result.score, metrics=result.metrics,
                               features=result.features, feedback=result.feedback,
                               error="" if result.valid else result.feedback, proposer="initial",
                               eval_seconds=result.seconds)
        if not result.valid:
            reason = " ".join(result.feedback.split())[:300]
            if result.evaluator_error:
                raise InitialProgramError(f"the evaluator of problem {self._config.problem.name!r} raised on the "
                                          f"initial program: {reason}")
            raise InitialProgramError(f"the initial program of problem {self._config.problem.name!r} is invalid: "
                                      f"{reason}")
        for line in unseen_features(self._config.problem.features, result.features, result.metrics):
            _log.warning("%s", line)
        return program

    def _spent(self) -> bool:
        cap = self._config.budget.max_cost_usd
        return cap is not None and self._paid >= cap

    def close(self) -> None:
        """Send no more proposals: iterations still waiting for a model slot end without a row (None)."""
        self._closed = True

    async def run(self, iteration: int, island: int) -> Program | None:
        """Run one iteration on `island` and return its committed program (None: closed before its
        proposal was sent; nothing was committed)."""
        db = self._db
        async with self._schedule.turn(iteration):
            parent, inspirations = await self._schedule.parents(iteration, island)
            mode, second = self._mode(iteration, island)
            chosen = self._schedule.selection(iteration)
            lineage = self._lineage.attempts(parent, self._config.prompt.attempts) if self._lineage else []
            context: dict[str, Any] = dict(labels=chosen.labels if chosen else None, attempts=lineage,
                                           cell=chosen.cell if chosen else None)
            built: list[Prompt] = []  # the prompt, built once a model can take it (fresh failures, fitted)
            sent: list[float] = []  # when the request left: no time queued for a slot is counted

            def build(budget: int | None, counter: TokenCounter | None = None, edit_format: str = "auto") -> Prompt:
                asked = {"diff": "diff" if mode == "full" else mode, "rewrite": "full"}.get(edit_format, mode)
                built.append(self._prompts.build(parent, inspirations, db.recent_failures(), iteration, asked,
                                                 second, self._scratchpad.text, max_tokens=budget, counter=counter,
                                                 structured=edit_format == "structured", **context))
                sent.append(time.perf_counter())
                if built[-1].trimmed:
                    _log.info("iteration %d: prompt trimmed to ~%d tokens to fit the model's context (%d allowed: "
                              "context_tokens minus max_tokens); left out %s", iteration, built[-1].tokens,
                              budget, ", ".join(built[-1].trimmed))
                return built[-1]

            try:
                async with self._llm_slots:
                    if self._closed or self._spent():  # the spending cap is reached: nothing more is sent
                        return None
                    proposal = await self._proposer.propose_built(build)
            except ProposerError as exc:
                seconds = time.perf_counter() - sent[-1] if sent else 0.0
                prompt = built[-1] if built else self._prompts.build(
                    parent, inspirations, db.recent_failures(), iteration, mode, second, self._scratchpad.text,
                    **context)
                self.consecutive_failures += 1
                self.last_error = str(exc)
                model = exc.model or self._proposer.name
                if isinstance(exc, PromptTooLarge):
                    _log.warning("iteration %d: %s", iteration, " ".join(str(exc).split()))
                db.record_call(model=model, error=str(exc), seconds=seconds, **self._asked(prompt, inspirations))
                return db.add(status=ProgramStatus.PROPOSAL_FAILED, code=parent.code, code_hash=parent.code_hash,
                              error=str(exc), proposer=model, propose_seconds=seconds, iteration=iteration,
                              parent=parent, island=island, mode=prompt.mode)
            self.consecutive_failures = 0
            self._paid += proposal.cost
            propose_seconds = time.perf_counter() - sent[-1]
            prompt = built[-1]
            common: dict[str, Any] = dict(iteration=iteration, parent=parent, island=island, mode=prompt.mode)
            asked = self._asked(prompt, inspirations)
            # the call is committed before its program; a child that fails here is committed at once, on the loop,
            # so that the next prompt (built as soon as this task yields) already shows why it failed
            call = dict(model=proposal.model, response=proposal.text, prompt_tokens=proposal.prompt_tokens,
                        completion_tokens=proposal.completion_tokens, cost=proposal.cost, seconds=propose_seconds,
                        **asked)
            meta: dict[str, Any] = dict(
                proposer=proposal.model, proposal=proposal.text, propose_seconds=propose_seconds,
                prompt_tokens=proposal.prompt_tokens, completion_tokens=proposal.completion_tokens,
                cost=proposal.cost, choice=proposal.reason, **common)
            try:
                child = apply_proposal(parent.code, proposal.text)
            except EditError as exc:
                cut = " (the reply was cut off at max_tokens: ask for smaller edits)" if proposal.truncated else ""
                self._observe(proposal, False)
                db.record_call(**call)
                return db.add(status=ProgramStatus.EDIT_FAILED, code=parent.code, code_hash=parent.code_hash,
                              error=f"{exc}{cut}", **meta)
            parsed = python_tokens(child)
            code_hash = normalized_hash(child, parsed)
            twin = db.seen(code_hash)
            if twin is not None or code_hash in self._in_flight:
                self._observe(proposal, False)
                db.record_call(**call)
                return db.add(status=ProgramStatus.DUPLICATE, code=child, code_hash=code_hash,
                              error=f"same code as program {twin.id}" if twin else "same code as a program in flight",
                              **meta)
            tokens = canonical_tokens(child, parsed)
            canonical = canonical_hash(tokens)
            near = self._novelty.reason(tokens, canonical, parent, inspirations, self._in_flight)
            if near:
                self._observe(proposal, False)
                db.record_call(**call)
                return db.add(status=ProgramStatus.SIMILAR, code=child, code_hash=code_hash,
                              canonical_hash=canonical, error=near, **meta)
            self._in_flight |= {code_hash, canonical}  # until committed: a twin proposed meanwhile is a duplicate
            try:
                await db.arecord_call(**call)  # within the turn: calls are committed in the order they decided
            except BaseException:
                self._in_flight -= {code_hash, canonical}
                raise
        try:
            result = await self._pool.evaluate(child)
            result = await rescored(self._pool, child, result, self._config.problem, db.best())
            status = _status(result)
            self._observe(proposal, result.valid and beats(result.score, parent.score))
            if result.valid and result.score == parent.score:
                self._proposer.observe_unchanged(proposal)
            best = db.best()
            if result.valid and best is not None and beats(result.score, best.score):
                self._proposer.observe_best(proposal)
            return await db.aadd(status=status, code=child, code_hash=code_hash, score=result.score,
                                 metrics=result.metrics, features=result.features, feedback=result.feedback,
                                 error="" if result.valid else result.feedback, eval_seconds=result.seconds,
                                 canonical_hash=canonical, **meta)
        finally:
            self._in_flight -= {code_hash, canonical}

    @staticmethod
    def _asked(prompt: Prompt, inspirations: list[Program]) -> dict:
        """What `record_call` keeps of the request."""
        return dict(iteration=prompt.iteration, parent_hash=prompt.parent.code_hash, messages=prompt.messages,
                    inspiration_hashes=[p.code_hash for p in inspirations])

    def _mode(self, iteration: int, island: int) -> tuple[str, Program | None]:
        """What to ask for, drawn per iteration with `prompt.diff/full/crossover` as probabilities."""
        cfg = self._config.prompt
        weights = {"diff": cfg.diff, "full": cfg.full, "crossover": cfg.crossover}
        rng = random.Random(self._config.seed * 7919 + iteration)
        mode = rng.choices(list(weights), weights=list(weights.values()))[0] if sum(weights.values()) > 0 else "diff"
        return mode, self._schedule.crossover_partner(island) if mode == "crossover" else None

    def _observe(self, proposal: Proposal, improved: bool) -> None:
        self._proposer.observe(proposal, improved)


def _status(result: EvaluationResult) -> ProgramStatus:
    """Valid, invalid (the candidate's fault), or an evaluator error (the trusted evaluator raised)."""
    if result.valid:
        return ProgramStatus.VALID
    return ProgramStatus.EVALUATOR_ERROR if result.evaluator_error else ProgramStatus.INVALID
