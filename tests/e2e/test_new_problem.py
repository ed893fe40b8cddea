"""`evolve new-problem` end to end: the contract test the author runs, `check`, and a campaign on the
folder through the CLI; an OpenEvolve-style folder through the adapter; `check` fails non-zero."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def evolve(evolve_bin, env, *args, cwd=None, timeout=300):
    return subprocess.run([evolve_bin, *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)


def test_scaffold_contract_check_and_run(evolve_bin, cli_env, ray_address, tmp_path):
    out = evolve(evolve_bin, cli_env, "new-problem", "fresh_curve", "--dir", str(tmp_path / "mine"))
    assert out.returncode == 0, out.stderr
    folder = tmp_path / "mine" / "fresh_curve"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.yaml", "evaluator.py", "initial.py",
                                                         "test_contract.py"]
    again = evolve(evolve_bin, cli_env, "new-problem", "fresh_curve", "--dir", str(tmp_path / "mine"))
    assert again.returncode == 1 and "not empty" in again.stderr

    contract = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(folder / "test_contract.py")],
                              capture_output=True, text=True, env=cli_env, timeout=300, cwd=tmp_path)
    assert contract.returncode == 0 and "6 passed" in contract.stdout, contract.stdout[-3000:]

    check = evolve(evolve_bin, cli_env, "check", f"problem={folder}")
    assert check.returncode == 0, check.stderr
    assert "direction minimize" in check.stdout and "(minimize)" in check.stdout
    assert re.search(r"call_timeout\s*│\s*2\s", check.stdout) and re.search(r"memory_mb\s*│\s*1024\s", check.stdout)

    run = evolve(evolve_bin, cli_env, "run", f"problem={folder}", "budget.iterations=5", f"ray.address={ray_address}",
                 f"hydra.run.dir={tmp_path / 'run'}")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "fresh_curve: initial" in run.stdout and "5 iterations" in run.stdout
    initial, best = (float(x) for x in run.stdout.split("initial ")[1].split(" -> best ")[:1] +
                     [run.stdout.split(" -> best ")[1].split()[0]])
    assert 0 < best <= initial  # natural squared errors, lower is better


def test_the_contract_runs_without_pytest(evolve_bin, cli_env, tmp_path):
    """Right after `pip install evolve`: `python test_contract.py` runs the contract with pytest unimportable."""
    out = evolve(evolve_bin, cli_env, "new-problem", "bare", "--dir", str(tmp_path))
    assert out.returncode == 0 and "test_contract.py" in out.stdout
    assert "pip install 'evolve[test]'" in out.stdout
    blocked = ("import runpy, sys; sys.modules['pytest'] = None; "
               f"runpy.run_path({str(tmp_path / 'bare' / 'test_contract.py')!r}, run_name='__main__')")
    contract = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, env=cli_env,
                              timeout=300, cwd=tmp_path)
    assert contract.returncode == 0 and "6 passed, 0 failed" in contract.stdout, contract.stdout + contract.stderr


def test_a_broken_contract_fails_the_authors_test(evolve_bin, cli_env, tmp_path):
    evolve(evolve_bin, cli_env, "new-problem", "leaky", "--dir", str(tmp_path))
    evaluator = tmp_path / "leaky" / "evaluator.py"  # an evaluator that trusts whatever comes back
    evaluator.write_text(evaluator.read_text().replace("        problem = check_numbers(",
                                                       "        problem = None and check_numbers("))
    contract = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(tmp_path / "leaky" / "test_contract.py")],
                              capture_output=True, text=True, env=cli_env, timeout=300, cwd=tmp_path)
    assert contract.returncode == 1 and "test_garbage_is_rejected_with_a_reason" in contract.stdout


def test_check_fails_non_zero(evolve_bin, cli_env, tmp_path):
    evolve(evolve_bin, cli_env, "new-problem", "wrong", "--dir", str(tmp_path))
    initial = tmp_path / "wrong" / "initial.py"
    initial.write_text(initial.read_text().replace("return 0.5 * x", "return 'half of x'"))
    out = evolve(evolve_bin, cli_env, "check", f"problem={tmp_path / 'wrong'}")
    assert out.returncode == 1 and "initial program of 'wrong' is invalid" in out.stderr
    initial.write_text(initial.read_text().replace("# EVOLVE-BLOCK-END", ""))
    out = evolve(evolve_bin, cli_env, "check", f"problem={tmp_path / 'wrong'}")
    assert out.returncode == 1 and "EVOLVE-BLOCK-START is never closed" in out.stderr


def test_an_openevolve_style_problem_runs_through_the_adapter(evolve_bin, cli_env, ray_address, tmp_path):
    example = ROOT / "tests" / "openevolve_example"
    check = evolve(evolve_bin, cli_env, "check", f"problem={example}")
    assert check.returncode == 0 and "combined_score=" in check.stdout, check.stderr
    run = evolve(evolve_bin, cli_env, "run", f"problem={example}", "budget.iterations=4", f"ray.address={ray_address}",
                 f"hydra.run.dir={tmp_path / 'run'}")
    assert run.returncode == 0, run.stderr[-3000:]
    summary = run.stdout.split("openevolve_minimise: initial ")[1]
    initial, best = float(summary.split()[0]), float(summary.split(" -> best ")[1].split()[0])
    assert 0 < initial <= best <= 1  # combined_score of the OpenEvolve evaluator, maximised
