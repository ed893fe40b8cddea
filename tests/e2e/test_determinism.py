"""A noisy evaluator: the contract suite and `evolve check` fail it in one line. Declared noisy (`repeats: 3`),
both accept it, and a campaign scores each would-be best three times and ranks it on the mean, whose
spread `evolve status` and the web view's program detail show."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from evolve.cli.scaffold import new_problem
from evolve.config import BudgetConfig, Config, DatabaseConfig, RayConfig, SandboxConfig
from evolve.engine.campaign import Campaign
from evolve.evaluation.local_pool import LocalPool
from evolve.observe.status import read_status
from evolve.problems import discover, get_problem, resolve
from evolve.program import ProgramStatus, score_spread
from evolve.storage.database import ProgramDatabase
from evolve.testing.contract import ContractSuite
from evolve.ui.data import program_detail

pytestmark = pytest.mark.e2e
NOISY = "value=mse * (1 + 0.05 * random.random()),"  # the scaffold's mean squared error, with a random share


@pytest.fixture
def noisy(tmp_path) -> Path:
    """A scaffolded problem folder whose evaluator adds noise to every score (its metrics stay exact)."""
    discover.cache_clear()
    folder = new_problem(f"noisy_{tmp_path.name[-10:].replace('-', '_')}", tmp_path)
    evaluator = folder / "evaluator.py"
    assert "value=mse," in evaluator.read_text()
    evaluator.write_text(evaluator.read_text().replace("value=mse,", NOISY))
    yield folder
    discover.cache_clear()


def declare_repeats(folder: Path, k: int) -> None:
    config = folder / "config.yaml"
    config.write_text(config.read_text().replace("direction: minimize", f"direction: minimize\nrepeats: {k}"))


def suite(folder: Path, tag: str) -> ContractSuite:
    """The author's contract test for `folder` (a class of its own: the suite caches its parts per class)."""
    return type(f"Contract_{tag}_{folder.name}", (ContractSuite,), {"problem": folder})()


def test_the_contract_suite_fails_a_noisy_evaluator_in_one_line_unless_it_declares_repeats(noisy):
    with pytest.raises(AssertionError) as caught:
        suite(noisy, "undeclared").test_deterministic()
    message = str(caught.value)
    assert "\n" not in message and "is not deterministic" in message, message
    assert "the initial program scored twice gave score " in message and "repeats: k" in message
    declare_repeats(noisy, 3)
    suite(noisy, "declared").test_deterministic()


def test_check_fails_a_noisy_evaluator_in_one_line_unless_it_declares_repeats(noisy, evolve_bin, cli_env):
    check = subprocess.run([evolve_bin, "check", f"problem={noisy}"], capture_output=True, text=True, env=cli_env,
                           timeout=300)
    assert check.returncode == 1, check.stdout[-2000:]
    lines = check.stderr.strip().splitlines()
    assert len(lines) == 1, check.stderr
    assert "is not deterministic" in lines[0] and "scored twice gave score" in lines[0], check.stderr
    declare_repeats(noisy, 3)
    check = subprocess.run([evolve_bin, "check", f"problem={noisy}"], capture_output=True, text=True, env=cli_env,
                           timeout=300)
    assert check.returncode == 0, check.stderr[-2000:]
    assert "noisy by declaration (repeats: 3" in check.stdout and "scored twice, score " in check.stdout


def test_a_campaign_ranks_each_would_be_best_on_the_mean_of_its_scorings(noisy, tmp_path):
    declare_repeats(noisy, 3)
    problem = resolve(noisy)
    assert problem.repeats == 3
    config = Config(problem=problem, seed=0, progress="off", database=DatabaseConfig(islands=1),
                    ray=RayConfig(num_workers=1, start_after=3600.0), budget=BudgetConfig(iterations=30))
    run_dir = tmp_path / "run"
    result = Campaign(config, run_dir).run()  # local slots only: Ray never starts
    assert result.iterations == 30
    with ProgramDatabase(f"sqlite:///{run_dir / 'programs.db'}", f"{problem.name}/run") as db:
        programs = sorted(db.programs(), key=lambda p: p.id)
        best = db.best()
        detail = program_detail(db, best.id, problem.direction)
    valid = [p for p in programs if p.status is ProgramStatus.VALID]
    spreads = {p.id: score_spread(p.metrics) for p in valid}
    assert programs[0].iteration == 0 and spreads[programs[0].id] is not None  # the first best of all
    record = None
    for p in valid:  # every program that became the best (in commit order) was scored three times
        if record is None or p.score > record:
            assert spreads[p.id] is not None and spreads[p.id]["n"] == 3, p.id
            record = p.score
    assert any(s is None for s in spreads.values()), "children that could not be the best are scored once"
    for pid, spread in spreads.items():
        if spread is not None:
            natural = -next(p.score for p in valid if p.id == pid)  # minimised: the engine negates
            assert spread["min"] < natural < spread["max"] and spread["std"] > 0
    status = read_status(run_dir).to_json()
    assert status["best"]["id"] == best.id and status["best"]["spread"] == spreads[best.id]
    assert status["best"]["score"] == -best.score
    assert detail["spread"] == spreads[best.id]


def test_a_ray_worker_and_a_local_slot_give_a_program_the_same_score_for_the_same_run_seed(ray_address):
    from evolve.evaluation.ray_pool import EvaluationPool

    problem = get_problem("warehouse_tsp")
    in_given_order = "def solve(instance):\n    return [p['id'] for p in instance['picks']]\n"  # order-dependent
    pools = [EvaluationPool(problem, SandboxConfig(), num_workers=1, worker_cpus=0.5, run_seed=5),
             LocalPool(problem, SandboxConfig(), 1, run_seed=5), LocalPool(problem, SandboxConfig(), 1, run_seed=6)]

    async def score():
        for pool in pools:
            await pool.ready()
        return [await pool.evaluate(in_given_order) for pool in pools]

    try:
        on_ray, local, other_run = asyncio.run(score())
    finally:
        for pool in pools:
            pool.shutdown()
    assert on_ray.valid and local.valid and other_run.valid, (on_ray.feedback, local.feedback)
    assert on_ray.score == local.score and on_ray.metrics["gap_pct"] == local.metrics["gap_pct"]
    assert other_run.score != local.score  # another run's seed: other views
