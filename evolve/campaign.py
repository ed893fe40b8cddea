"""The campaign controller: the one loop of evolve, with N proposals in flight and no generation barrier.

    parent, inspirations = database.sample(island)
    prompt   = prompts.build(parent, inspirations, recent failures)
    proposal = await proposer.propose(prompt)                 (at most llm.concurrency at once)
    child    = edits.apply_proposal(parent.code, proposal.text)
    result   = await pool.evaluate(child)                     (one Ray actor per evaluation)
    database.add(child, result)                               (committed at once)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import random
import os
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf
from rich.console import Console

from evolve.config import Config
from evolve.database import ProgramDatabase
from evolve.edits import apply_proposal, normalized_hash
from evolve.errors import EditError, EvolveError, InitialProgramError, ProposerError
from evolve.llm import Proposer, ReplayProposer, make_proposer
from evolve.llm.openai_model import api_key
from evolve.novelty import canonical_hash, canonical_tokens, similarity
from evolve.problems import evaluator_class, read_initial_program
from evolve.program import Program, ProgramStatus
from evolve.progress import ProgressDisplay, Stats
from evolve.prompts import PromptBuilder
from evolve.report import write_report
from evolve.scratchpad import Scratchpad
from evolve.workers import EvaluationPool, connect

__all__ = ["Campaign", "CampaignResult", "database_url"]

_log = logging.getLogger("evolve.campaign")
_DRAINING = ("budget.iterations", "budget.max_cost_usd")  # stops that let paid-for work in flight finish


@dataclass(frozen=True)
class CampaignResult:
    """What one invocation of a campaign did.

    Attributes:
        run_dir: where its outputs are.
        iterations: iterations committed in the whole campaign (this and earlier invocations).
        evaluated: programs evaluated by this invocation.
        valid: of those, how many were valid.
        initial_score: the initial program's score.
        best_score: the best score in the whole campaign.
        seconds: wall time of this invocation.
        stop_reason: which condition ended it.
    """

    run_dir: Path
    iterations: int
    evaluated: int
    valid: int
    initial_score: float | None
    best_score: float | None
    seconds: float
    stop_reason: str

    @property
    def evals_per_second(self) -> float:
        """Evaluations per second of this invocation."""
        return self.evaluated / self.seconds if self.seconds > 0 else 0.0


def database_url(config: Config, run_dir: Path) -> str:
    """The database URL of a run: `database.url`, or `programs.db` in the run dir."""
    return config.database.url or f"sqlite:///{(run_dir / 'programs.db').resolve()}"


class Campaign:
    """Runs (or resumes) one campaign in `run_dir`.

    Parts are injected for tests and embedding: `proposer` (any `Proposer`), `pool` (an
    `EvaluationPool`), `database` (a `ProgramDatabase`); each defaults to what the config names.
    """

    def __init__(self, config: Config, run_dir: str | Path, *, proposer: Proposer | None = None,
                 pool: EvaluationPool | None = None, database: ProgramDatabase | None = None,
                 console: Console | None = None) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.name = config.name or f"{config.problem.name}/{self.run_dir.name}"
        self._proposer = proposer
        self._pool = pool
        self._db = database
        self._console = console
        self._stats = Stats()

    # -- set-up -----------------------------------------------------------------------------------
    def _open(self) -> None:
        cfg = self.config
        if self._proposer is None and cfg.llm.kind in ("openai", "ensemble"):
            for model in cfg.llm.model_configs():  # a missing key fails here, before anything starts
                api_key(model)
        path = self.run_dir / "config.yaml"
        if not path.exists():  # the run dir is the campaign's record: resume and replay read it
            named = dataclasses.replace(cfg, name=self.name)
            path.write_text(OmegaConf.to_yaml(OmegaConf.structured(named)))
        if self._db is None:
            self._db = ProgramDatabase(database_url(cfg, self.run_dir), self.name, cfg.problem.name,
                                       cfg.database, cfg.problem.features, seed=cfg.seed)
        if self._proposer is None:
            # reseed from the history length so a resumed campaign does not replay the same mutations
            self._proposer = make_proposer(cfg.llm, seed=cfg.seed * 1_000_003 + self._db.size)
        if self._pool is None:
            connect(cfg.ray)
            self._pool = EvaluationPool(cfg.problem, cfg.sandbox, cfg.ray.num_workers)
            self._owns_pool = True
        readme = Path(cfg.problem.directory) / cfg.problem.readme
        description = readme.read_text() if readme.is_file() else cfg.problem.description
        self._prompts = PromptBuilder(description, evaluator_class(cfg.problem).entrypoint, cfg.prompt)

    async def _report_layers(self) -> None:
        """The sandbox's self-test: log every layer, warn loudly about the ones that are not active."""
        ready = getattr(self._pool, "ready", None)
        if ready is not None:
            await ready()  # a bad problem param or sandbox setting: one line, before any evaluation
        layers_of = getattr(self._pool, "layers", None)
        if layers_of is None:
            return
        for name, state in (await layers_of()).items():
            if "NOT" in state:
                _log.warning("sandbox layer %s is not active: %s", name, state)
            else:
                _log.info("sandbox layer %s: %s", name, state)

    async def _evaluate_initial(self) -> Program:
        db = self._db
        if db.initial() is not None:
            return db.initial()
        code = read_initial_program(self.config.problem)
        result = await self._pool.evaluate(code)
        status = ProgramStatus.VALID if result.valid else ProgramStatus.INVALID
        program = db.add(iteration=0, status=status, code=code, code_hash=normalized_hash(code),
                         canonical_hash=canonical_hash(code),
                         score=result.score, metrics=result.metrics, features=result.features,
                         feedback=result.feedback, error="" if result.valid else result.feedback,
                         proposer="initial", eval_seconds=result.seconds)
        if not result.valid:
            reason = " ".join(result.feedback.split())[:300]
            raise InitialProgramError(f"the initial program of problem {self.config.problem.name!r} is invalid: "
                                      f"{reason}")
        _log.info("initial program scored %.6g", program.score)
        self._write_best(program)
        return program

    def _write_best(self, program: Program) -> None:
        path = self.run_dir / "best.py"
        tmp = path.with_suffix(".py.tmp")
        tmp.write_text(program.code)
        os.replace(tmp, path)

    # -- one iteration ----------------------------------------------------------------------------
    async def _iteration(self, iteration: int, island: int) -> Program:
        db = self._db
        async with self._turn(iteration):  # replay: decide in the recorded order; otherwise no wait
            if self._replay is not None:
                parent, inspirations = await self._recorded_parents(iteration)
            else:
                parent, inspirations = db.sample(island)
            mode, second = self._mode(iteration, island)
            prompt = self._prompts.build(parent, inspirations, db.recent_failures(), iteration, mode, second,
                                         self._scratchpad.text)
            common = dict(iteration=iteration, parent=parent, island=island, mode=prompt.mode)
            asked = dict(iteration=iteration, parent_hash=parent.code_hash, messages=prompt.messages,
                         inspiration_hashes=[p.code_hash for p in inspirations])
            started = time.perf_counter()
            try:
                async with self._llm_slots:
                    proposal = await self._proposer.propose(prompt)
            except ProposerError as exc:
                seconds = time.perf_counter() - started
                self._consecutive_failures += 1
                self._last_proposer_error = str(exc)
                model = exc.model or getattr(self._proposer, "name", "")
                db.record_call(model=model, error=str(exc), seconds=seconds, **asked)
                return db.add(status=ProgramStatus.PROPOSAL_FAILED, code=parent.code, code_hash=parent.code_hash,
                              error=str(exc), proposer=model, propose_seconds=seconds, **common)
            self._consecutive_failures = 0
            propose_seconds = time.perf_counter() - started
            db.record_call(model=proposal.model, response=proposal.text, prompt_tokens=proposal.prompt_tokens,
                           completion_tokens=proposal.completion_tokens, cost=proposal.cost,
                           seconds=propose_seconds, **asked)
            meta = dict(proposer=proposal.model, proposal=proposal.text, propose_seconds=propose_seconds,
                        prompt_tokens=proposal.prompt_tokens, completion_tokens=proposal.completion_tokens,
                        cost=proposal.cost, choice=proposal.reason, **common)
            try:
                child = apply_proposal(parent.code, proposal.text)
            except EditError as exc:
                cut = " (the reply was cut off at max_tokens: ask for smaller edits)" if proposal.truncated else ""
                self._observe(proposal, False)
                return db.add(status=ProgramStatus.EDIT_FAILED, code=parent.code, code_hash=parent.code_hash,
                              error=f"{exc}{cut}", **meta)
            code_hash = normalized_hash(child)
            twin = db.seen(code_hash)
            if twin is not None or code_hash in self._pending:
                self._observe(proposal, False)
                return db.add(status=ProgramStatus.DUPLICATE, code=child, code_hash=code_hash,
                              error=f"same code as program {twin.id}" if twin else "same code as a program in flight",
                              **meta)
            tokens = canonical_tokens(child)
            canonical = canonical_hash(tokens)
            near = self._near_duplicate(tokens, canonical, parent, inspirations)
            if near:
                self._observe(proposal, False)
                return db.add(status=ProgramStatus.SIMILAR, code=child, code_hash=code_hash,
                              canonical_hash=canonical, error=near, **meta)
            self._pending |= {code_hash, canonical}
        try:
            result = await self._pool.evaluate(child)
        finally:
            self._pending -= {code_hash, canonical}
        status = ProgramStatus.VALID if result.valid else ProgramStatus.INVALID
        self._observe(proposal, result.valid and result.score > parent.score)
        return db.add(status=status, code=child, code_hash=code_hash, score=result.score,
                      metrics=result.metrics, features=result.features, feedback=result.feedback,
                      error="" if result.valid else result.feedback, eval_seconds=result.seconds,
                      canonical_hash=canonical, **meta)

    def _mode(self, iteration: int, island: int) -> tuple[str, Program | None]:
        """What to ask for, drawn per iteration with `prompt.diff/full/crossover` as probabilities."""
        cfg = self.config.prompt
        weights = {"diff": cfg.diff, "full": cfg.full, "crossover": cfg.crossover}
        rng = random.Random(self.config.seed * 7919 + iteration)
        mode = rng.choices(list(weights), weights=list(weights.values()))[0] if sum(weights.values()) > 0 else "diff"
        if mode != "crossover" or self._replay is not None:
            return mode, None
        other = self._db.islands[(island + 1) % len(self._db.islands)]
        return mode, self._db.get(other.top[0][1]) if other.top else None

    # -- replay -------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _turn(self, iteration: int):
        """In replay, let iterations decide (propose, apply, dedup) one at a time in the recorded order."""
        if self._replay is None:
            yield
            return
        async with self._turns:
            await self._turns.wait_for(lambda: self._order[self._position] == iteration)
        try:
            yield
        finally:
            async with self._turns:
                self._position += 1
                self._turns.notify_all()

    async def _recorded_parents(self, iteration: int) -> tuple[Program, list[Program]]:
        """The parent and inspirations the recorded iteration used, once they are committed here too."""
        step = self._replay.step(iteration)
        found = []
        for code_hash in (step.parent_hash, *step.inspiration_hashes):
            waited = 0.0
            while (program := self._db.seen(code_hash)) is None:
                if waited > 2 * self.config.problem.limits.wall_seconds + 60:
                    raise EvolveError(f"replay diverged at iteration {iteration}: its recorded parent or "
                                      "inspiration was never produced (is the evaluator deterministic?)")
                await asyncio.sleep(0.02)
                waited += 0.02
            found.append(program)
        return found[0], found[1:]

    def _near_duplicate(self, tokens: tuple[str, ...], canonical: str, parent: Program,
                        inspirations: list[Program]) -> str:
        """Why the child is too close to a known program, or "" when it is new enough."""
        twin = self._db.seen_canonical(canonical)
        if twin is not None:
            return f"same program as {twin.id} up to names, comments and docstrings"
        if canonical in self._pending:
            return "same program as one in flight up to names, comments and docstrings"
        threshold = self.config.novelty.threshold
        if threshold < 1.0:
            for other in (parent, *inspirations):
                if other.id not in self._tokens:
                    if len(self._tokens) > 4096:
                        self._tokens.clear()
                    self._tokens[other.id] = canonical_tokens(other.code)
                score = similarity(tokens, self._tokens[other.id])
                if score >= threshold:
                    return (f"near-duplicate of program {other.id} (similarity {score:.4f} >= "
                            f"novelty.threshold={threshold:g})")
        return ""

    def _observe(self, proposal, improved: bool) -> None:
        observe = getattr(self._proposer, "observe", None)
        if observe is not None:
            observe(proposal, improved)

    # -- held-out validation -----------------------------------------------------------------------
    def _schedule_validation(self, program: Program) -> None:
        """Score a new best on the validation data in the background (never shown in prompts)."""
        if program.validation is None:
            self._validations.add(asyncio.create_task(self._validate(program)))

    async def _validate(self, program: Program) -> None:
        result = await self._pool.validate(program.code)
        if result is None:
            return
        self._db.set_validation(program.id, {"valid": result.valid, "score": result.score,
                                             "metrics": result.metrics, "feedback": result.feedback})
        _log.info("validation of program %d (train %.6g): %s", program.id, program.score,
                  f"{result.score:.6g}" if result.valid else f"invalid: {result.feedback[:200]}")

    # -- the loop ---------------------------------------------------------------------------------
    def _record(self, program: Program) -> None:
        self._scratchpad.observe(program, self._db.get(program.parent_id) if program.parent_id else None)
        every = self.config.prompt.scratchpad_interval
        if every and self._done() % every == 0:
            self._scratchpad.render()
        stats = self._stats
        stats.iterations += 1
        if program.status.is_evaluated():
            stats.evaluated += 1
            stats.valid += program.status is ProgramStatus.VALID
        best = self._db.best()
        if best is not None and best.id == program.id:
            _log.info("new best %.6g at iteration %d (program %d, by %s)", program.score, program.iteration,
                      program.id, program.proposer)
            self._write_best(program)
            self._schedule_validation(program)
            self._last_improvement = self._done()
        stats.best = best.score if best else None
        interval = self.config.database.migration_interval
        if interval and self._done() % interval == 0:
            moved = self._db.migrate(program.iteration)
            _log.info("migration after %d iterations: %d programs moved", self._done(), moved)

    def _done(self) -> int:
        return self._db.iterations

    def _stop_reason(self, started: float) -> str | None:
        b, best = self.config.budget, self._db.best()
        if self._done() >= self._iterations_budget:
            return f"budget.iterations={self._iterations_budget} reached"
        if b.wall_seconds is not None and time.monotonic() - started >= b.wall_seconds:
            return f"budget.wall_seconds={b.wall_seconds:g} reached"
        if b.target_score is not None and best is not None and best.score >= b.target_score:
            return f"budget.target_score={b.target_score:g} reached"
        if b.max_cost_usd is not None and self._db.total_cost >= b.max_cost_usd:
            return f"budget.max_cost_usd={b.max_cost_usd:g} reached (spent ${self._db.total_cost:.4f})"
        if b.patience is not None and self._done() - self._last_improvement >= b.patience:
            return f"budget.patience={b.patience}: no improvement in {b.patience} iterations"
        if self._consecutive_failures >= self.config.llm.max_consecutive_failures:
            return "proposer failed"
        return None

    async def arun(self) -> CampaignResult:
        """Run until a budget is reached; every program is committed as soon as it is done."""
        cfg = self.config
        started = time.monotonic()
        self._stats = Stats(started=started)
        self._owns_pool = False
        self._open()
        self._llm_slots = asyncio.Semaphore(max(1, cfg.llm.concurrency))
        self._pending: set[str] = set()
        self._consecutive_failures = 0
        self._last_proposer_error = ""
        self._validations: set[asyncio.Task] = set()
        self._scratchpad = Scratchpad()
        self._tokens: dict[int, tuple[str, ...]] = {}  # canonical tokens of parents and inspirations
        for program in self._db.programs():  # a resumed campaign remembers what worked
            if program.parent_id is not None:
                self._scratchpad.observe(program, self._db.get(program.parent_id))
        self._scratchpad.render()
        self._replay = self._proposer if isinstance(self._proposer, ReplayProposer) else None
        self._iterations_budget = cfg.budget.iterations
        if self._replay is not None:
            recorded = [s.iteration for s in self._replay.steps][: cfg.budget.iterations]
            self._order = [i for i in recorded if not self._db.has_iteration(i)]  # a resumed replay
            self._iterations_budget = self._done() + len(self._order)
            self._position = 0
            self._turns = asyncio.Condition()
        in_flight: set[asyncio.Task] = set()
        try:
            await self._report_layers()
            initial = await self._evaluate_initial()
            self._schedule_validation(self._db.best())
            self._last_improvement = self._done()
            self._stats.best = self._db.best().score
            max_in_flight = cfg.max_in_flight or (self._pool.size + max(1, cfg.llm.concurrency))
            numbers = iter(self._order) if self._replay is not None else itertools.count(
                max(1, self._db.last_iteration + 1))
            show = cfg.progress == "on" or (cfg.progress == "auto" and (self._console or Console()).is_terminal)
            reason = self._stop_reason(started)
            with ProgressDisplay(self._iterations_budget, self._done(), show, self._console) as display:
                while reason is None or (in_flight and reason.startswith(_DRAINING)):
                    while reason is None and len(in_flight) < max_in_flight and \
                            self._done() + len(in_flight) < self._iterations_budget:
                        number = next(numbers)
                        in_flight.add(asyncio.create_task(self._iteration(number, number % cfg.database.islands)))
                    self._stats.in_flight = len(in_flight)
                    finished, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    for task in finished:
                        self._record(task.result())
                    self._stats.in_flight = len(in_flight)
                    display.update(self._stats, self._done())
                    reason = reason or self._stop_reason(started)
            if reason == "proposer failed":
                raise EvolveError(f"stopped after {cfg.llm.max_consecutive_failures} failed proposals in a row; "
                                  f"last error: {self._last_proposer_error} (check llm.base_url, llm.model "
                                  "and the key)")
            _log.info("campaign stopped: %s", reason)
            if self._validations:
                await asyncio.gather(*self._validations)
            write_report(self.run_dir, self._db, cfg)
            best = self._db.best()
            return CampaignResult(
                run_dir=self.run_dir, iterations=self._done(), evaluated=self._stats.evaluated,
                valid=self._stats.valid, initial_score=initial.score, best_score=best.score if best else None,
                seconds=time.monotonic() - started, stop_reason=reason,
            )
        finally:
            pending = in_flight | {t for t in self._validations if not t.done()}
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            if self._owns_pool:
                self._pool.shutdown()
            closer = getattr(self._proposer, "close", None)
            if closer is not None:
                await closer()
            self._db.close()

    def run(self) -> CampaignResult:
        """Synchronous `arun`."""
        return asyncio.run(self.arun())
