"""The `evolve` command: `run` is a Hydra app; the other verbs read an existing run dir with argparse.

    evolve run [OVERRIDE ...]          start a campaign (Hydra: overrides, -m, --cfg job, --help)
    evolve resume RUN_DIR [OVERRIDE]   continue a campaign from its database
    evolve status RUN_DIR              counts, scores and rates of a campaign
    evolve best RUN_DIR [--code]       the best program
    evolve problems                    the available problems
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from rich.console import Console
from rich.table import Table

from evolve.config import Config, register_configs, to_config
from evolve.errors import EvolveError, RunDirError

__all__ = ["main"]

_console = Console(stderr=True, soft_wrap=True)
_out = Console(soft_wrap=True)


def _setup_logging(run_dir: Path) -> None:
    """campaign.log in the run dir gets INFO and up; the terminal gets warnings only."""
    logger = logging.getLogger("evolve")
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    file_handler = logging.FileHandler(run_dir / "campaign.log")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(file_handler)
    console_handler = logging.StreamHandler(sys.stderr)
    console_handler.setLevel(logging.WARNING)
    console_handler.setFormatter(logging.Formatter("evolve: %(message)s"))
    logger.addHandler(console_handler)
    logger.propagate = False


def _run_campaign(config: Config, run_dir: Path) -> None:
    """Run a campaign and print its summary; errors become one line and exit code 1."""
    from evolve.campaign import Campaign

    _setup_logging(run_dir)
    try:
        result = Campaign(config, run_dir, console=_console).run()
    except KeyboardInterrupt:
        _console.print(f"[yellow]interrupted[/]: every finished program is saved; continue with "
                       f"`evolve resume {run_dir}`")
        sys.exit(130)
    except EvolveError as exc:
        logging.getLogger("evolve").error("%s", exc)
        sys.exit(1)
    gain = ""
    if result.initial_score is not None and result.best_score is not None:
        gain = f" ({result.best_score - result.initial_score:+.6g})"
    _out.print(f"[bold]{config.problem.name}[/]: initial {result.initial_score:.6g} -> best "
               f"{result.best_score:.6g}{gain} | {result.iterations} iterations, {result.evaluated} evaluated "
               f"this run, {result.valid} valid, {result.evals_per_second:.2f} evals/s, "
               f"{result.seconds:.1f} s | stop: {result.stop_reason}")
    _out.print(f"run dir: {run_dir}  best program: {run_dir / 'best.py'}")


def _hydra_run() -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig

    register_configs()

    @hydra.main(version_base="1.3", config_path="conf", config_name="config")
    def app(cfg) -> None:
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        config = to_config(cfg)
        if config.name is None:
            config.name = f"{config.problem.name}/{run_dir.name}"
        if (run_dir / "config.yaml").exists():
            _console.print(f"evolve: {run_dir} already holds a campaign; continue it with "
                           f"`evolve resume {run_dir}` or choose another hydra.run.dir")
            sys.exit(1)
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(config)))
        _run_campaign(config, run_dir)

    app()


def _load_run(run_dir: str, overrides: list[str] | None = None) -> tuple[Path, Config]:
    path = Path(run_dir)
    if not (path / "config.yaml").is_file():
        raise RunDirError(f"{path} is not an evolve run dir (no config.yaml); runs are under runs/<problem>/")
    raw = OmegaConf.load(path / "config.yaml")
    try:
        if overrides:
            raw = OmegaConf.merge(OmegaConf.structured(Config), raw, OmegaConf.from_dotlist(overrides))
        config = to_config(raw)
    except OmegaConfBaseException as exc:
        raise RunDirError(f"bad override for {path}: {str(exc).splitlines()[0]}") from None
    from evolve.problems import discover

    problem = discover().get(config.problem.name)
    if problem is not None:  # the problem folder may have moved since the run started
        config.problem.directory = problem.directory
    return path, config


def _open_db(run_dir: Path, config: Config):
    from evolve.campaign import database_url
    from evolve.database import ProgramDatabase

    if config.database.url is None and not (run_dir / "programs.db").is_file():
        raise RunDirError(f"{run_dir} has no programs.db yet; the campaign never started")
    return ProgramDatabase(database_url(config, run_dir), config.name, config.problem.name, config.database,
                           config.problem.features, seed=config.seed)


def _status(args: argparse.Namespace) -> None:
    run_dir, config = _load_run(args.run_dir)
    with _open_db(run_dir, config) as db:
        counts = db.counts()
        best, initial, done = db.best(), db.initial(), db.iterations
        times = [p.created_at for p in db.programs() if p.created_at is not None]
    evaluated = counts.get("valid", 0) + counts.get("invalid", 0)
    span = (max(times) - min(times)).total_seconds() if len(times) > 1 else 0.0
    table = Table(title=f"{config.name} ({config.problem.name})", show_header=False)
    table.add_row("iterations", f"{done} of {config.budget.iterations}")
    table.add_row("programs by status", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    table.add_row("valid share", f"{100 * counts.get('valid', 0) / evaluated:.1f}%" if evaluated else "-")
    table.add_row("initial score", f"{initial.score:.6g}" if initial else "-")
    table.add_row("best score", f"{best.score:.6g} (program {best.id}, iteration {best.iteration}, "
                  f"by {best.proposer})" if best else "-")
    table.add_row("best per island", ", ".join("-" if s is None else f"{s:.6g}" for s in db.island_best()))
    table.add_row("evaluations/s", f"{evaluated / span:.2f} over {span:.0f} s" if span else "-")
    _out.print(table)


def _best(args: argparse.Namespace) -> None:
    run_dir, config = _load_run(args.run_dir)
    with _open_db(run_dir, config) as db:
        best, initial = db.best(), db.initial()
    if best is None:
        raise RunDirError(f"{run_dir} holds no valid program")
    if args.code:
        _out.print(best.code, markup=False, highlight=False, end="")
        return
    _out.print(f"best program {best.id}: score {best.score:.6g} (initial {initial.score:.6g}) at iteration "
               f"{best.iteration}, generation {best.generation}, by {best.proposer}")
    for key, value in sorted(best.metrics.items()):
        _out.print(f"  {key}: {value}")
    if best.feedback:
        _out.print(f"  feedback: {best.feedback}")
    _out.print(f"code: {run_dir / 'best.py'} (or `evolve best {run_dir} --code`)")


def _resume(args: argparse.Namespace) -> None:
    run_dir, config = _load_run(args.run_dir, args.overrides)
    _open_db(run_dir, config).close()  # fails clearly when there is nothing to resume
    if args.overrides:
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(config)))
    _run_campaign(config, run_dir)


def _problems(_: argparse.Namespace) -> None:
    from evolve.problems import discover

    table = Table("problem", "description", "folder")
    for name, problem in sorted(discover().items()):
        table.add_row(name, problem.description, problem.directory)
    _out.print(table)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `evolve` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "run":
        sys.argv = [f"{Path(sys.argv[0]).name} run", *argv[1:]]
        _hydra_run()
        return
    parser = argparse.ArgumentParser(prog="evolve", description="Evolve programs against an evaluator.",
                                     epilog="Start a campaign with `evolve run [OVERRIDE ...]` "
                                            "(see `evolve run --help`).")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="{run,resume,status,best,problems}")
    verbs.add_parser("run", help="start a campaign (Hydra overrides; see `evolve run --help`)")
    p = verbs.add_parser("resume", help="continue a campaign from its database")
    p.add_argument("run_dir")
    p.add_argument("overrides", nargs="*", help="KEY=VALUE changes, e.g. budget.iterations=400")
    p.set_defaults(func=_resume)
    p = verbs.add_parser("status", help="counts, scores and rates of a campaign")
    p.add_argument("run_dir")
    p.set_defaults(func=_status)
    p = verbs.add_parser("best", help="the best program of a campaign")
    p.add_argument("run_dir")
    p.add_argument("--code", action="store_true", help="print only its source")
    p.set_defaults(func=_best)
    p = verbs.add_parser("problems", help="the available problems")
    p.set_defaults(func=_problems)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except EvolveError as exc:
        _console.print(f"evolve: {exc}", markup=False, highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
