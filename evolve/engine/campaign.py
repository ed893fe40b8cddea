"""The campaign controller: the one loop of evolve, with N iterations in flight and no generation barrier.

    set-up     parts (database, proposer, schedule, pool), the initial program, its validation
    loop       keep max_in_flight iterations running; record each as it commits; check the stops
    tear-down  settle or cancel what is in flight, write the report, release the parts

One iteration (`evolve.engine.iteration`) goes from its parents to its committed row; which iteration runs
next, from which parents, is the `Schedule`'s business (`evolve.engine.schedule`, `evolve.engine.replay`). The run
lock (`evolve.storage.lock`) is held from the first step to the last; SIGINT, SIGTERM and SIGHUP cancel what is
in flight and raise `Interrupted` after the tear-down.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from rich.console import Console

from evolve.config import Config
from evolve.engine.cadence import Cadence
from evolve.engine.iteration import IterationRunner
from evolve.engine.observer import CampaignObserver
from evolve.engine.parts import Parts, assemble
from evolve.engine.schedule import Schedule
from evolve.errors import DatabaseCorrupt, DatabaseUnavailable, EvaluatorFailed, EvolveError, Interrupted, RunLocked
from evolve.evaluation.pool import Pool
from evolve.observe import aggregates
from evolve.observe.logs import terminal_quiet
from evolve.observe.metrics import CampaignMetrics, MeteredPool
from evolve.observe.outcomes import UnappliedWatch
from evolve.observe.progress import ProgressDisplay, Stats
from evolve.problems import read_initial_program
from evolve.program import Program, ProgramStatus
from evolve.proposals.llm import Proposer
from evolve.proposals.scratchpad import Scratchpad
from evolve.storage import faults
from evolve.storage.database import ProgramDatabase
from evolve.storage.lock import RunLock
from evolve.storage.rundir import CONFIG, campaign_name, database_url, write_config

__all__ = ["Campaign", "CampaignResult"]

_log = logging.getLogger("evolve.engine.campaign")
_DRAINING = ("budget.iterations", "budget.max_cost_usd")  # stops that let paid-for work in flight finish
_PROPOSER_FAILED = "proposer failed"
_OFFLINE_HINT = ("the offline engine changes only what is inside the EVOLVE-BLOCKs: numbers, operators, comparisons, "
                 "strings, lists, independent statements; widen the blocks, or use a model: llm=openai)")
_EVALUATOR_FAILED = "evaluator failed"
_LOCK_LOST = "run lock lost"
_UNAPPLIED = "proposals not applied"
_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


@dataclass(frozen=True)
class CampaignResult:
    """What one invocation of a campaign did.

    Attributes:
        run_dir: where its outputs are.
        iterations: iterations committed in the whole campaign (this and earlier invocations).
        evaluated: programs evaluated by this invocation.
        valid: of those, how many were valid.
        initial_score: the initial program's score (natural: as the evaluator gave it, even when minimised).
        best_score: the best score in the whole campaign (natural).
        seconds: wall time of this invocation from its first proposal (the budgets' clock).
        stop_reason: which condition ended it.
        evaluator_errors: programs of this invocation on which the trusted evaluator raised.
        setup_seconds: wall time before the first proposal: the evaluation slots, the initial program (Ray
            starts meanwhile, unless `ray.local_start` is off).
    """

    run_dir: Path
    iterations: int
    evaluated: int
    valid: int
    initial_score: float | None
    best_score: float | None
    seconds: float
    stop_reason: str
    evaluator_errors: int = 0
    setup_seconds: float = 0.0
    direction: str = "maximize"

    @property
    def evals_per_second(self) -> float:
        """Evaluations per second of this invocation."""
        return self.evaluated / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Run:
    """The per-invocation state of a campaign, created in one place (`Campaign._start`)."""

    parts: Parts
    iterations: IterationRunner
    scratchpad: Scratchpad
    stats: Stats
    started: float  # set-up's start, then the first proposal's (the budgets' clock)
    lock: RunLock
    in_flight: set[asyncio.Task] = field(default_factory=set)
    validations: set[asyncio.Task] = field(default_factory=set)
    initial: Program | None = None
    last_improvement: int = 0
    setup_seconds: float = 0.0
    evaluator_errors_in_a_row: int = 0
    last_evaluator_error: str = ""
    held_out: bool | None = None  # whether the problem has validation data (None: not asked yet)
    longest_eval: float = 0.0  # seconds of the longest evaluation or validation of this invocation
    unapplied: UnappliedWatch = field(default_factory=lambda: UnappliedWatch(None))
    metrics: CampaignMetrics = field(default_factory=lambda: CampaignMetrics("", "", enabled=False))
    migrations: Cadence = field(default_factory=lambda: Cadence(0))  # the population's, every migration_interval
    rewrites: Cadence = field(default_factory=lambda: Cadence(0))  # the scratchpad's
    checkpoints: Cadence = field(default_factory=lambda: Cadence(0))  # the status tally's

    @property
    def db(self) -> ProgramDatabase:
        return self.parts.database


class Campaign:
    """Runs (or resumes) one campaign in `run_dir`.

    Parts are injected for tests and embedding: `proposer` (any `Proposer`), `pool` (a `Pool`, such
    as an `EvaluationPool`), `database` (a `ProgramDatabase`), `schedule` (a `Schedule`); each defaults to
    what the config names. `lock` is a `RunLock` the caller already holds on `run_dir` (the CLI takes
    it before it checks the run dir); by default the campaign takes its own for its life. `observers`
    (`CampaignObserver`s) are told of the start, each commit and the stop: `report.html` is written by
    one (`evolve.ui.report.ReportWriter`, which `evolve run` and `evolve.run` hand in).
    """

    def __init__(self, config: Config, run_dir: str | Path, *, proposer: Proposer | None = None,
                 pool: Pool | None = None, database: ProgramDatabase | None = None,
                 schedule: Schedule | None = None, console: Console | None = None,
                 lock: RunLock | None = None, observers: Sequence[CampaignObserver] = ()) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.name = campaign_name(config, self.run_dir)
        self._given: dict[str, Any] = dict(proposer=proposer, pool=pool, database=database, schedule=schedule)
        self._console = console
        self._lock = lock
        self._observers = list(observers)
        self._faulted = False  # the database or the disk failed: the tear-down's own failures are expected

    def run(self) -> CampaignResult:
        """Synchronous `arun`."""
        return asyncio.run(self.arun())

    async def arun(self) -> CampaignResult:
        """Run until a budget is reached; every program is committed as soon as it is done.

        Raises `RunLocked` when another live process runs this campaign, and `Interrupted` (after the
        tear-down) on SIGINT, SIGTERM or SIGHUP.
        """
        signals = _Signals(asyncio.current_task())
        signals.install()
        lock: RunLock | None = self._lock
        run: _Run | None = None
        if self._given["proposer"] is None and self.config.llm.kind in ("openai", "ensemble", "tiers"):
            from evolve.proposals.llm.openai_model import import_sdk_in_background

            import_sdk_in_background()  # ~0.6 s, needed at the first request: the checks and set-up go on meanwhile
        if self._display() == "lines":  # without a terminal, the run dir is the first line, before the set-up
            for line in self._header():
                (self._console or Console()).print(line, soft_wrap=True, markup=False, highlight=False)
        try:
            if self._given["pool"] is None:  # a broken problem: one line per failure, before Ray starts
                from evolve.engine.preflight import preflight

                preflight(self.config.problem).raise_for_failures()
            lock = lock or RunLock(self.run_dir).acquire()
            run = self._start(lock)
            signals.install()  # again: Ray's start-up installs a SIGTERM handler of its own
            await self._seed(run)
            reason = await self._loop(run)
            return await self._finish(run, reason)
        except asyncio.CancelledError:
            if signals.received is None:
                raise
            if run is not None:
                run.db.stop_waiting()  # a database that does not answer now is not waited for after a signal
                self._faulted = run.db.unavailable is not None  # and what fails for it then is expected
            done = run.db.iterations if run is not None else 0
            _log.info("interrupted by %s at %d iterations: what was in flight is cancelled, every committed "
                      "program is kept", signals.received.name, done)
            self._record_stop(run, "interrupted", f"interrupted by {signals.received.name} at {done} iterations")
            raise Interrupted(f"interrupted by {signals.received.name}", int(signals.received)) from None
        except Interrupted as exc:  # a signal while Ray started
            _log.info("%s during the set-up", exc)
            self._record_stop(run, "interrupted", f"{exc} during the set-up")
            raise
        except Exception as exc:
            error = faults.translate(exc, faults.label(database_url(self.config, self.run_dir)))
            if error is not None and error is not exc:  # a database fault or a full disk: one line, the trace logged
                _log.info("the campaign's database or disk failed", exc_info=exc, extra={"file_only": True})
            if isinstance(error, (DatabaseUnavailable, DatabaseCorrupt)):
                self._faulted = True  # what fails after it for the same cause is logged, not shown
            one_line = str(error or exc) if isinstance(error or exc, EvolveError) else f"{type(exc).__name__}: {exc}"
            self._record_stop(run, "failed", one_line)
            if error is not None and error is not exc:
                raise error from exc
            raise
        finally:
            signals.remove()  # a second signal during the tear-down acts as it would without evolve
            try:
                if run is not None:
                    await self._tear_down(run)
            finally:
                if self._lock is None and lock is not None:
                    lock.release()

    # -- set-up -----------------------------------------------------------------------------------
    def _start(self, lock: RunLock) -> _Run:
        """The parts and the per-run state; a resumed campaign's scratchpad remembers what worked."""
        started = time.monotonic()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not (self.run_dir / CONFIG).exists():  # the run dir's record: resume and replay read it
            write_config(self.config, self.run_dir)
        parts = assemble(self.config, self.run_dir, lock=lock, **self._given,
                         on_open=lambda db: self._tell(lambda o: o.database(db)))  # the report reads from now
        scratchpad = Scratchpad()
        scratchpad.restore(parts.database)  # from small columns: a resume at 100,000 programs reads no code
        metrics = CampaignMetrics(self.name, self.config.problem.name, self._sign, self.config.ray.metrics)
        iterations = IterationRunner(self.config, parts.database, parts.proposer,
                                     MeteredPool(parts.pool, metrics.evaluation), parts.prompts, parts.schedule,
                                     scratchpad)
        unapplied = UnappliedWatch(self.config.llm.max_unapplied_in_a_row, self.config.llm.on_unapplied)
        done = parts.database.iterations
        run = _Run(parts, iterations, scratchpad, Stats(started=started), started, lock, unapplied=unapplied,
                   metrics=metrics, migrations=Cadence(self.config.database.migration_interval, done),
                   rewrites=Cadence(self.config.prompt.scratchpad_interval, done),
                   checkpoints=Cadence(aggregates.CHECKPOINT_EVERY, done))
        # a private Ray instance starts only for a campaign long enough to repay it
        parts.pool.watch(lambda: self._seconds_left(run))
        return run

    def _seconds_left(self, run: _Run) -> float | None:
        """The progress line's ETA in seconds (None: not known yet); read from Ray's start thread."""
        eta = run.stats.eta(max(0, run.parts.schedule.budget - run.db.iterations), self.config.budget.wall_seconds)
        return None if eta is None else eta[0]

    async def _seed(self, run: _Run) -> None:
        """Check the workers and the sandbox's layers, then evaluate the initial program (once ever)."""
        pool, db = run.parts.pool, run.db
        await pool.ready()  # a bad problem param or sandbox setting: one line, before any evaluation
        for name, state in (await pool.layers()).items():
            if "NOT" in state:
                _log.warning("sandbox layer %s is not active: %s", name, state)
            else:
                _log.info("sandbox layer %s: %s", name, state)
        initial = db.initial()
        if initial is None:
            initial = await run.iterations.initial(read_initial_program(self.config.problem))
            run.scratchpad.observe(initial)  # every island's first best
            _log.info("initial program scored %.6g", self._natural(initial.score))
            run.metrics.record(initial)
            self._write_best(initial)
        run.initial = initial
        self._tell(lambda o: o.population(run.parts.population))
        self._tell(lambda o: o.started(self.config, self.run_dir))
        best = db.best() or initial  # the initial program is valid: there is a best
        self._validate_later(run, best)
        run.last_improvement = db.iterations
        run.stats.set_best(self._natural(best.score), best.iteration, best.proposer)  # natural: as people read it
        now = time.monotonic()  # budgets and rates count from the first proposal, not from Ray's start-up
        run.setup_seconds, run.started, run.stats.started = now - run.started, now, now
        _log.info("set-up took %.1f s (the evaluation slots, the initial program); the budgets count from now",
                  run.setup_seconds)

    # -- the loop ---------------------------------------------------------------------------------
    async def _loop(self, run: _Run) -> str:
        """Keep iterations in flight until a stop condition holds; return it."""
        cfg, schedule = self.config, run.parts.schedule
        mode = self._display()
        reason = self._stop_reason(run)
        # Ray starts (or is joined) once the first iteration is done: its import and connection would delay
        # the first requests, and until a proposal is answered there is no child to evaluate
        begun = False
        with ProgressDisplay(schedule.budget, run.db.iterations, mode == "live", self._console,
                             header=self._header() if mode == "live" else (), wall_seconds=cfg.budget.wall_seconds,
                             stats=run.stats,
                             lines_every=cfg.progress_interval if mode == "lines" else None) as display:
            while reason is None or (run.in_flight and reason.startswith(_DRAINING)):
                # every slot busy, a child waiting for each, llm.concurrency proposals out; the pool's size
                # can change once (Ray's workers replacing the local slots)
                max_in_flight = cfg.max_in_flight or (2 * run.parts.pool.size + max(1, cfg.llm.concurrency))
                while reason is None and len(run.in_flight) < max_in_flight and \
                        run.db.iterations + len(run.in_flight) < schedule.budget:
                    number = schedule.next_iteration()
                    island = number % run.parts.population.islands
                    run.in_flight.add(asyncio.create_task(run.iterations.run(number, island)))
                run.stats.in_flight = len(run.in_flight)
                finished, run.in_flight = await asyncio.wait(run.in_flight, return_when=asyncio.FIRST_COMPLETED,
                                                             timeout=self._wall_left(run))  # stop on time
                if not begun:
                    run.parts.pool.begin()
                    begun = True
                for task in finished:
                    program = task.result()
                    if program is not None:  # None: closed by a spending cap before its request left
                        run.longest_eval = max(run.longest_eval, program.eval_seconds or 0.0)
                        self._record(run, program)
                run.stats.in_flight = len(run.in_flight)
                display.update(run.stats, run.db.iterations)
                run.metrics.update(run.stats)
                reason = reason or self._stop_reason(run)
                if reason is not None and reason.startswith("budget.max_cost_usd"):
                    run.iterations.close()  # what is paid for finishes; no new request is sent
        return reason

    def _display(self) -> str:
        """`live` (the bar, on a terminal), `lines` (plain lines, elsewhere) or `off`, as `progress` says."""
        progress = self.config.progress
        if progress == "auto":
            return "live" if (self._console or Console()).is_terminal else "lines"
        return "live" if progress == "on" else "off"

    def _header(self) -> list[str]:
        """The lines printed once above the progress: the run dir and how to watch it from elsewhere."""
        return [f"run dir: {self.run_dir}  (from another terminal: evolve status --watch {self.run_dir})"]

    def _record(self, run: _Run, program: Program) -> None:
        """Book one committed iteration: scratchpad, figures, a new best, migration."""
        db, done = run.db, run.db.iterations
        run.scratchpad.observe(program)
        if run.rewrites.due(done):
            run.scratchpad.render()
        if run.checkpoints.due(done):
            self._checkpoint(run)
        stats = run.stats
        stats.iterations += 1
        run.unapplied.observe(program)
        stats.unapplied += program.status is ProgramStatus.EDIT_FAILED
        if program.status.is_evaluated():
            stats.evaluated += 1
            stats.valid += program.status is ProgramStatus.VALID
            if program.status is ProgramStatus.EVALUATOR_ERROR:
                stats.evaluator_errors += 1
                run.evaluator_errors_in_a_row += 1
                run.last_evaluator_error = " ".join(program.error.split())[:300]
                first = stats.evaluator_errors == 1
                _log.log(logging.WARNING if first else logging.INFO, "evaluator error at iteration %d (program %d): "
                         "%s%s", program.iteration, program.id, run.last_evaluator_error,
                         "; its traceback is in campaign.log (later ones are counted, not shown)" if first else "")
            else:
                run.evaluator_errors_in_a_row = 0
        best = db.best()
        is_best = best is not None and best.id == program.id
        self._tell(lambda o: o.committed(program, is_best))
        if is_best:
            _log.info("new best %.6g at iteration %d (program %d, by %s)", self._natural(program.score),
                      program.iteration, program.id, program.proposer)
            self._write_best(program)
            self._validate_later(run, program)
            run.last_improvement = done
        if best is not None:
            stats.set_best(self._natural(best.score), best.iteration, best.proposer)
        run.metrics.record(program)
        for due in run.migrations.due(done):
            moves = run.parts.population.migrate()
            db.record_migrations(moves, program.iteration)
            _log.info("migration at %d iterations (%d committed): %d programs moved", due, done, len(moves))

    def _stop_reason(self, run: _Run) -> str | None:
        b, db = self.config.budget, run.db
        best, done = db.best(), db.iterations
        if done >= run.parts.schedule.budget:
            return f"budget.iterations={run.parts.schedule.budget} reached"
        if b.wall_seconds is not None and time.monotonic() - run.started >= b.wall_seconds:
            return f"budget.wall_seconds={b.wall_seconds:g} reached"
        if b.target_score is not None and best is not None and best.score is not None and \
                self._natural(best.score) * self._sign >= b.target_score * self._sign:
            return f"budget.target_score={b.target_score:g} reached"
        if b.max_cost_usd is not None and db.total_cost >= b.max_cost_usd:
            return f"budget.max_cost_usd={b.max_cost_usd:g} reached (spent ${db.total_cost:.4f})"
        if b.patience is not None and done - run.last_improvement >= b.patience:
            return f"budget.patience={b.patience}: no improvement in {b.patience} iterations"
        if run.iterations.consecutive_failures >= self.config.llm.max_consecutive_failures:
            return _PROPOSER_FAILED
        if run.evaluator_errors_in_a_row >= self.config.max_evaluator_errors:
            return _EVALUATOR_FAILED
        if run.unapplied.stopped:
            return _UNAPPLIED
        if run.lock.lost:
            return _LOCK_LOST
        return None

    @property
    def _sign(self) -> int:
        return -1 if self.config.problem.direction == "minimize" else 1

    @overload
    def _natural(self, value: float) -> float: ...
    @overload
    def _natural(self, value: None) -> None: ...
    def _natural(self, value: float | None) -> float | None:
        """The engine maximises: a minimised problem's values are negated back for people to read."""
        from evaluators.direction import natural  # the one place that negates

        return natural(value, self.config.problem.direction)

    # -- held-out validation and outputs ----------------------------------------------------------
    def _validate_later(self, run: _Run, program: Program) -> None:
        """Score a new best on the validation data in the background (never shown in prompts); not at all
        once the problem has said it has none (no slot is taken from the evaluations for nothing)."""
        if program.validation is None and run.held_out is not False:
            run.validations.add(asyncio.create_task(self._validate(run, program)))

    async def _validate(self, run: _Run, program: Program) -> None:
        result = await run.parts.pool.validate(program.code)
        run.held_out = result is not None
        if result is None:
            return
        run.longest_eval = max(run.longest_eval, result.seconds)
        run.db.set_validation(program.id, {"valid": result.valid, "score": result.score,
                                           "metrics": result.metrics, "feedback": result.feedback})
        run.metrics.validation(result.score if result.valid else None)
        _log.info("validation of program %d (train %.6g): %s", program.id, self._natural(program.score),
                  f"{self._natural(result.score):.6g}" if result.valid else f"invalid: {result.feedback[:200]}")

    def _write_best(self, program: Program) -> None:
        path = self.run_dir / "best.py"
        tmp = path.with_suffix(".py.tmp")
        tmp.write_text(program.code)
        os.replace(tmp, path)

    # -- tear-down --------------------------------------------------------------------------------
    async def _finish(self, run: _Run, reason: str) -> CampaignResult:
        """Settle validations and say what this invocation did (the tear-down writes the report)."""
        if reason == _PROPOSER_FAILED:
            raise EvolveError(f"stopped after {self.config.llm.max_consecutive_failures} failed proposals in a row; "
                              f"last error: {run.iterations.last_error} ("
                              + ("raise the model's context_tokens or lower its max_tokens)"
                                 if "prompt needs about" in run.iterations.last_error
                                 else _OFFLINE_HINT if self.config.llm.kind == "offline"
                                 else "check llm.base_url, llm.model and the key)"))
        if reason == _EVALUATOR_FAILED:
            n = self.config.max_evaluator_errors
            raise EvaluatorFailed(f"stopped after {n} evaluator errors in a row (max_evaluator_errors={n}): the "
                                  f"evaluator of problem {self.config.problem.name!r} raised: "
                                  f"{run.last_evaluator_error}; its traceback is in {self.run_dir / 'campaign.log'}; "
                                  f"fix the evaluator, then `evolve resume {self.run_dir}`")
        if reason == _UNAPPLIED:
            raise EvolveError(f"stopped: {run.unapplied.message} (llm.max_unapplied_in_a_row="
                              f"{self.config.llm.max_unapplied_in_a_row}; llm.on_unapplied=warn goes on instead); "
                              f"the replies are in `evolve status {self.run_dir}` and {self.run_dir / 'programs.db'}")
        if reason == _LOCK_LOST:
            raise RunLocked(f"{self.run_dir}: another controller ({run.lock.lost}) took this campaign over after "
                            "this one missed its heartbeats; this one stopped")
        _log.info("campaign stopped: %s", reason)
        await self._cancel(run.in_flight)  # before the figures: a write under way still commits (`aadd`)
        if run.validations:
            await self._settle_validations(run)
        self._record_stop(run, "finished", reason)
        best = run.db.best()
        if best is not None:
            self._write_best(best)  # one committed by a write under way at the stop is the best too
        return CampaignResult(run_dir=self.run_dir, iterations=run.db.iterations, evaluated=run.stats.evaluated,
                              valid=run.stats.valid,
                              initial_score=self._natural(run.initial.score) if run.initial else None,
                              best_score=self._natural(best.score) if best else None,
                              seconds=time.monotonic() - run.started,
                              stop_reason=reason, evaluator_errors=run.stats.evaluator_errors,
                              setup_seconds=run.setup_seconds, direction=self.config.problem.direction)

    def _wall_left(self, run: _Run) -> float | None:
        """Seconds until `budget.wall_seconds` (None: no wall-clock budget)."""
        wall = self.config.budget.wall_seconds
        return None if wall is None else max(0.0, run.started + wall - time.monotonic())

    async def _settle_validations(self, run: _Run) -> None:
        """Wait for the validations under way; with `budget.wall_seconds`, until one evaluation's time (the
        longest of this invocation) past it at most: those still running then are cancelled, and said."""
        longest = max(run.longest_eval, (run.initial.eval_seconds or 0.0) if run.initial else 0.0)
        left = self._wall_left(run)
        done, late = await asyncio.wait(run.validations, timeout=None if left is None else left + longest)
        for task in done:
            if not task.cancelled():
                task.result()  # a validation's own error is not hidden
        if late:
            _log.warning("budget.wall_seconds=%g: %d validation(s) still running %.1f s after it were not waited "
                         "for (one evaluation took up to %.1f s); their programs keep no validation score",
                         self.config.budget.wall_seconds, len(late), longest, longest)
            await self._cancel(late)

    def _record_stop(self, run: _Run | None, state: str, reason: str) -> None:
        """Record in the database how this invocation ended, for `evolve status`; never raises (why the campaign
        stopped matters more than the record of it)."""
        if run is None:  # stopped before its database was opened: nothing to record it in
            return
        try:
            run.db.record_stop(state, " ".join(reason.split()))
        except Exception as exc:  # noqa: BLE001 (recording the end must not hide why the campaign stopped)
            _log.log(self._after_fault, "could not record the campaign's end (%s: %s): %s", state, reason,
                     faults.describe(exc))
        self._checkpoint(run)

    def _tell(self, hook: Callable[[CampaignObserver], None]) -> None:
        """Call `hook` on every observer; one that raises is logged, never allowed to hide why it stopped."""
        for observer in self._observers:
            try:
                hook(observer)
            except Exception as exc:  # noqa: BLE001 (an observer's failure must not stop the campaign)
                _log.log(self._after_fault, "%s failed: %s: %s", type(observer).__name__, type(exc).__name__,
                         faults.describe(exc))

    @property
    def _after_fault(self) -> int:
        """The level of a failure met after the database or the disk failed: expected then, so campaign.log's."""
        return logging.INFO if self._faulted else logging.WARNING

    def _checkpoint(self, run: _Run) -> None:
        """Keep the status figures' tally in the database (`evolve.observe.aggregates.checkpoint`); never raises: a
        reader without it counts every row."""
        try:
            aggregates.checkpoint(run.db)
        except Exception as exc:  # noqa: BLE001 (the tally only saves readers time; they count rows without it)
            _log.log(self._after_fault, "could not keep the status figures' tally: %s", faults.describe(exc))

    @staticmethod
    async def _cancel(tasks: set[asyncio.Task]) -> None:
        """Cancel `tasks` and wait for them: nothing of them is committed but a program whose write was under
        way, which is committed and indexed all the same."""
        pending = {t for t in tasks if not t.done()}
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _tear_down(self, run: _Run) -> None:
        """Cancel what is still in flight, write the report, release every part."""
        await self._cancel(run.in_flight | run.validations)
        run.metrics.update(run.stats, final=True)  # what is left of the figures, whatever the stop
        with terminal_quiet(self._faulted):  # a report on a full disk or over a lost database fails as expected
            self._tell(lambda o: o.stopped(self.config, self.run_dir, run.db))  # at every stop, signals and errors
        if run.parts.owns_pool:
            run.parts.pool.shutdown()
        await run.parts.proposer.close()
        run.db.close()


class _Signals:
    """SIGINT, SIGTERM and SIGHUP cancel the controller's task, once: a second signal acts as usual."""

    def __init__(self, task: asyncio.Task | None) -> None:
        self.received: signal.Signals | None = None
        self._task = task
        self._loop = asyncio.get_running_loop()
        self._installed: set[int] = set()

    def install(self) -> None:
        """Catch the signals (again, when something replaced a handler); a no-op off the main thread."""
        if self.received is not None or self._task is None:
            return
        for name in _SIGNALS:
            number = getattr(signal, name, None)
            if number is None:
                continue
            try:
                self._loop.add_signal_handler(number, self._caught, number)
            except (ValueError, RuntimeError, NotImplementedError):  # not the main thread: leave signals alone
                return
            self._installed.add(number)

    def _caught(self, number: int) -> None:
        self.received = signal.Signals(number)
        self.remove()
        if self._task is not None:
            self._task.cancel()

    def remove(self) -> None:
        """Give the signals back their default handling."""
        for number in self._installed:
            self._loop.remove_signal_handler(number)
        self._installed.clear()
