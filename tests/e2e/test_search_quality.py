"""benchmarks/search_quality.py on a tiny budget: real campaigns, and the JSON and table they give."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import search_quality  # noqa: E402 (benchmarks/ is put on sys.path first)

pytestmark = pytest.mark.e2e


def test_a_tiny_benchmark_reports_every_figure(tmp_path):
    out = tmp_path / "figures.json"
    assert search_quality.main(["--problems", "circle_packing,warehouse_tsp", "--seeds", "0", "--proposals", "10",
                                "--population", "islands,tournament", "--work", str(tmp_path / "runs"),
                                "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert len(result["load_start"]) == 3 and len(result["load_end"]) == 3
    assert result["problems"]["circle_packing"]["references"]["train"] == ["best known (2.635)", 2.635]
    assert result["problems"]["warehouse_tsp"]["references"]["test"][0] == "optimum"
    runs = {(r["problem"], r["population"]): r for r in result["runs"]}
    assert set(runs) == {(p, s) for p in ("circle_packing", "warehouse_tsp") for s in ("islands", "tournament")}
    for run in runs.values():
        assert run["ok"] and run["iterations"] == 10 and run["stop"] == "budget.iterations=10 reached"
        assert run["best"]["train"] >= run["initial"]["train"]
        assert list(run["best_after"]) == ["2", "5", "7", "10"] and run["best_after"]["10"] == run["best"]["train"]
        assert 0.0 <= run["headroom"]["train"] <= 1.0
        assert set(run["shares"]) == {"applied", "duplicate", "valid", "invalid"}
        assert run["evaluations_per_second"] > 0 and len(run["load_before"]) == 3
        kinds = run["move_kinds"]
        assert sum(k["proposals"] for k in kinds.values()) >= 10
        assert all(k["new_bests"] <= k["valid"] <= k["applied"] <= k["proposals"] for k in kinds.values())
    circle, warehouse = runs["circle_packing", "islands"], runs["warehouse_tsp", "islands"]
    assert circle["best"]["test"] is None and circle["headroom"]["test"] is None  # no test data
    for split in ("val", "test"):  # test once, through `evolve check --test RUN_DIR`
        assert warehouse["initial"][split] < result["problems"]["warehouse_tsp"]["references"][split][1]
        assert warehouse["headroom"][split] is not None
    record = json.loads((Path(warehouse["run_dir"]) / "test_result.json").read_text())
    assert record["score"] == warehouse["best"]["test"]
    table = search_quality.table(result)
    assert "| circle_packing | tournament | best known (2.635)" in table and "move kind" in table
