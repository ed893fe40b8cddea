"""The parts a campaign is assembled from, built from its config unless the caller hands them in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evolve.config import Config
from evolve.database import ProgramDatabase
from evolve.llm import Proposer, ReplayProposer, make_proposer
from evolve.llm.openai_model import api_key
from evolve.llm.probe import probe_endpoints
from evolve.lock import RunLock
from evolve.problems import evaluator_class
from evolve.prompts import PromptBuilder
from evolve.replay import ReplaySchedule
from evolve.rundir import campaign_name, database_url, open_database
from evolve.schedule import LiveSchedule, Schedule
from evolve.workers import EvaluationPool, connect

__all__ = ["Parts", "assemble", "make_schedule"]


@dataclass
class Parts:
    """What one campaign invocation works with.

    Attributes:
        database: the run's program database (opened for writing).
        proposer: the LLM, ensemble, offline mutator or replay.
        schedule: which iteration runs next, from which parents.
        pool: the Ray evaluation workers.
        prompts: the prompt builder with the problem's description.
        owns_pool: the campaign started the pool, so it shuts it down.
    """

    database: ProgramDatabase
    proposer: Proposer
    schedule: Schedule
    pool: EvaluationPool
    prompts: PromptBuilder
    owns_pool: bool


def make_schedule(config: Config, database: ProgramDatabase, proposer: Proposer) -> Schedule:
    """Replay's recorded order and parents for a replay proposer, else live sampling."""
    if isinstance(proposer, ReplayProposer):
        return ReplaySchedule(proposer.recording, database, config.budget.iterations,
                              patience_seconds=2 * config.problem.limits.wall_seconds + 60)
    return LiveSchedule(database, config.budget.iterations)


def assemble(config: Config, run_dir: str | Path, *, proposer: Proposer | None = None,
             pool: EvaluationPool | None = None, database: ProgramDatabase | None = None,
             schedule: Schedule | None = None, lock: RunLock | None = None) -> Parts:
    """Build every part the caller did not hand in; a missing key or an endpoint that does not answer
    fails before anything starts. With `lock`, the campaign's row in the database is claimed before
    the database is opened for writing."""
    if proposer is None and config.llm.kind in ("openai", "ensemble"):
        for model in config.llm.model_configs():
            api_key(model)
        probe_endpoints(config.llm)
    problem = config.problem
    readme = Path(problem.directory) / problem.readme
    description = readme.read_text() if readme.is_file() else problem.description
    prompts = PromptBuilder(description, evaluator_class(problem).entrypoint, config.prompt)
    opened = database is None
    if opened and lock is not None:
        lock.claim(database_url(config, run_dir), campaign_name(config, run_dir))
    database = database or open_database(config, run_dir)
    try:
        # reseeded from the history length, so a resumed campaign does not replay the same mutations
        proposer = proposer or make_proposer(config.llm, seed=config.seed * 1_000_003 + database.size)
        schedule = schedule or make_schedule(config, database, proposer)
        owns_pool = pool is None
        if pool is None:
            connect(config.ray)
            pool = EvaluationPool(problem, config.sandbox, config.ray.num_workers, config.ray.worker_cpus,
                                  config.ray.ready_timeout)
    except BaseException:
        if opened:
            database.close()
        raise
    return Parts(database, proposer, schedule, pool, prompts, owns_pool)
