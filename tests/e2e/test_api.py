"""`evolve.run` / `evolve.arun` / `evolve.open_run` from Python, on the session's Ray instance."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import evolve
from evolve.cli.scaffold import new_problem

pytestmark = pytest.mark.e2e
FAST = ["ray.num_workers=1", "progress=off"]


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_run_returns_the_best_its_lineage_and_a_read_only_handle(ray_address, tmp_path):
    run = evolve.run("circle_packing", ["budget.iterations=6", *FAST], run_dir=tmp_path / "run")
    assert run.result is not None and run.result.iterations == 6 and run.result.direction == "maximize"
    best = run.best
    assert best is not None and best.score == run.result.best_score and best.score >= run.initial.score
    chain = run.lineage(best)
    assert chain[0].id == best.id and chain[-1].iteration == 0 and chain[-1].parent_id is None
    assert all(child.parent_id == parent.id for child, parent in itertools.pairwise(chain))
    everything = run.programs()
    assert len(everything) == run.iterations + 1
    valid = run.programs(status="valid")
    assert valid and all(p.status.value == "valid" for p in valid)
    on_island_1 = run.programs(island=1)
    assert all(p.island == 1 for p in on_island_1) and len(on_island_1) < len(everything)
    assert (tmp_path / "run" / "campaign.log").read_text().count("campaign stopped") == 1
    run.close()

    before = snapshot(tmp_path / "run")
    with evolve.open_run(tmp_path / "run") as again:  # an earlier run, the same way
        assert again.result is None and again.best.id == best.id and again.lineage(best.id) == chain
        assert len(again.programs()) == len(everything) and again.best_validation is None  # no held-out data
    assert snapshot(tmp_path / "run") == before  # opening and reading wrote nothing at all


def test_run_inside_a_running_event_loop_and_arun(ray_address, tmp_path):
    async def notebook_cell():
        inside = evolve.run("circle_packing", ["budget.iterations=2", *FAST], run_dir=tmp_path / "a")
        awaited = await evolve.arun("circle_packing", ["budget.iterations=2", *FAST], run_dir=tmp_path / "b")
        return inside, awaited

    inside, awaited = asyncio.run(notebook_cell())
    assert inside.iterations == 2 and awaited.iterations == 2
    assert inside.best is not None and awaited.best is not None


def test_a_minimised_folder_problem_shows_natural_values(ray_address, tmp_path):
    folder = new_problem("api_minimised", tmp_path)
    run = evolve.run(folder, ["budget.iterations=8", *FAST], run_dir=tmp_path / "run")
    assert run.direction == "minimize"
    assert run.best.score > 0 and run.initial.score > 0  # a squared error, as the evaluator gave it
    assert run.best.score <= run.initial.score and run.result.best_score == run.best.score
    assert run.best.score == pytest.approx(run.best.metrics["mse"])
    assert run.best_validation["score"] > 0


def test_an_evaluator_defined_in_the_callers_main_reaches_the_workers(ray_address, tmp_path, cli_env):
    folder = new_problem("main_defined", tmp_path)
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        import evolve
        from evaluators import Evaluator, Score

        class Closeness(Evaluator):
            entrypoint = "predict"

            def __init__(self, seed=0, call_timeout=1.0):
                self.points = [0.5, 1.0, 2.0]

            def evaluate(self, candidate):
                got = candidate.call_many("predict", [[x] for x in self.points], timeout=1.0)
                return Score(value=sum(abs(g - 3 * x) for g, x in zip(got, self.points)),
                             metrics={{"defined_in": __name__}})

        run = evolve.run({str(folder)!r}, ["budget.iterations=3", "ray.num_workers=1",
                         "ray.address={ray_address}"], run_dir={str(tmp_path / 'run')!r}, evaluator=Closeness)
        print("BEST", run.best.score, run.best.metrics["defined_in"])
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=cli_env, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(line for line in out.stdout.splitlines() if line.startswith("BEST"))
    # the initial 0.5x: 8.75, minimised
    assert line.split()[2] == "__main__" and float(line.split()[1]) <= 2.5 * 3.5 + 1e-9


def test_new_bests_are_not_validated_once_the_problem_says_it_has_no_validation_data(ray_address, tmp_path, cli_env):
    folder, asked = new_problem("no_held_out", tmp_path), tmp_path / "asked.log"
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        import time
        import evolve
        from evaluators import Evaluator, Score

        class Later(Evaluator):
            entrypoint = "predict"

            def __init__(self, seed=0, call_timeout=1.0):
                pass

            def evaluate(self, candidate):
                candidate.call("predict", 1.0, timeout=1.0)
                return Score(value=-time.time())  # minimised: every valid program beats the ones before

            def validate(self, candidate):
                with open({str(asked)!r}, "a") as out:
                    out.write("asked\\n")
                return None  # no validation data

        run = evolve.run({str(folder)!r}, ["budget.iterations=8", "ray.num_workers=1",
                         "ray.address={ray_address}"], run_dir={str(tmp_path / 'run')!r}, evaluator=Later)
        print("VALID", len(run.programs(status="valid")))
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=cli_env, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    new_bests = (tmp_path / "run" / "campaign.log").read_text().count("new best")
    assert new_bests >= 2, out.stdout  # each would have been validated
    assert asked.read_text().splitlines() == ["asked"]  # the initial program's, which said there is none


def test_a_notebook_without_ray_runs_twice(tmp_path, cli_env):
    """In a running loop with no Ray yet: Ray is started on the caller's thread (its processes die with
    the thread that started them), so a second run in the same process still has it."""
    script = tmp_path / "notebook.py"
    script.write_text(textwrap.dedent("""
        import asyncio
        import evolve

        async def cell(n):
            return evolve.run("circle_packing", ["budget.iterations=2", "ray.num_workers=1", "ray.num_cpus=1"],
                              run_dir=f"run{n}")

        print("RUNS", asyncio.run(cell(1)).iterations, asyncio.run(cell(2)).iterations)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=cli_env, timeout=400,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RUNS 2 2" in out.stdout
