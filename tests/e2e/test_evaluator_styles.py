"""Each OpenEvolve and ShinkaEvolve evaluator style (tests/evaluator_styles) through `evolve check` and a
short campaign with the offline engine, unchanged; the subprocess style refused at `evolve check` in one line."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
STYLES = Path(__file__).resolve().parents[1] / "evaluator_styles"
RUNNING = ["minimise_threads", "k_module", "artifacts_catching", "signal_kwargs", "rect_import", "shinka_circles"]


def evolve(evolve_bin, env, *args, cwd=None):
    return subprocess.run([evolve_bin, *args], capture_output=True, text=True, env=env, timeout=300, cwd=cwd)


@pytest.mark.parametrize("name", RUNNING)
def test_check_passes_for_each_supported_style(evolve_bin, cli_env, name):
    out = evolve(evolve_bin, cli_env, "check", f"problem={STYLES / name}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert re.search(r"initial program: score [0-9.]+ \(maximize\)", out.stdout)
    assert "deterministic: the initial program scored twice, the same" in out.stdout


def test_check_refuses_the_subprocess_style_in_one_line(evolve_bin, cli_env):
    out = evolve(evolve_bin, cli_env, "check", f"problem={STYLES / 'subprocess_style'}")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "runs the program in a process of its own (subprocess.run)" in lines[0]
    assert "importlib.util.spec_from_file_location" in lines[0]


@pytest.mark.parametrize("name", ["signal_kwargs", "rect_import", "shinka_circles"])
def test_a_short_campaign_runs_unchanged(evolve_bin, cli_env, tmp_path, name):
    out = evolve(evolve_bin, cli_env, "run", f"problem={STYLES / name}", "budget.iterations=30",
                 "ray.start_after=1e9", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    found = re.search(r": initial ([-0-9.e]+) -> best ([-0-9.e]+)", out.stdout)
    assert found and 0 < float(found[1]) <= float(found[2]), out.stdout[-2000:]
    assert re.search(r"[1-9][0-9]* valid", out.stdout)


def test_the_offline_engines_hint_speaks_of_the_blocks_not_of_keys(evolve_bin, cli_env, tmp_path):
    folder = tmp_path / "fixed"
    shutil.copytree(STYLES / "k_module", folder)
    (folder / "initial_program.py").write_text(
        'CONFIG = {"loader": "csv", "cleaner": "drop", "encoder": "onehot", "model": "linear"}\n\n\n'
        "# EVOLVE-BLOCK-START\ndef configure_pipeline():\n    return CONFIG\n# EVOLVE-BLOCK-END\n")
    out = evolve(evolve_bin, cli_env, "run", f"problem={folder}", "budget.iterations=30",
                 "llm.max_consecutive_failures=3", "ray.start_after=1e9", f"hydra.run.dir={tmp_path / 'run'}",
                 cwd=tmp_path)
    assert out.returncode != 0 and "found nothing to mutate" in out.stderr
    assert "the offline engine changes only what is inside the EVOLVE-BLOCKs" in out.stderr
    assert "base_url" not in out.stderr and "key" not in out.stderr
