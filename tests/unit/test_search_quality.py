"""benchmarks/search_quality.py: its headroom figure, the problems' references, and its one-line refusals."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import search_quality  # noqa: E402 (benchmarks/ is put on sys.path first)


def test_headroom_is_the_share_of_the_way_from_the_initial_score_to_the_reference_in_either_direction():
    assert search_quality.headroom(2.56, 2.486, 2.635) == pytest.approx(0.074 / 0.149)
    assert search_quality.headroom(3.0, 4.0, 2.0) == pytest.approx(0.5)  # a cost: lower is better
    assert search_quality.headroom(2.0, 2.0, 2.635) == 0.0
    assert search_quality.headroom(2.7, 2.6, 2.635) > 1.0  # beyond the reference
    assert search_quality.headroom(None, 2.0, 2.5) is None
    assert search_quality.headroom(2.0, 2.0, 2.0) is None


@pytest.mark.parametrize("name, reference", [("circle_packing", "best known"), ("warehouse_tsp", "optimum"),
                                             ("bin_packing", "FunSearch"), ("cluster_scheduling", "AlphaEvolve"),
                                             ("openevolve_minimise", "global minimum")])
def test_every_benchmark_problem_has_a_reference_on_train(name, reference):
    problem = search_quality.resolve_problem(name)
    label, _ = problem.references["train"]
    assert reference in label
    assert problem.has_test == (name not in ("circle_packing", "openevolve_minimise"))


def test_published_references_are_reproduced_on_the_validation_split():
    """FunSearch's heuristics and AlphaEvolve's score beat the seeds (best fit) on held-out data too."""
    bins = search_quality.resolve_problem("bin_packing").references
    cluster = search_quality.resolve_problem("cluster_scheduling").references
    assert -4.0 < bins["val"][1] < -3.0  # best fit: -5.00 (README)
    assert cluster["val"][1] == pytest.approx(-2.39, abs=0.01)  # README's table


def _refusal(capsys, *argv: str) -> str:
    assert search_quality.main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    return err


def test_an_unknown_problem_is_refused_in_one_line(capsys):
    err = _refusal(capsys, "--problems", "circle_packing,no_such_problem", "--seeds", "0")
    assert "unknown problem 'no_such_problem'" in err and "openevolve_minimise" in err


def test_a_problem_without_a_reference_is_refused_in_one_line(capsys, tmp_path):
    folder = tmp_path / "no_reference"
    shutil.copytree(ROOT / "tests" / "openevolve_example", folder)
    config = folder / "config.yaml"
    config.write_text("".join(line for line in config.read_text().splitlines(keepends=True)
                              if "reference_scores" not in line).replace("name: openevolve_minimise",
                                                                         "name: no_reference"))
    err = _refusal(capsys, "--problems", str(folder))
    assert "has no reference score" in err and "reference_scores()" in err


def test_bad_options_are_refused_in_one_line(capsys):
    assert "--population nope" in _refusal(capsys, "--problems", "circle_packing", "--population", "nope")
    assert "--seeds" in _refusal(capsys, "--problems", "circle_packing", "--seeds", "a,b")
    assert "go together" in _refusal(capsys, "--problems", "circle_packing", "--llm-base-url", "http://x/v1")


def test_funsearch_heuristics_give_the_figures_the_bin_packing_readme_quotes():
    """Run once on our test split, FunSearch's OR heuristic gives 3.12% on or500, its Weibull one 3.71% on
    weibull1000 (problems/bin_packing/README.md)."""
    from problems.bin_packing.evaluator import BinPacking
    from problems.bin_packing.heuristics import FUNSEARCH_RULES
    from problems.bin_packing.packing import online_pack
    from problems.bin_packing.scoring import summarise

    test = BinPacking().splits["test"]
    for family, group, published in (("or", "or500", 3.12), ("weibull", "weibull1000", 3.71)):
        instances = [inst for inst in test if inst.group == group]
        bins = [online_pack(inst.items, inst.capacity, FUNSEARCH_RULES[family]).bins for inst in instances]
        assert summarise(instances, bins).by_group[group] == pytest.approx(published, abs=0.005)


def test_openevolve_asks_the_model_with_evolves_request_settings(tmp_path):
    import yaml
    from openevolve_side import _files

    overrides = ("llm.timeout=600", "llm.max_tokens=1024", "llm.temperature=0.5", "llm.max_retries=0")
    options = search_quality.Options(problems=("circle_packing",), seeds=(0,), proposals=3, overrides=overrides,
                                     llm_base_url="http://127.0.0.1:1/v1", llm_model="m")
    problem = search_quality.resolve_problem("circle_packing", overrides)
    _, _, config = _files(problem, 0, options, tmp_path)
    llm = yaml.safe_load(config.read_text())["llm"]
    assert (llm["timeout"], llm["max_tokens"], llm["temperature"], llm["retries"]) == (600, 1024, 0.5, 0)
    assert llm["models"] == [{"name": "m", "weight": 1.0}]
