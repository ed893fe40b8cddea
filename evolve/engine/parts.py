"""The parts a campaign is assembled from, built from its config unless the caller hands them in."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evolve.config import Config, RayConfig
from evolve.engine.replay import ReplaySchedule
from evolve.engine.schedule import LiveSchedule, Schedule
from evolve.errors import ConfigError
from evolve.evaluation.handover import HandoverPool
from evolve.evaluation.local_pool import LocalPool
from evolve.evaluation.pool import Pool, pool_size
from evolve.population import Population, restore_population
from evolve.problems import entrypoint_of, shown_metrics_of
from evolve.proposals.llm import Proposer, ReplayProposer, make_proposer
from evolve.proposals.prompts import PromptBuilder, metric_filter
from evolve.storage.database import ProgramDatabase
from evolve.storage.lock import RunLock
from evolve.storage.rundir import campaign_name, database_url, open_database

__all__ = ["Parts", "assemble", "make_pool", "make_prompts", "make_schedule"]


@dataclass
class Parts:
    """What one campaign invocation works with.

    Attributes:
        database: the run's program database (opened for writing).
        population: which programs breed (rebuilt from the database, following its commits).
        proposer: the LLM, ensemble, offline mutator or replay.
        schedule: which iteration runs next, from which parents.
        pool: the evaluation slots (Ray's workers, or this process's while Ray starts).
        prompts: the prompt builder with the problem's description.
        owns_pool: the campaign started the pool, so it shuts it down.
    """

    database: ProgramDatabase
    population: Population
    proposer: Proposer
    schedule: Schedule
    pool: Pool
    prompts: PromptBuilder
    owns_pool: bool


def make_schedule(config: Config, database: ProgramDatabase, proposer: Proposer,
                  population: Population) -> Schedule:
    """Replay's recorded order and parents for a replay proposer, else the population's choices."""
    if isinstance(proposer, ReplayProposer):
        return ReplaySchedule(proposer.recording, database, config.budget.iterations,
                              patience_seconds=2 * config.problem.limits.wall_seconds + 60)
    return LiveSchedule(database, population, config.budget.iterations)


def make_prompts(config: Config) -> PromptBuilder:
    """The prompt builder for the problem: its README (else its description) and its entrypoint."""
    problem = config.problem
    readme = Path(problem.directory) / problem.readme
    description = readme.read_text() if readme.is_file() else problem.description
    patterns, timing = shown_metrics_of(problem)
    chosen = config.prompt.metrics if config.prompt.metrics is not None else patterns
    return PromptBuilder(description, entrypoint_of(problem), config.prompt, metric_filter(chosen, timing))


def make_pool(config: Config, run_dir: str | Path | None = None) -> Pool:
    """The evaluation slots a config names: with `ray.local_start`, slots of this process score the first
    programs while Ray starts (or is joined) in the background and its workers come up (`HandoverPool`; a
    private instance starts only after `ray.start_after` seconds, and only for a campaign expected to run
    `ray.start_min_eta` seconds more; any, once the caller's `begin()` says its first iteration is done);
    without, Ray's workers only."""
    settings = config.ray
    if not settings.local_start:
        return _ray_pool(config, wait=False, run_dir=run_dir)
    if settings.address is None:  # the private instance's size is checked now, before anything starts
        cpus = settings.num_cpus or len(os.sched_getaffinity(0))
        slots = pool_size(settings.num_workers, settings.worker_cpus, cpus)
    else:  # a cluster's workers may be many more than this machine holds
        slots = min(settings.num_workers or 1 << 30,
                    pool_size(None, settings.worker_cpus, len(os.sched_getaffinity(0))))
    local = LocalPool(config.problem, config.sandbox, slots, run_seed=config.seed)
    after: Callable[[], None] | None = None
    if config.llm.kind in ("openai", "ensemble", "tiers"):  # the first request needs the SDK before the pool needs Ray
        from evolve.proposals.llm.openai_model import sdk_imported as after
    private = settings.address is None and not settings.include_dashboard
    return HandoverPool(local, functools.partial(_ray_pool, config, wait=True, run_dir=run_dir), after,
                        delay=settings.start_after if private else 0.0,
                        min_eta=settings.start_min_eta if private else None, gated=True)


def _ray_pool(config: Config, wait: bool, run_dir: str | Path | None = None) -> Pool:
    """Start or join Ray and place its evaluation actors; with `wait`, block until they are all up."""
    from evolve.evaluation.ray_pool import EvaluationPool, connect
    from evolve.observe.dashboard import job_metadata

    settings: RayConfig = config.ray
    name = campaign_name(config, run_dir) if run_dir is not None else config.name or config.problem.name
    connect(settings, job_metadata(name, config.problem.name, run_dir or ".", config))  # a named Ray job
    pool = EvaluationPool(config.problem, config.sandbox, settings.num_workers, settings.worker_cpus,
                          settings.ready_timeout, campaign=name, run_seed=config.seed)
    if wait:
        pool.wait_ready()
    return pool


def assemble(config: Config, run_dir: str | Path, *, proposer: Proposer | None = None,
             pool: Pool | None = None, database: ProgramDatabase | None = None,
             schedule: Schedule | None = None, lock: RunLock | None = None,
             on_open: Callable[[ProgramDatabase], None] | None = None) -> Parts:
    """Build every part the caller did not hand in; a missing key or an endpoint that does not answer
    fails before anything starts. With `lock`, the campaign's row in the database is claimed before
    the database is opened for writing; `on_open(database)` is called as soon as it is open. A part handed in
    must subclass its base class (`Proposer`, `Pool`)."""
    if pool is not None and not isinstance(pool, Pool):
        raise ConfigError(f"pool={type(pool).__name__}: not an evaluation pool; subclass evolve.evaluation.pool.Pool")
    if proposer is not None:
        proposer = make_proposer(proposer)  # checks it is a Proposer
    llm = config.llm
    if proposer is None and config.llm.kind in ("openai", "ensemble", "tiers"):
        from evolve.proposals.llm.openai_model import api_key
        from evolve.proposals.llm.probe import probe_endpoints, resolve_edit_formats

        for model in config.llm.model_configs():
            api_key(model)
        probe_endpoints(config.llm)
        llm = resolve_edit_formats(config.llm)
    prompts = make_prompts(config)
    opened = database is None
    if opened and lock is not None:
        lock.claim(database_url(config, run_dir), campaign_name(config, run_dir))
    database = database or open_database(config, run_dir)
    try:
        if on_open is not None:
            on_open(database)
        # reseeded from the history length, so a resumed campaign does not replay the same mutations
        proposer = proposer or make_proposer(llm, seed=config.seed * 1_000_003 + database.size)
        population = restore_population(config, database, follow=True)
        schedule = schedule or make_schedule(config, database, proposer, population)
        owns_pool = pool is None
        if pool is None:
            pool = make_pool(config, run_dir)
    except BaseException:
        if opened:
            database.close()
        raise
    return Parts(database, population, proposer, schedule, pool, prompts, owns_pool)
