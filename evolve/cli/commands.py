"""The `evolve` command: `run` is a Hydra app; the other verbs read an existing run dir with argparse.

    evolve run [OVERRIDE ...]          start a campaign (Hydra: overrides, -m, --cfg job, --help)
    evolve resume RUN_DIR [OVERRIDE]   continue a campaign from its database
    evolve status RUN_DIR              counts, scores and rates of a campaign
    evolve best RUN_DIR [--code]       the best program, with its validation figures
    evolve report RUN_DIR              write report.html
    evolve ui [RUN_DIR | runs/]        a local web view of campaigns (read-only; refreshes while one runs)
    evolve upgrade RUN_DIR             bring a database written by an older evolve up to date
    evolve repair RUN_DIR              salvage every readable row of a damaged programs.db into a new file
    evolve check [OVERRIDE ...]        the sandbox's layers, the initial program and the references
    evolve check [OVERRIDE ...] --test PROGRAM   score a program on the test data, once (a run dir's
                                       program: recorded in test_result.json; --again re-scores)
    evolve doctor [--attacks]          the sandbox's layers, its cost, and the attack suite's outcomes
    evolve sandbox build [--interpreter]   build the Docker backend's image locally (with the interpreter
                                       and packages inside: nodes need not share paths)
    evolve problems                    the available problems
    evolve new-problem NAME [--dir D]  write a working problem folder and its contract test
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evolve.config import Config, register_configs, to_config
from evolve.errors import EvolveError, Interrupted, RunDirError, RunLocked
from evolve.observe.logs import capture_native_stderr, setup_logging
from evolve.storage.lock import RunLock
from sandboxes import SandboxUnavailable, candidate_text

_ONE_LINE_ERRORS = (EvolveError, SandboxUnavailable)  # printed as one line, exit code 1

__all__ = ["main"]

_console = Console(stderr=True, soft_wrap=True)
_out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
_campaigns_run: list[Path] = []  # run dirs of campaigns this process ran: it then ends at once


def _shown(text: object, limit: int | None = None) -> str:
    """Text that may quote a candidate (feedback, errors), fit for the terminal: no escape sequences, cut."""
    return candidate_text(text, "terminal", limit)


def _run_campaign(config: Config, run_dir: Path, lock: RunLock, resumed_at: int | None = None,
                  fresh: bool = False) -> None:
    """Run a campaign under `lock` (released at the end) and print its summary; errors become one line
    naming the run dir and the resume command, and exit code 1; a signal the resume hint and exit code
    128 + its number (130 for Ctrl-C). A `fresh` run dir (made for this run) that fails before its
    initial program is committed valid is removed. A resumed campaign (`resumed_at` iterations before)
    that stops on a budget before any new iteration says which override continues it."""
    from evolve.engine.campaign import Campaign
    from evolve.ui.report import ReportWriter

    _campaigns_run.append(run_dir)
    setup_logging(run_dir)
    capture_native_stderr(run_dir)  # Ray's C++ warnings go to campaign.log, never the terminal
    log = logging.getLogger("evolve")
    failure: BaseException | None = None
    try:
        result = Campaign(config, run_dir, console=_console, lock=lock, observers=[ReportWriter()]).run()
    except (KeyboardInterrupt, Interrupted) as exc:
        number = exc.signal_number if isinstance(exc, Interrupted) else int(signal.SIGINT)
        if isinstance(exc, KeyboardInterrupt):  # before the campaign caught signals, or a second Ctrl-C
            log.info("interrupted by SIGINT")
        _console.print(f"[yellow]interrupted by {signal.Signals(number).name}[/]: every finished program is "
                       f"saved; continue with `evolve resume {run_dir}`")
        sys.exit(128 + number)
    except _ONE_LINE_ERRORS as exc:
        failure = exc
    finally:
        lock.release()
    if failure is not None:
        if fresh and _nothing_kept(config, run_dir):
            for handler in [h for h in log.handlers if isinstance(h, logging.FileHandler)]:
                log.removeHandler(handler)  # campaign.log goes with the run dir
                handler.close()
            shutil.rmtree(run_dir, ignore_errors=True)
            _console.print(f"evolve: {_shown(failure)} (nothing was kept: {run_dir} is removed)", markup=False,
                           highlight=False)
        else:
            log.error("%s", _failure_line(failure, run_dir))
        sys.exit(1)
    gain = ""
    if result.initial_score is not None and result.best_score is not None:
        gain = f" ({result.best_score - result.initial_score:+.6g})"
    errors = f", {result.evaluator_errors} evaluator errors" if result.evaluator_errors else ""
    _out.print(f"[bold]{config.problem.name}[/]: initial {result.initial_score:.6g} -> best "
               f"{result.best_score:.6g}{gain} | {result.iterations} iterations, {result.evaluated} evaluated "
               f"this run, {result.valid} valid{errors}, {result.evals_per_second:.2f} evals/s, "
               f"{result.seconds:.1f} s (+{result.setup_seconds:.1f} s set-up) | stop: {result.stop_reason}")
    _out.print(f"run dir: {run_dir}  best program: {run_dir / 'best.py'}")
    if resumed_at is not None and result.iterations == resumed_at and result.stop_reason.startswith("budget."):
        _out.print(_budget_hint(run_dir, result.stop_reason, result.iterations), markup=False, highlight=False)


def _failure_line(exc: BaseException, run_dir: Path) -> str:
    """The one line of a campaign that failed: its cause, the run dir and, where it can help, the resume."""
    from evolve.errors import DatabaseCorrupt

    text = str(exc)
    if isinstance(exc, DatabaseCorrupt):  # a resume would meet the same damage: the line names the repair
        return text
    if isinstance(exc, RunLocked):  # another controller has the campaign: a resume would be refused
        return text if str(run_dir) in text else f"{text} (run dir {run_dir})"
    if f"evolve resume {run_dir}" in text:
        return text
    return f"{text}; every finished program is kept in {run_dir}: once fixed, continue with `evolve resume {run_dir}`"


def _nothing_kept(config: Config, run_dir: Path) -> bool:
    """Whether the campaign in `run_dir` has no valid initial program: nothing to resume from."""
    from evolve.storage.rundir import open_database

    try:
        with open_database(config, run_dir, read_only=True) as db:
            return db.initial() is None
    except RunDirError:  # no database, or no campaign in it
        return True
    except Exception:  # noqa: BLE001 (unreadable: keep it, whatever it holds)
        return False


def _budget_hint(run_dir: Path, reason: str, iterations: int) -> str:
    """What to tell a resume that had nothing left to do: the budget reached and the override that goes on."""
    key = reason.split("=", 1)[0]
    if key == "budget.iterations":
        more = f"{key}={2 * max(iterations, 1)}"
    elif key == "budget.target_score":
        more = f"{key}=null (or a better target)"
    else:
        more = f"{key}=<a larger value>"
    return (f"nothing left to run: {reason} already; to continue, give it more: "
            f"`evolve resume {run_dir} {more}`")


def _register() -> None:
    from evolve.problems import discover

    register_configs(discover().values())


def _hydra_run() -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig

    _register()

    @hydra.main(version_base="1.3", config_path="../conf", config_name="config")
    def app(cfg) -> None:
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        fresh = {p.name for p in run_dir.iterdir()} <= {HydraConfig.get().output_subdir} and \
            not Path.cwd().resolve().is_relative_to(run_dir.resolve())  # made for this run: only Hydra's record
        config = to_config(cfg)
        if config.name is None:
            config.name = f"{config.problem.name}/{run_dir.name}"
        try:  # one controller per run dir: a second `run` or a `resume` of it is refused while this one lives
            lock = RunLock(run_dir).acquire()
        except EvolveError as exc:
            _console.print(f"evolve: {exc}", markup=False, highlight=False)
            sys.exit(1)
        if (run_dir / "config.yaml").exists():
            lock.release()
            _console.print(f"evolve: {run_dir} already holds a campaign; continue it with "
                           f"`evolve resume {run_dir}` or choose another hydra.run.dir")
            sys.exit(1)
        _run_campaign(config, run_dir, lock, fresh=fresh)  # the campaign writes config.yaml into the run dir

    app()


def _hydra_check(test_program: str | None, again: bool) -> None:
    import hydra

    _register()

    @hydra.main(version_base="1.3", config_path="../conf", config_name="config")
    def app(cfg) -> None:
        try:
            _check(to_config(cfg), test_program, again)
        except _ONE_LINE_ERRORS as exc:
            _console.print(f"evolve: {_shown(exc)}", markup=False, highlight=False)
            sys.exit(1)

    app()


def _format(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 1e4 or (abs(value) < 1e-3 and value):
            return f"{value:.4g}"
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return escape(_shown(value, 200))  # a table cell: rich markup is read in it


def _check(config: Config, test_program: str | None, again: bool = False) -> None:
    """Print the sandbox's layers, the initial program's score and the problem's reference tables."""
    from evaluators import evaluate_held_out, evaluate_program
    from evaluators.direction import natural
    from evolve.engine.preflight import preflight
    from evolve.evaluation.sandboxing import make_sandbox
    from evolve.problems import load_evaluator, read_initial_program

    problem = config.problem
    preflight(problem).raise_for_failures()  # one line per failure, exit code 1
    _out.print(f"pre-flight: initial program, entrypoint and evaluator OK; direction {problem.direction}",
               markup=False, highlight=False)
    limits = Table("limit", "value", title=f"{problem.name}: sandbox limits (problem.limits)")
    for key, value in vars(problem.limits).items():
        limits.add_row(key, _format(value))
    for stage, stage_limits in problem.stage_limits.items():
        limits.add_row(f"stage {stage}", ", ".join(f"{k}={_format(v)}" for k, v in vars(stage_limits).items()))
    _out.print(limits)
    evaluator = load_evaluator(problem, run_seed=config.seed)
    sandbox = make_sandbox(config.sandbox, problem)
    if test_program is not None:
        path = Path(test_program)
        if path.is_dir():
            path = path / "best.py"
        if not path.is_file():
            raise EvolveError(f"--test {test_program}: no such program file (give a .py file or a run dir)")
        in_run_dir = (path.parent / "config.yaml").is_file() and (path.parent / "campaign.log").is_file()
        record = path.parent / "test_result.json" if in_run_dir else None
        code = path.read_text()
        if record is not None and record.is_file() and not again:
            stored = json.loads(record.read_text())
            if stored.get("code") == code:
                _out.print(f"{path} was scored on the test data at {stored['when']}: score {_format(stored['score'])}; "
                           f"{_shown(stored['feedback'])} (recorded in {record}; --again scores it anew)",
                           markup=False, highlight=False)
                return
        result = evaluate_held_out(evaluator, sandbox, code, problem.limits, "test")
        if result is None:
            raise EvolveError(f"problem {problem.name!r} has no test data")
        if result.score is not None:
            from dataclasses import replace

            result = replace(result, score=natural(result.score, problem.direction))
        if record is not None:
            record.write_text(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M:%S"), "code": code,
                                          **result.to_dict()}, indent=1))
        table = Table(title=f"{problem.name}: {path} on the test data", show_header=False)
        table.add_row("valid", str(result.valid))
        table.add_row("score", _format(result.score))
        for key, value in sorted(result.metrics.items()):
            table.add_row(key, _format(value))
        _out.print(table)
        _out.print(_shown(result.feedback), markup=False, highlight=False)
        _out.print("The test data is for a final figure only: tuning against it would make the figure meaningless.")
        return
    layers = Table("layer", "state", title=f"sandbox={config.sandbox.kind}")
    for name, state in sandbox.layers().items():
        layers.add_row(name, state)
    _out.print(layers)
    initial = read_initial_program(problem)
    result = evaluate_program(evaluator, sandbox, initial, problem.limits, problem.stage_limits)
    verdict = f"score {natural(result.score, problem.direction):.6g} ({problem.direction})" if result.valid \
        else "INVALID"
    _out.print(f"initial program: {verdict} in {result.seconds:.2f} s; {_shown(result.feedback)}", markup=False,
               highlight=False)
    if not result.valid:
        raise EvolveError(f"the initial program of {problem.name!r} is invalid at stage {result.stage}: "
                          f"{_shown(' '.join(result.feedback.split()), 300)}")
    _check_determinism(problem, evaluator, result, evaluate_program(evaluator, sandbox, initial, problem.limits,
                                                                    problem.stage_limits))
    for split in evaluator.reference_splits:
        started = time.monotonic()
        rows = evaluator.references(split)
        if not rows:
            continue
        table = Table(*rows[0].keys(), title=f"{problem.name}: references on the {split} split "
                                              f"({time.monotonic() - started:.1f} s)")
        for row in rows:
            table.add_row(*(f"{100 * v:.0f}%" if k == "feasible" and v is not None else _format(v)
                            for k, v in row.items()))
        _out.print(table)


def _check_determinism(problem, evaluator, first, second) -> None:
    """Say whether two scorings of the initial program agree; raise (one line) when they must and do not."""
    from evaluators import first_difference
    from evolve.engine.preflight import nondeterminism

    failure = nondeterminism(problem, first, second, evaluator.timing_metrics)
    if failure:
        raise EvolveError(failure)
    difference = first_difference(first, second, evaluator.timing_metrics, problem.direction)
    if problem.repeats > 1:
        _out.print(f"noisy by declaration (repeats: {problem.repeats}, each would-be best is scored that often and "
                   f"ranked on the mean): scored twice, {difference or 'the same'}", markup=False, highlight=False)
    else:
        timing = f" ({', '.join(evaluator.timing_metrics)} aside: they time the machine)" \
            if evaluator.timing_metrics else ""
        _out.print(f"deterministic: the initial program scored twice, the same{timing}", markup=False,
                   highlight=False)


def active_seconds(times: list, idle_after: float = 300.0) -> float:
    """Seconds between the first and last of `times` (datetimes), less gaps over `idle_after` (between resumes)."""
    ordered = sorted(times)
    gaps = ((b - a).total_seconds() for a, b in itertools.pairwise(ordered))
    return sum(gap for gap in gaps if gap <= idle_after)


def _read(run_dir: str, indexes: bool = True):
    """A run dir's path, config and database opened read-only."""
    from evolve.storage.rundir import load_config, open_database

    config = load_config(run_dir)
    return Path(run_dir), config, open_database(config, run_dir, read_only=True, indexes=indexes)


def _status(args: argparse.Namespace) -> None:
    """Running, finished, interrupted or failed, and the figures (evolve.observe.status; --json: its schema)."""
    from evolve.observe.status import read_status

    if args.json:  # plain text, whatever the terminal: it is for programs
        sys.stdout.write(json.dumps(read_status(args.run_dir).to_json(), indent=2) + "\n")
        return
    from evolve.cli.status_view import render, watch

    if args.watch is None:
        _out.print(render(read_status(args.run_dir)))
        return
    try:
        watch(args.run_dir, args.watch, _out)
    except KeyboardInterrupt:
        sys.exit(130)


def _best(args: argparse.Namespace) -> None:
    from evolve.observe.aggregates import current, top_programs
    from evolve.program import NODE_METRIC

    run_dir, config, db = _read(args.run_dir, indexes=False)  # two programs: no index needed
    with db:
        best, initial = (db.get(top.id) if top else None for top in top_programs(db, current(db)))
    if best is None:
        raise RunDirError(f"{run_dir} holds no valid program")
    if args.code:
        _out.print(best.code, markup=False, highlight=False, end="")
        return
    from evaluators.direction import natural

    direction = config.problem.direction

    def shown(value):  # the value as the problem states it (a minimised one was negated inside)
        return natural(value, direction)

    where = f", evaluated on Ray node {best.metrics[NODE_METRIC]}" if NODE_METRIC in best.metrics else ""
    _out.print(f"best program {best.id}: score {shown(best.score):.6g} (initial {shown(initial.score):.6g}, "
               f"{direction}) at iteration {best.iteration}, generation {best.generation}, by {best.proposer}{where}")
    validation = best.validation or {}
    table = Table("", "train (fitness)", "validation (held out)", "initial: train", "initial: validation")
    first = (initial.validation or {}).get("metrics", {})
    table.add_row("score", _format(shown(best.score)), _format(shown(validation.get("score"))),
                  _format(shown(initial.score)), _format(shown((initial.validation or {}).get("score"))))
    for key in sorted(k for k in best.metrics if "." not in k):
        table.add_row(key, _format(best.metrics[key]), _format(validation.get("metrics", {}).get(key)),
                      _format(initial.metrics.get(key)), _format(first.get(key)))
    _out.print(table)
    if best.validation is None:
        _out.print("  (no validation figures: the problem has no held-out data, or validation has not finished)")
    if best.feedback:
        _out.print(f"  feedback: {_shown(best.feedback)}", markup=False, highlight=False)
    _out.print(f"code: {run_dir / 'best.py'} (or `evolve best {run_dir} --code`)")


def _report(args: argparse.Namespace) -> None:
    from evolve.ui.report import write_report

    run_dir, config, db = _read(args.run_dir)
    with db:
        path = write_report(run_dir, db, config)
    _out.print(f"report: {path}")


def _ui(args: argparse.Namespace) -> None:
    from evolve.ui.server import make_server

    token = "" if args.no_token else args.token or os.environ.get("EVOLVE_UI_TOKEN") or None
    server = make_server(args.path, args.host, args.port, token)
    runs = len(server.sources)
    _out.print(f"evolve ui: {server.url} ({runs} run dir{'s' if runs != 1 else ''} under {args.path}, "
               "read-only); Ctrl-C stops it", markup=False, highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _resume(args: argparse.Namespace) -> None:
    from evolve.cli.overrides import check_overrides
    from evolve.observe import aggregates
    from evolve.storage.rundir import load_config, open_database, upgrade_database, write_config

    check_overrides(args.overrides, groups=False)
    run_dir, config = Path(args.run_dir), load_config(args.run_dir, args.overrides)
    lock = RunLock(run_dir).acquire()  # a campaign still running is refused before anything is written
    try:
        upgrade_database(config, run_dir)  # fails clearly when there is nothing to resume
        with open_database(config, run_dir, read_only=True, indexes=False) as db:  # and with no such campaign
            resumed_at = aggregates.figures(aggregates.current(db)).iterations
        if args.overrides:
            write_config(config, run_dir)
    except BaseException:
        lock.release()
        raise
    _run_campaign(config, run_dir, lock, resumed_at)


def _upgrade(args: argparse.Namespace) -> None:
    from evolve.storage._orm import head
    from evolve.storage.rundir import load_config, upgrade_database

    missing = upgrade_database(load_config(args.run_dir), args.run_dir)
    _out.print(f"{args.run_dir}: " + (f"added {', '.join(missing)}; at schema revision {head()}" if missing
                                      else f"already up to date (schema revision {head()})"))


def _repair(args: argparse.Namespace) -> None:
    """Salvage every readable row of a damaged programs.db into a new one, keeping the damaged file beside it."""
    from evolve.storage.repair import TABLES, is_damaged, repair
    from evolve.storage.rundir import DATABASE, load_config

    run_dir = Path(args.run_dir)
    config = load_config(run_dir, find_problem=False)
    if config.database.url is not None and not config.database.url.startswith("sqlite"):
        raise EvolveError(f"{run_dir}: `evolve repair` mends SQLite files; this campaign's database is "
                          f"{config.database.url.split('@')[-1]}: use the server's own tools")
    path = Path(config.database.url.split(":///", 1)[1]) if config.database.url else run_dir / DATABASE
    if not path.is_file():
        raise RunDirError(f"{run_dir} has no {path.name}: nothing to repair")
    lock = RunLock(run_dir).acquire()  # never under a running campaign
    try:
        problem = is_damaged(path)
        if problem is None and not args.force:
            _out.print(f"{path} is not damaged (SQLite's quick_check: ok); nothing done (--force copies it anyway)",
                       markup=False, highlight=False)
            return
        salvage = repair(path)
    finally:
        lock.release()
    saved = ", ".join(f"{salvage.saved.get(t, 0)} {t}" for t in TABLES)
    lost = sum(salvage.skipped.values())
    _out.print(f"repaired {path} ({problem or 'forced'}): saved {saved} ({salvage.method}"
               f"{f'; {lost} rows refused: their campaign, call or program was lost' if lost else ''}); the damaged "
               f"file is kept as {salvage.damaged}; continue with `evolve resume {run_dir}`", markup=False,
               highlight=False)


def _doctor(args: argparse.Namespace) -> None:
    """The sandbox's layer report, what a session costs, and with --attacks the attack suite's outcomes."""
    from evaluators import evaluate_program
    from evolve.config import SandboxConfig, SandboxLimits
    from evolve.evaluation.sandboxing import make_sandbox
    from evolve.testing.attacks import ATTACKS, HELD_IF_VALID, HONEST, ContractEvaluator

    sandbox = make_sandbox(SandboxConfig(kind=args.sandbox))
    layers = sandbox.layers()
    table = Table("layer", "state", title=f"sandbox={args.sandbox}")
    missing = 0
    for name, state in layers.items():
        missing += "NOT" in state
        table.add_row(name, state if "NOT" not in state else f"[bold red]{state}[/]")
    _out.print(table)
    view = layers.get("filesystem", "").partition(";")[0]
    if view.startswith("a new root holding only "):
        seen = Table("path", title="what a candidate can see (read-only; its scratch dir is its own)")
        for path in view.removeprefix("a new root holding only ").split(", "):
            seen.add_row(path)
        _out.print(seen)
    limits = SandboxLimits(call_timeout=2, wall_seconds=10, cpu_seconds=5, memory_mb=512, max_processes=32,
                           file_size_mb=8, max_result_bytes=1_000_000)
    started = time.perf_counter()
    for _ in range(20):
        evaluate_program(ContractEvaluator(), sandbox, HONEST, limits)
    _out.print(f"an evaluation of three calls, sandbox session included: "
               f"{(time.perf_counter() - started) / 20 * 1000:.1f} ms")
    if missing:
        _out.print(f"[bold red]{missing} layer(s) not active[/]: candidates run with less protection here")
    if args.attacks:
        report = Table("attack", "category", "outcome", title="attack suite")
        for attack in ATTACKS:
            result = evaluate_program(ContractEvaluator(timeout=2.0), sandbox, attack.source, limits)
            held = result.valid if attack.name in HELD_IF_VALID else not result.valid
            why = "every trick failed; it answered honestly" if result.valid else \
                escape(_shown(" ".join(result.feedback.split()))[-110:])
            verdict = "contained: " if held else "[bold red]NOT contained: [/]"
            report.add_row(attack.name, attack.category, verdict + why)
        _out.print(report)
    close = getattr(sandbox, "close", None)
    if close is not None:
        close()


def _sandbox_build(args: argparse.Namespace) -> None:
    from evolve.config import SandboxConfig
    from sandboxes.docker import DEFAULT_IMAGE, PYTHON_IMAGE, build_image

    image = args.image or (PYTHON_IMAGE if args.interpreter else DEFAULT_IMAGE)
    packages = None
    if args.interpreter:  # by default what every problem here and the fork server's preload may import
        from evolve.problems import discover

        packages = args.packages or sorted({*SandboxConfig().preload,
                                            *(p for problem in discover().values() for p in problem.packages)})
    try:
        image_id = build_image(image, packages=packages)
    except ValueError as exc:  # a package that is not installed here
        raise EvolveError(f"could not build {image}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 (the docker SDK's errors: no engine, no permission)
        raise EvolveError(f"could not build {image}: {exc}; is dockerd running?") from None
    inside = f" with this interpreter and {', '.join(packages)}" if packages is not None else ""
    use = (f"; use it with sandbox=docker sandbox.interpreter=image sandbox.image={image}"
           if packages is not None else "")
    _out.print(f"built {image} ({image_id[:19]}){inside} locally, without a registry{use}")


def _problems(_: argparse.Namespace) -> None:
    from evolve.problems import discover

    table = Table("problem", "description", "folder")
    for name, problem in sorted(discover().items()):
        table.add_row(name, problem.description, problem.directory)
    _out.print(table)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `evolve` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        _main(argv)
    except _ONE_LINE_ERRORS as exc:
        _console.print(f"evolve: {_shown(exc)}", markup=False, highlight=False)
        _end(1)
    except SystemExit as exc:
        _end(exc.code)
    except Exception as exc:  # a database that fails outside the store's care (an unreachable server): one line
        from evolve.storage.faults import translate

        error = translate(exc)
        if error is None:
            raise
        _console.print(f"evolve: {error}", markup=False, highlight=False)
        _end(1)
    _end(0)


def _end(code: int | str | None) -> None:
    """Exit with `code`; after a campaign at once (`evolve.evaluation.shutdown`), else the usual way."""
    if isinstance(code, str):
        _console.print(code, markup=False, highlight=False)
        code = 1
    if _campaigns_run:
        from evolve.evaluation.shutdown import exit_now

        exit_now(code or 0)
    sys.exit(code)


def _problem_folders(args: list[str]) -> list[str]:
    """`problem=path/to/folder` becomes `problem=<its name>`, the folder registered for Hydra."""
    from evolve.problems import is_folder_spec, resolve

    out = []
    for arg in args:
        key, eq, value = arg.partition("=")
        if eq and key.lstrip("+") == "problem" and is_folder_spec(value):
            arg = f"{key}={resolve(value).name}"
        out.append(arg)
    return out


def _check_overrides(args: list[str]) -> None:
    """One line (`ConfigError`) for an override that does not fit the config, before Hydra reads them."""
    from evolve.cli.overrides import check_overrides, hydra_overrides

    overrides = hydra_overrides(args)
    if overrides is not None:
        check_overrides(overrides)


def _new_problem(args: argparse.Namespace) -> None:
    from evolve.cli.scaffold import new_problem

    made = new_problem(args.name, Path(args.dir) if args.dir else Path("."))
    folder = str(made) if made.is_absolute() else f"./{made}"  # `problem=./NAME`: a folder, not a name
    _out.print(f"wrote {folder}: config.yaml, initial.py, evaluator.py, README.md, test_contract.py\n"
               f"  python {folder}/test_contract.py       # the evaluator's contract (pytest runs it too, "
               "from pip install 'evolve[test]')\n"
               f"  evolve check problem={folder}\n  evolve run problem={folder} budget.iterations=20",
               markup=False, highlight=False)


def _seconds(text: str) -> float:
    """A positive number of seconds (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds, e.g. --watch 5")
    return value


def _main(argv: list[str]) -> None:
    if argv and argv[0] in ("run", "check"):
        argv = [argv[0], *_problem_folders(argv[1:])]
    if argv and argv[0] == "run":
        _check_overrides(argv[1:])
        sys.argv = [f"{Path(sys.argv[0]).name} run", *argv[1:]]
        _hydra_run()
        return
    if argv and argv[0] == "check":
        rest, test_program = argv[1:], None
        again = "--again" in rest
        rest = [a for a in rest if a != "--again"]
        if "--test" in rest:
            at = rest.index("--test")
            if at + 1 >= len(rest):
                _console.print("evolve: --test needs a program file or a run dir")
                sys.exit(2)
            test_program = rest[at + 1]
            rest = rest[:at] + rest[at + 2:]
        _check_overrides(rest)
        sys.argv = [f"{Path(sys.argv[0]).name} check", *rest, "hydra.output_subdir=null", "hydra.run.dir=."]
        _hydra_check(test_program, again)
        return
    parser = argparse.ArgumentParser(prog="evolve", description="Evolve programs against an evaluator.",
                                     epilog="Start a campaign with `evolve run [OVERRIDE ...]` "
                                            "(see `evolve run --help`).")
    verbs = parser.add_subparsers(dest="verb", required=True,
                                  metavar="{run,check,resume,status,best,report,ui,upgrade,repair,doctor,sandbox,problems,"
                                          "new-problem}")
    verbs.add_parser("run", help="start a campaign (Hydra overrides; see `evolve run --help`)")
    verbs.add_parser("check", help="sandbox layers, the initial program and the problem's references "
                                   "(Hydra overrides; --test PROGRAM scores a program on the test data)")
    p = verbs.add_parser("resume", help="continue a campaign from its database")
    p.add_argument("run_dir")
    p.add_argument("overrides", nargs="*", help="KEY=VALUE changes, e.g. budget.iterations=400")
    p.set_defaults(func=_resume)
    p = verbs.add_parser("upgrade", help="bring a run's database written by an older evolve up to date")
    p.add_argument("run_dir")
    p.set_defaults(func=_upgrade)
    p = verbs.add_parser("repair", help="salvage every readable row of a damaged programs.db into a new file")
    p.add_argument("run_dir")
    p.add_argument("--force", action="store_true", help="copy the rows into a new file even when none is damaged")
    p.set_defaults(func=_repair)
    p = verbs.add_parser("status", help="running, finished, interrupted or failed; counts, scores and rates")
    p.add_argument("run_dir")
    p.add_argument("--watch", nargs="?", type=_seconds, const=2.0, metavar="SECONDS",
                   help="refresh every SECONDS (default 2) until the campaign stops")
    p.add_argument("--json", action="store_true", help="print the status as JSON (schema: `evolve.observe.status`)")
    p.set_defaults(func=_status)
    p = verbs.add_parser("best", help="the best program of a campaign")
    p.add_argument("run_dir")
    p.add_argument("--code", action="store_true", help="print only its source")
    p.set_defaults(func=_best)
    p = verbs.add_parser("report", help="write report.html for a campaign")
    p.add_argument("run_dir")
    p.set_defaults(func=_report)
    p = verbs.add_parser("ui", help="a local web view of campaigns: curves, MAP-Elites maps, lineage, code, prompts")
    p.add_argument("path", nargs="?", default="runs", help="a run dir, or a folder of them (default: runs)")
    p.add_argument("--port", type=int, default=8470, help="port to listen on (default: 8470; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only; "
                   "any other needs a token)")
    p.add_argument("--token", help="the token a request must show (default: $EVOLVE_UI_TOKEN, else a random one "
                   "printed in the URL when --host is not loopback)")
    p.add_argument("--no-token", action="store_true", help="no token (refused unless --host is loopback)")
    p.set_defaults(func=_ui)
    p = verbs.add_parser("doctor", help="the sandbox's protection layers and what a session costs")
    p.add_argument("--sandbox", default="process", help="the backend to examine (default: process)")
    p.add_argument("--attacks", action="store_true", help="also run the attack suite and show each outcome")
    p.set_defaults(func=_doctor)
    p = verbs.add_parser("sandbox", help="sandbox images: `evolve sandbox build`")
    p.add_argument("action", choices=["build"])
    p.add_argument("--image", help="image name (default: evolve-sandbox:local, with --interpreter "
                                   "evolve-sandbox:python)")
    p.add_argument("--interpreter", action="store_true",
                   help="put this interpreter and the packages inside the image (sandbox.interpreter=image), so nodes "
                        "need not share its paths")
    p.add_argument("--packages", nargs="+", metavar="NAME",
                   help="with --interpreter: the packages inside (default: every problem's packages and numpy)")
    p.set_defaults(func=_sandbox_build)
    p = verbs.add_parser("problems", help="the available problems")
    p.set_defaults(func=_problems)
    p = verbs.add_parser("new-problem", help="write a working problem folder and its contract test")
    p.add_argument("name", help="the problem's name (a Python identifier)")
    p.add_argument("--dir", help="where to create the folder NAME (default: the current directory)")
    p.set_defaults(func=_new_problem)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
