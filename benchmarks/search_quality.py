"""Search quality: what campaigns find after N proposals, against each problem's reference (issue 22).

    .venv/bin/python benchmarks/search_quality.py                                    # every problem, 3 seeds, 200
    .venv/bin/python benchmarks/search_quality.py --problems circle_packing --proposals 500 \\
        --population islands,tournament                                                # the two strategies side by side
    .venv/bin/python benchmarks/search_quality.py --problems openevolve_minimise \\
        --llm-base-url http://127.0.0.1:8000/v1 --llm-model qwen                      # and OpenEvolve 0.4.0, same model

Each campaign is a real `evolve run problem=P seed=S budget.iterations=N database.population=STRATEGY` in a
run dir of its own (under --work, default a temporary folder). Per campaign: the best score after a quarter,
half, three quarters and all of the proposals (train), the best program's validation score (recorded by the
campaign) and its test score, taken once at the end through `evolve check --test RUN_DIR`; the initial
program's scores on the same splits; the share of the headroom captured, (best - initial) / (reference -
initial) in natural units (any direction), against the reference the problem's evaluator declares per split
(`Evaluator.reference_scores(split)`: circle packing's best known 2.635, warehouse's exact optimum,
FunSearch's published bin-packing heuristics, AlphaEvolve's published Borg score); the shares of proposals
applied and duplicate (or similar), of evaluated children valid, evaluations per second; and per move kind
(the proposal's `choice`, e.g. the offline engine's `constant+term`) the proposals, applied, valid and
improved (better than the parent) children and new bests. A problem without a reference, or an unknown one,
is refused in one line before anything runs.

With an OpenAI-compatible endpoint (--llm-base-url, --llm-model), evolve's campaigns use that model, and
OpenEvolve 0.4.0 from PyPI (its own virtualenv, `vs_openevolve.openevolve_python`) runs the same problem
with the same model, seed and number of proposals: an OpenEvolve-style problem with its own evaluator file,
a built-in problem through a bridge evaluator that scores each program with evolve's evaluator in its
sandbox (`--score-program`). OpenEvolve's best is then scored by evolve's evaluator on every split, as
evolve's are. Prints a markdown table (one row per problem and strategy: the median and each seed) with
the load average before and after, and writes everything as JSON (--json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from process_tree import run_tree

__all__ = ["PROBLEMS", "BenchmarkError", "Options", "headroom", "main", "run_benchmark", "table"]

PROBLEMS = {
    "circle_packing": "circle_packing",
    "warehouse_tsp": "warehouse_tsp",
    "bin_packing": "bin_packing",
    "cluster_scheduling": "cluster_scheduling",
    "openevolve_minimise": str(ROOT / "tests" / "openevolve_example"),  # through the OpenEvolve adapter
}
SPLITS = ("train", "val", "test")
EVOLVE = Path(sys.executable).with_name("evolve")
UNAPPLIED = ("edit_failed", "proposal_failed")


class BenchmarkError(Exception):
    """Bad input, said in one line: an unknown problem, a problem without a reference, a bad option."""


@dataclass(frozen=True)
class Options:
    """What to run: problems (names of `PROBLEMS`, folders or installed problems), seeds, proposals per
    campaign, population strategies, extra overrides, and optionally a model endpoint for both tools."""

    problems: Sequence[str] = ("circle_packing",)
    seeds: Sequence[int] = (0, 1, 2)
    proposals: int = 200
    populations: Sequence[str] = ("islands",)
    overrides: Sequence[str] = ()
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key_env: str | None = None
    timeout: float = 3600.0
    work: Path | None = None


@dataclass
class Problem:
    """A problem as the benchmark uses it: how to name it to evolve, its composed config, its references."""

    name: str
    arg: str
    config: Any
    references: dict[str, tuple[str, float] | None] = field(default_factory=dict)
    has_validation: bool = False
    has_test: bool = False


def headroom(best: float | None, initial: float | None, reference: float | None) -> float | None:
    """(best - initial) / (reference - initial): 1 at the reference, above 1 beyond it; None if undefined."""
    if best is None or initial is None or reference is None or reference == initial:
        return None
    return (best - initial) / (reference - initial)


def _reference(evaluator: Any, split: str) -> tuple[str, float] | None:
    """The evaluator's first reference score on `split` (natural units), or None."""
    try:
        scores = evaluator.reference_scores(split) if split != "train" else evaluator.reference_scores()
    except (TypeError, KeyError):  # an evaluator whose references know no splits, or not this one
        return None
    return next(((str(k), float(v)) for k, v in scores.items()), None)


def resolve_problem(name: str, overrides: Sequence[str] = ()) -> Problem:
    """The problem `name` with its references; a one-line `BenchmarkError` when unknown or without one."""
    from evaluators import Evaluator
    from evolve.api import compose
    from evolve.errors import EvolveError
    from evolve.problems import build_evaluator

    arg = PROBLEMS.get(name, name)
    try:
        config = compose(arg, overrides)
    except EvolveError as exc:
        said = " ".join(str(exc).split())
        raise BenchmarkError((said if said.startswith("unknown problem") else f"problem {name!r}: {said}")
                             + f"; the benchmark's problems: {', '.join(PROBLEMS)}") from None
    evaluator = build_evaluator(config.problem, run_seed=config.seed)
    train = _reference(evaluator, "train")
    if train is None:
        raise BenchmarkError(f"problem {name!r} has no reference score: its evaluator's reference_scores() is empty; "
                             "give it one (a best known, an optimum, a published result) to measure headroom against")
    cls = type(evaluator)
    problem = Problem(name, arg, config, has_validation=cls.validate is not Evaluator.validate,
                      has_test=cls.test is not Evaluator.test)
    problem.references = {"train": train, "val": _reference(evaluator, "val") if problem.has_validation else None,
                          "test": _reference(evaluator, "test") if problem.has_test else None}
    return problem


def check_population(name: str, problem: Problem) -> None:
    """Refuse (one line) a `database.population` strategy that evolve cannot build."""
    import dataclasses

    from evolve.errors import EvolveError
    from evolve.population import make_population

    try:
        make_population(dataclasses.replace(problem.config.database, population=name))
    except EvolveError as exc:
        raise BenchmarkError(f"--population {name}: {' '.join(str(exc).split())}") from None


def held_out(problem: Problem, seed: int, code: str, split: str) -> float | None:
    """`code`'s natural score on `split` (train, val or test) with the problem's evaluator and sandbox."""
    from evaluators import evaluate_held_out, evaluate_program
    from evaluators.direction import natural
    from evolve.evaluation.sandboxing import make_sandbox
    from evolve.problems import load_evaluator

    config = problem.config.problem
    evaluator = load_evaluator(config, run_seed=seed)
    sandbox = make_sandbox(problem.config.sandbox, config)
    if split == "train":
        result = evaluate_program(evaluator, sandbox, code, config.limits, config.stage_limits)
    else:
        result = evaluate_held_out(evaluator, sandbox, code, config.limits, "validate" if split == "val" else "test")
    return natural(result.score, config.direction) if result is not None and result.valid else None


def _llm_overrides(options: Options) -> list[str]:
    if not options.llm_base_url:
        return []
    return ["llm=openai", f"llm.base_url={options.llm_base_url}", f"llm.model={options.llm_model}",
            f"llm.api_key_env={options.llm_api_key_env or 'null'}"]


def move_kinds(run_dir: Path) -> dict[str, dict[str, int]]:
    """Per move kind (each `+`-part of a program's `choice`): proposals, applied, valid, improved, new bests."""
    with sqlite3.connect(f"file:{run_dir / 'programs.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT p.iteration, p.status, p.score, p.choice, q.score FROM programs p "
                          "LEFT JOIN programs q ON p.parent_id = q.id ORDER BY p.id").fetchall()
    kinds: dict[str, dict[str, int]] = {}
    best = None
    for iteration, status, score, choice, parent in rows:
        if iteration == 0:
            best = score if status == "valid" else best
            continue
        new_best = status == "valid" and score is not None and (best is None or score > best)
        best = score if new_best else best
        for kind in dict.fromkeys((choice or "(not recorded)").split("+")):
            k = kinds.setdefault(kind, dict.fromkeys(("proposals", "applied", "valid", "improved", "new_bests"), 0))
            k["proposals"] += 1
            k["applied"] += status not in UNAPPLIED
            k["valid"] += status == "valid"
            # engine scores: higher is better
            k["improved"] += status == "valid" and parent is not None and score > parent
            k["new_bests"] += new_best
    return kinds


def _best_after(run, proposals: int) -> dict[str, float | None]:
    """The best natural train score among programs of iteration <= k, for k at each quarter of the budget."""
    sign = -1.0 if run.direction == "minimize" else 1.0
    valid = [(p.iteration, p.score) for p in run.programs(status="valid")]
    out = {}
    for k in sorted({max(1, proposals * q // 4) for q in (1, 2, 3, 4)}):
        scores = [s for i, s in valid if i <= k]
        out[str(k)] = sign * max(sign * s for s in scores) if scores else None
    return out


def read_campaign(problem: Problem, run_dir: Path, proposals: int) -> dict[str, Any]:
    """Figures of one finished run dir: scores by split, shares, rate, move kinds."""
    import evolve

    status = json.loads(subprocess.run([str(EVOLVE), "status", str(run_dir), "--json"], capture_output=True,
                                       text=True, check=True).stdout)
    counts = status["programs"]
    done = max(status["iterations"]["done"], 1)
    applied = sum(m.get("applied", 0) for m in status.get("models", []))
    with evolve.open_run(run_dir) as run:
        best, initial = run.best, run.initial
        validation = (best.validation or {}) if best else {}
        figures = {
            "iterations": status["iterations"]["done"], "stop": status.get("reason"),
            "initial": {"train": initial.score if initial else None,
                        "val": (initial.validation or {}).get("score") if initial else None},
            "best": {"train": best.score if best else None, "val": validation.get("score"),
                     "iteration": best.iteration if best else None},
            "best_after": _best_after(run, proposals),
            "best_code": best.code if best else None, "initial_code": initial.code if initial else None,
        }
    evaluated = status["valid_share"]["evaluated"]
    figures.update({
        "counts": counts,
        "shares": {"applied": applied / done,
                   "duplicate": (counts.get("duplicate", 0) + counts.get("similar", 0)) / done,
                   "valid": status["valid_share"]["valid"] / evaluated if evaluated else None,
                   "invalid": counts.get("invalid", 0) / evaluated if evaluated else None},
        "evaluations_per_second": status.get("evaluations_per_second"),
        "active_seconds": status.get("active_seconds"),
        "move_kinds": move_kinds(run_dir),
    })
    return figures


def test_once(problem: Problem, seed: int, overrides: Sequence[str], run_dir: Path) -> float | None:
    """The best program's test score, through `evolve check --test RUN_DIR` (recorded in test_result.json)."""
    if not problem.has_test or not (run_dir / "best.py").is_file():
        return None
    subprocess.run([str(EVOLVE), "check", f"problem={problem.arg}", f"seed={seed}", *overrides, "--test",
                    str(run_dir)], capture_output=True, text=True, check=False, cwd=run_dir)
    record = run_dir / "test_result.json"
    if not record.is_file():
        return None
    result = json.loads(record.read_text())
    return result.get("score") if result.get("valid") else None


def campaign(problem: Problem, seed: int, population: str, options: Options, work: Path,
             initial_scores: dict[tuple[str, int], dict[str, float | None]]) -> dict[str, Any]:
    """One `evolve run` and its figures (train, validation and, once, test), with headroom per split."""
    run_dir = work / problem.name / population / f"seed{seed}"
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    overrides = [f"database.population={population}", *options.overrides, *_llm_overrides(options)]
    load = os.getloadavg()
    tree = run_tree([str(EVOLVE), "run", f"problem={problem.arg}", f"seed={seed}",
                     f"budget.iterations={options.proposals}", f"hydra.run.dir={run_dir}", *overrides],
                    run_dir.parent, run_dir.parent / f"seed{seed}.log", options.timeout, interval=1.0)
    out: dict[str, Any] = {"tool": "evolve", "problem": problem.name, "population": population, "seed": seed,
                           "run_dir": str(run_dir), "returncode": tree.returncode, "timed_out": tree.timed_out,
                           "wall_seconds": tree.exited - tree.started, "load_before": load,
                           "load_after": os.getloadavg()}
    if not (run_dir / "programs.db").is_file():
        out["ok"] = False
        out["output_tail"] = (run_dir.parent / f"seed{seed}.log").read_text(errors="replace")[-1500:]
        return out
    out.update(read_campaign(problem, run_dir, options.proposals))
    out["ok"] = tree.returncode == 0 and not tree.timed_out
    out["best"]["test"] = test_once(problem, seed, overrides[:1 + len(options.overrides)], run_dir)
    _fill_initial(problem, seed, out, initial_scores)
    return out


def _fill_initial(problem: Problem, seed: int, out: dict[str, Any],
                  cache: dict[tuple[str, int], dict[str, float | None]]) -> None:
    """The initial program's score on every split (scored here where the run did not record it), headroom."""
    known = cache.setdefault((problem.name, seed), {})
    for split in SPLITS:
        if out["initial"].get(split) is None and split not in known and out.get("initial_code"):
            wanted = split == "train" or (split == "val" and problem.has_validation) or \
                (split == "test" and problem.has_test)
            known[split] = held_out(problem, seed, out["initial_code"], split) if wanted else None
        if out["initial"].get(split) is None:
            out["initial"][split] = known.get(split)
    out["headroom"] = {s: headroom(out["best"].get(s), out["initial"].get(s),
                                   (problem.references.get(s) or (None, None))[1])
                       for s in SPLITS}
    out.pop("initial_code", None)
    out.pop("best_code", None)


def run_benchmark(options: Options, log=print) -> dict[str, Any]:
    """Resolve every problem (refusing bad ones before anything runs), run the campaigns, return the figures."""
    if options.proposals < 1:
        raise BenchmarkError(f"--proposals {options.proposals}: give at least 1")
    if not options.seeds:
        raise BenchmarkError("--seeds is empty: give at least one seed, e.g. --seeds 0,1,2")
    if bool(options.llm_base_url) != bool(options.llm_model):
        raise BenchmarkError("--llm-base-url and --llm-model go together: give both, or neither for the offline engine")
    problems = [resolve_problem(name, options.overrides) for name in options.problems]
    for population in options.populations:
        check_population(population, problems[0])
    work = (options.work or Path(tempfile.mkdtemp(prefix="search-quality-"))).resolve()
    result: dict[str, Any] = {
        "schema": 1, "code": _code_state(), "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        "proposals": options.proposals, "seeds": list(options.seeds), "populations": list(options.populations),
        "overrides": list(options.overrides), "llm": {"base_url": options.llm_base_url, "model": options.llm_model},
        "work": str(work), "load_start": os.getloadavg(),
        "problems": {p.name: {"arg": p.arg, "direction": p.config.problem.direction,
                              "references": {s: (list(r) if r else None) for s, r in p.references.items()}}
                     for p in problems},
        "runs": [],
    }
    initial_scores: dict[tuple[str, int], dict[str, float | None]] = {}
    for problem in problems:
        for population in options.populations:
            for seed in options.seeds:
                run = campaign(problem, seed, population, options, work, initial_scores)
                result["runs"].append(run)
                log(f"{problem.name} {population} seed {seed}: " + _one_line(run))
        if options.llm_base_url:
            from openevolve_side import run_openevolve

            for seed in options.seeds:
                run = run_openevolve(problem, seed, options, work, held_out)
                _fill_initial(problem, seed, run, initial_scores)
                result["runs"].append(run)
                log(f"{problem.name} openevolve seed {seed}: " + _one_line(run))
    result["load_end"] = os.getloadavg()
    return result


def _one_line(run: dict[str, Any]) -> str:
    if not run.get("best"):
        return f"FAILED (rc {run.get('returncode')}): {run.get('output_tail', '')[-300:]}"
    best, h = run["best"], run["headroom"]
    return (f"best {_num(best.get('train'))} train, {_num(best.get('val'))} val, {_num(best.get('test'))} test; "
            f"headroom {_pct(h.get('train'))} / {_pct(h.get('val'))} / {_pct(h.get('test'))}; "
            f"{run.get('wall_seconds', 0):.0f} s, load {run['load_before'][0]:.1f} -> {run['load_after'][0]:.1f}")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _median(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def table(result: dict[str, Any]) -> str:
    """The markdown tables: one row per problem and strategy (median, then each seed), and the move kinds."""
    header = (f"{result['code']}; {result['proposals']} proposals per campaign; seeds "
              f"{', '.join(map(str, result['seeds']))}; {result['machine']}; load average (1, 5, 15 min) at start "
              f"{', '.join(f'{x:.2f}' for x in result['load_start'])}, at end "
              f"{', '.join(f'{x:.2f}' for x in result.get('load_end', result['load_start']))}"
              + (f"; model {result['llm']['model']} at {result['llm']['base_url']}" if result["llm"]["model"]
                 else "; the offline engine")
              + (f"; overrides {' '.join(result['overrides'])}" if result["overrides"] else ""))
    lines = [header, "", ("| problem | strategy | reference | initial train | best train (median; seeds) "
                          "| best after 1/4, 1/2, 3/4 (median) | headroom train | headroom val | headroom test (once) "
                          "| applied | duplicate | valid | evals/s |"),
             "| --- | --- | --- | ---: | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: |"]
    groups: dict[tuple[str, str], list[dict]] = {}
    for run in result["runs"]:
        groups.setdefault((run["problem"], run.get("population") or run["tool"]), []).append(run)
    for (name, strategy), runs in groups.items():
        ok = [r for r in runs if r.get("best")]
        ref = result["problems"][name]["references"]["train"]

        def cell(get, fmt, ok=ok) -> str:
            values = [get(r) for r in ok]
            return f"{fmt(_median(values))} ({', '.join(fmt(v) for v in values)})" if values else "-"

        after = [f"{k}: {_num(_median([r['best_after'].get(k) for r in ok]))}"
                 for k in list(ok[0]["best_after"])[:-1]] if ok and ok[0].get("best_after") else []
        lines.append(
            f"| {name} | {strategy} | {ref[0]}: {_num(ref[1])} "
            f"| {cell(lambda r: r['initial']['train'], _num).split(' ')[0]} "
            f"| {cell(lambda r: r['best']['train'], _num)} | {', '.join(after) or '-'} "
            f"| {cell(lambda r: r['headroom']['train'], _pct)} | {cell(lambda r: r['headroom']['val'], _pct)} "
            f"| {cell(lambda r: r['headroom']['test'], _pct)} "
            f"| {_pct(_median([r.get('shares', {}).get('applied') for r in ok]))} "
            f"| {_pct(_median([r.get('shares', {}).get('duplicate') for r in ok]))} "
            f"| {_pct(_median([r.get('shares', {}).get('valid') for r in ok]))} "
            f"| {_rate(_median([r.get('evaluations_per_second') for r in ok]))} |")
        failed = len(runs) - len(ok)
        if failed:
            lines[-1] += f" {failed} of {len(runs)} runs failed"
    kinds = [(key, k, v) for key, runs in groups.items() for r in runs for k, v in (r.get("move_kinds") or {}).items()]
    if kinds:
        lines += ["", "Per move kind (the proposal's `choice`; summed over seeds):", "",
                  "| problem | strategy | move kind | proposals | applied | valid | improved on parent | new bests |",
                  "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        summed: dict[tuple, dict[str, int]] = {}
        for key, kind, counts in kinds:
            into = summed.setdefault((*key, kind), dict.fromkeys(counts, 0))
            for c, v in counts.items():
                into[c] += v
        for (name, strategy, kind), c in summed.items():
            lines.append(f"| {name} | {strategy} | {kind} | {c['proposals']} | {c['applied']} | {c['valid']} "
                         f"| {c['improved']} | {c['new_bests']} |")
    return "\n".join(lines)


def _code_state() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=False).stdout.strip()
    changed = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
                             check=False).stdout
    return f"evolve at {head or '?'} with {len(changed.splitlines())} changed or new files"


def score_program(problem_name: str, seed: int, overrides: Sequence[str], path: Path) -> dict[str, Any]:
    """A program file's train score with evolve's evaluator and sandbox (OpenEvolve's bridge calls this)."""
    problem = resolve_problem(problem_name, overrides)
    value = held_out(problem, seed, path.read_text(), "train")
    engine = None if value is None else (-value if problem.config.problem.direction == "minimize" else value)
    return {"valid": value is not None, "score": value, "engine_score": engine}


def _split(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default=",".join(PROBLEMS), help="comma-separated: " + ", ".join(PROBLEMS)
                        + " (or a problem folder)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated campaign seeds")
    parser.add_argument("--proposals", type=int, default=200, help="proposals per campaign (budget.iterations)")
    parser.add_argument("--population", default="islands", help="comma-separated database.population strategies, "
                        "e.g. islands,tournament")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for every campaign (repeatable)")
    parser.add_argument("--llm-base-url", default=None, help="an OpenAI-compatible endpoint for both tools")
    parser.add_argument("--llm-model", default=None)
    parser.add_argument("--llm-api-key-env", default=None,
                        help="the variable holding the endpoint's key (none: keyless)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before a campaign is killed")
    parser.add_argument("--work", type=Path, default=None, help="where run dirs go (default a temporary folder)")
    parser.add_argument("--json", type=Path, default=None, help="where to write the figures (default "
                        "runs/benchmarks/search_quality-<time>.json)")
    parser.add_argument("--report", type=Path, default=None, help="print the tables of a saved JSON and exit")
    parser.add_argument("--score-program", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in _split(args.seeds)]
    except ValueError:
        print(f"search_quality: --seeds {args.seeds!r}: give integers separated by commas, e.g. 0,1,2", file=sys.stderr)
        return 2
    try:
        if args.report:
            print(table(json.loads(args.report.read_text())))
            return 0
        if args.score_program:
            print(json.dumps(score_program(_split(args.problems)[0], seeds[0], args.override, args.score_program)))
            return 0
        options = Options(problems=_split(args.problems), seeds=seeds, proposals=args.proposals,
                          populations=_split(args.population), overrides=args.override, llm_base_url=args.llm_base_url,
                          llm_model=args.llm_model, llm_api_key_env=args.llm_api_key_env, timeout=args.timeout,
                          work=args.work)
        result = run_benchmark(options, log=lambda line: print(line, file=sys.stderr))
    except BenchmarkError as exc:
        print(f"search_quality: {exc}", file=sys.stderr)
        return 2
    path = args.json or ROOT / "runs" / "benchmarks" / f"search_quality-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    print(table(result))
    print(f"\nfigures: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
