"""benchmarks/model_run_summary.py: OpenEvolve's log read as proposals, applied, valid and improved children."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from model_run_summary import summarise_openevolve  # noqa: E402 (benchmarks/ is put on sys.path first)

LOG = """\
2026-12-07 19:15:19,917 - openevolve.evaluator - INFO - Evaluated program a0 in 9.93s: combined_score=2.4866
2026-12-07 19:15:21,154 - openevolve.process_parallel - WARNING - Iteration 1 error: None of the 1 SEARCH block(s) \
matched the parent program | tokens: 2068 (prompt: 2036, completion: 32)
2026-12-07 19:15:31,000 - openevolve.process_parallel - INFO - Iteration 2: Program b1 (parent: a0) completed in 9.50s \
| tokens: 2100 (prompt: 2000, completion: 100)
2026-12-07 19:15:31,001 - openevolve.process_parallel - INFO - Metrics: combined_score=2.5000, score=2.5000
2026-12-07 19:15:41,000 - openevolve.process_parallel - INFO - Iteration 3: Program c2 (parent: b1) completed in 9.00s \
| tokens: 2100 (prompt: 2000, completion: 100)
2026-12-07 19:15:41,001 - openevolve.process_parallel - INFO - Metrics: combined_score=-1000000000.0000, error=invalid
2026-12-07 19:15:51,000 - openevolve.process_parallel - INFO - Iteration 4: Program d3 (parent: b1) completed in 9.00s \
| tokens: 2100 (prompt: 2000, completion: 100)
2026-12-07 19:15:51,001 - openevolve.process_parallel - INFO - Metrics: combined_score=2.4900, score=2.4900
"""


def test_openevolves_log_gives_applied_valid_improved_and_tokens(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "openevolve_20261207_191509.log").write_text(LOG)
    r = summarise_openevolve(tmp_path)
    assert (r["proposals"], r["applied"], r["valid"], r["improved_parent"], r["better_than_initial"]) == (4, 3, 2, 1, 2)
    assert (r["initial"], r["best"]) == (2.4866, 2.5)
    assert (r["prompt_tokens_per_proposal"], r["completion_tokens_per_proposal"]) == (2009, 83)
    assert "SEARCH block(s) matched" in r["edit_failures"]
