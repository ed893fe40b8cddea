"""OpenEvolve 0.4.0 on a problem of `search_quality.py`: same model, seed and proposals; its best scored by evolve.

An OpenEvolve-style problem (`evaluator: "openevolve:FILE"`) runs with its own evaluator file. Any other
problem runs through a bridge: an OpenEvolve evaluator file that asks `search_quality.py --score-program`
(evolve's interpreter, evaluator and sandbox) for each program's train score, so OpenEvolve never runs a
candidate itself. Its best program is then scored by evolve's evaluator on train, validation and test,
exactly as evolve's bests are.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from process_tree import run_tree
from vs_openevolve import openevolve_python

__all__ = ["run_openevolve"]

BRIDGE = '''"""OpenEvolve evaluator bridging to evolve's (search_quality.py --score-program): the program runs in
evolve's sandbox."""

import json
import subprocess

COMMAND = {command!r}


def evaluate(program_path):
    done = subprocess.run(COMMAND + [program_path], capture_output=True, text=True, check=False)
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {{"combined_score": -1e9, "error": (done.stderr or "no score")[-500:]}}
    if not result["valid"]:
        return {{"combined_score": -1e9, "error": "invalid in evolve's evaluator"}}
    return {{"combined_score": result["engine_score"], "score": result["score"]}}
'''


def _files(problem: Any, seed: int, options: Any, folder: Path) -> tuple[Path, Path, Path]:
    """OpenEvolve's initial program, evaluator file and config for `problem`, in `folder`."""
    from evolve.problems import read_initial_program

    config = problem.config.problem
    folder.mkdir(parents=True, exist_ok=True)
    initial = folder / "initial_program.py"
    initial.write_text(read_initial_program(config))
    spec = str(config.evaluator or "")
    if spec.startswith("openevolve:"):
        evaluator = Path(config.directory) / spec.split(":", 1)[1]
    else:
        evaluator = folder / "bridge_evaluator.py"
        command = [sys.executable, str(Path(__file__).with_name("search_quality.py")), "--problems", problem.arg,
                   "--seeds", str(seed), *(f"--override={o}" for o in options.overrides), "--score-program"]
        evaluator.write_text(BRIDGE.format(command=command))
    readme = Path(config.directory) / config.readme
    llm = problem.config.llm  # evolve's request settings (--override llm.*), so both tools ask alike
    settings = {
        "max_iterations": options.proposals, "random_seed": seed,
        "llm": {"api_base": options.llm_base_url, "models": [{"name": options.llm_model, "weight": 1.0}],
                "api_key": os.environ.get(options.llm_api_key_env or "", "none") or "none",
                # OpenEvolve's own defaults (60 s, 3 retries) abandon a slow local server's answers and
                # queue the retries behind them
                "temperature": llm.temperature, "max_tokens": llm.max_tokens, "timeout": int(llm.timeout),
                "retries": llm.max_retries},
        "evaluator": {"parallel_evaluations": 2, "timeout": int(config.limits.wall_seconds or 600)},
    }
    if readme.is_file():
        settings["prompt"] = {"system_message": readme.read_text()}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return initial, evaluator, path


def run_openevolve(problem: Any, seed: int, options: Any, work: Path,
                   held_out: Callable[[Any, int, str, str], float | None]) -> dict[str, Any]:
    """One OpenEvolve run on `problem`, and its best program's natural scores on every split."""
    folder = work / problem.name / "openevolve" / f"seed{seed}"
    initial, evaluator, config = _files(problem, seed, options, folder / "input")
    python = openevolve_python()
    load = os.getloadavg()
    tree = run_tree([str(python.parent / "openevolve-run"), str(initial), str(evaluator), "--config", str(config),
                     "--iterations", str(options.proposals), "--output", str(folder / "output")],
                    folder, folder / "output.log", options.timeout, interval=1.0)
    out: dict[str, Any] = {"tool": "openevolve", "problem": problem.name, "population": "openevolve-0.4.0",
                           "seed": seed, "run_dir": str(folder / "output"), "returncode": tree.returncode,
                           "timed_out": tree.timed_out, "wall_seconds": tree.exited - tree.started,
                           "load_before": load, "load_after": os.getloadavg()}
    best = folder / "output" / "best" / "best_program.py"
    if not best.is_file():
        out["ok"] = False
        out["output_tail"] = (folder / "output.log").read_text(errors="replace")[-1500:]
        return out
    info = folder / "output" / "best" / "best_program_info.json"
    code = best.read_text()
    out.update({
        "ok": tree.returncode == 0 and not tree.timed_out,
        "openevolve_best": json.loads(info.read_text()) if info.is_file() else None,
        "initial": {"train": None, "val": None}, "initial_code": initial.read_text(),
        "best": {"train": held_out(problem, seed, code, "train"),
                 "val": held_out(problem, seed, code, "val") if problem.has_validation else None,
                 "test": held_out(problem, seed, code, "test") if problem.has_test else None},
        "best_after": {},
    })
    return out
