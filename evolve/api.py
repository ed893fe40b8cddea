"""evolve from Python: start a campaign, open a run, read its programs. Never writes to a run it opens.

    import evolve
    run = evolve.run("circle_packing", overrides=["budget.iterations=20"])   # or a folder, or await arun
    run.best.score, run.best_validation, run.lineage(run.best), run.programs(status="valid", island=0)
    old = evolve.open_run("runs/circle_packing/<ts>")                          # any earlier run, read-only

`run` works inside a running event loop too (a notebook): the campaign then runs on a thread of its
own with its own loop. Scores are natural: a minimised problem's values are shown as the evaluator gave
them, with `Run.direction` saying which way is better.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Self, overload

from evolve.config import Config
from evolve.engine.campaign import CampaignResult
from evolve.errors import ConfigError, EvolveError
from evolve.program import Program, ProgramStatus

__all__ = ["Run", "arun", "compose", "open_run", "run"]


def compose(problem: str | Path, overrides: Sequence[str] = (), evaluator: Any = None) -> Config:
    """The config `evolve run problem=PROBLEM OVERRIDES...` would compose; `evaluator` (a class or an
    instance, defined anywhere, `__main__` included) replaces the problem's evaluator."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from evolve.config import register_configs, to_config
    from evolve.problems import discover, pickle_evaluator, resolve

    name = resolve(problem).name
    register_configs(discover().values())
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_module(config_module="evolve.conf", version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=[f"problem={name}", *overrides])
    config = to_config(cfg)
    if evaluator is not None:
        from evaluators import Evaluator

        cls = evaluator if isinstance(evaluator, type) else type(evaluator)
        if not (isinstance(cls, type) and issubclass(cls, Evaluator)):
            raise ConfigError(f"evaluator={evaluator!r} is not an evaluators.Evaluator subclass or instance")
        config.problem.evaluator = f"{cls.__module__}:{cls.__qualname__}"
        config.problem.evaluator_object = pickle_evaluator(evaluator)
    return config


def _run_dir(config: Config, run_dir: str | Path | None) -> Path:
    if run_dir is not None:
        return Path(run_dir)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    return Path("runs") / config.problem.name / stamp


async def arun(problem: str | Path, overrides: Sequence[str] = (), run_dir: str | Path | None = None, *,
               evaluator: Any = None, config: Config | None = None) -> Run:
    """Run a campaign to its end in this event loop and return its `Run` (see `run`)."""
    from evolve.engine.campaign import Campaign
    from evolve.observe.logs import setup_logging  # campaign.log as the CLI writes it
    from evolve.ui.report import ReportWriter

    config = config or compose(problem, overrides, evaluator)
    path = _run_dir(config, run_dir)
    if (path / "config.yaml").exists():
        raise EvolveError(f"{path} already holds a campaign; open it with evolve.open_run({str(path)!r})")
    path.mkdir(parents=True, exist_ok=True)
    if config.name is None:
        config.name = f"{config.problem.name}/{path.name}"
    if config.progress == "auto":
        config.progress = "off"
    setup_logging(path)
    result = await Campaign(config, path, observers=[ReportWriter()]).arun()
    handle = open_run(path)
    handle.result = result
    return handle


def run(problem: str | Path, overrides: Sequence[str] = (), run_dir: str | Path | None = None, *,
        evaluator: Any = None, config: Config | None = None) -> Run:
    """Run a campaign to its end and return its `Run`.

    `problem` is a problem's name or a folder holding its config.yaml; `overrides` are `KEY=VALUE`
    strings as on the command line; `run_dir` defaults to `runs/<problem>/<timestamp>`. Works with or
    without a running event loop (in a notebook the campaign runs on a thread with a loop of its own).
    """
    config = config or compose(problem, overrides, evaluator)
    coroutine = arun(problem, overrides, run_dir, config=config)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["run"] = asyncio.run(coroutine)
        except BaseException as exc:  # noqa: BLE001 (re-raised on the caller's thread)
            box["error"] = exc

    thread = threading.Thread(target=target, name="evolve-campaign")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["run"]


def open_run(run_dir: str | Path) -> Run:
    """A read-only handle on a run dir (finished, interrupted or still running)."""
    return Run(run_dir)


class Run:
    """One run dir, read-only: its config, programs, best, lineage. Nothing here writes to the run.

    Programs are `evolve.program.Program` snapshots whose `score` (and validation score) is natural.
    """

    def __init__(self, run_dir: str | Path) -> None:
        from evolve.storage.rundir import load_config, open_database

        self.run_dir = Path(run_dir)
        self.config = load_config(self.run_dir)
        self.direction = self.config.problem.direction
        self.result: CampaignResult | None = None  # set when this process ran the campaign
        self._db = open_database(self.config, self.run_dir, read_only=True)

    def __repr__(self) -> str:
        best = self.best
        return (f"Run({str(self.run_dir)!r}, problem={self.config.problem.name!r}, iterations={self.iterations}, "
                f"best={best.score if best else None!r} ({self.direction}))")

    @overload
    def _natural(self, program: Program) -> Program: ...
    @overload
    def _natural(self, program: None) -> None: ...
    def _natural(self, program: Program | None) -> Program | None:
        if program is None or self.direction != "minimize":
            return program
        from evaluators.direction import natural  # the one place that negates

        validation = program.validation
        if validation and validation.get("score") is not None:
            validation = {**validation, "score": natural(validation["score"], self.direction)}
        return dataclasses.replace(program, score=natural(program.score, self.direction), validation=validation)

    @property
    def problem(self) -> str:
        return self.config.problem.name

    @property
    def iterations(self) -> int:
        return self._db.iterations

    @property
    def best(self) -> Program | None:
        """The best valid program (natural score), or None."""
        return self._natural(self._db.best())

    @property
    def initial(self) -> Program | None:
        return self._natural(self._db.initial())

    @property
    def best_validation(self) -> dict | None:
        """The best program's held-out validation (`valid`, `score`, `metrics`, `feedback`), if scored."""
        best = self.best
        return best.validation if best else None

    def counts(self) -> dict[str, int]:
        return self._db.counts()

    def programs(self, status: str | ProgramStatus | None = None, island: int | None = None) -> list[Program]:
        """Every program in commit order; `status` (`valid`, `invalid`, ...) and `island` filter."""
        wanted = ProgramStatus(status) if status is not None else None
        return [self._natural(p) for p in self._db.programs(wanted) if island is None or p.island == island]

    def get(self, program_id: int) -> Program | None:
        return self._natural(self._db.get(program_id))

    def lineage(self, program: Program | int) -> list[Program]:
        """The program and its ancestors, back to the initial program (the program first)."""
        current = self.get(program if isinstance(program, int) else program.id)
        chain: list[Program] = []
        seen: set[int] = set()
        while current is not None and current.id not in seen:
            chain.append(current)
            seen.add(current.id)
            current = self.get(current.parent_id) if current.parent_id is not None else None
        return chain

    def __iter__(self) -> Iterator[Program]:
        return iter(self.programs())

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
