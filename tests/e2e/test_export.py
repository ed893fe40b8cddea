"""`evolve export RUN_DIR --format chat-jsonl`: the prompts and replies that improved their parent as OpenAI chat
fine-tuning records with a metadata sidecar, held-out data never in them, and one line for an offline run."""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import subprocess

import pytest

import evolve
from evolve.cli.scaffold import new_problem
from evolve.testing import FakeOpenAIServer

pytestmark = pytest.mark.e2e

CANARY = "held-out-canary-7c2f0"


def _problem(tmp_path):
    """The scaffold's curve problem, whose validation and test feedback and metrics carry `CANARY`."""
    folder = new_problem("export_curve", tmp_path)
    evaluator = folder / "evaluator.py"
    evaluator.write_text(evaluator.read_text() + f'''

class Marked(Approximation):
    """Held-out scores name the canary; training scores do not."""

    def score(self, candidate: Session, instances: list[float], split: str) -> Score:
        result = super().score(candidate, instances, split)
        if split in ("val", "test"):
            return Score(value=result.value, valid=result.valid, metrics={{**result.metrics, {CANARY!r}: 1.0}},
                         feedback=f"{{result.feedback}} {CANARY}")
        return result
''')
    config = folder / "config.yaml"
    config.write_text(config.read_text().replace("evaluator: evaluator:Approximation", "evaluator: evaluator:Marked"))
    return folder


def _replies():
    """Replies that rewrite `predict`'s return line: nearer the hidden curve by turns, and one in four worse."""
    k = itertools.count()

    def responder(request):
        n = next(k)
        user = request["messages"][-1]["content"]
        line = re.search(r"^    return .*\n", user[user.index("def predict"):], re.MULTILINE).group(0)
        factor = -1.0 - 0.01 * n if n % 4 == 3 else 1.0 - 0.5 / (n + 2)
        return (f"Closer to the curve.\n<<<<<<< SEARCH\n{line}=======\n"
                f"    return math.sin(x) + 0.3 * x * x * {factor:.4f}\n>>>>>>> REPLACE\n")
    return responder


def test_export_writes_improving_replies_as_chat_records_without_held_out_data(evolve_bin, cli_env, tmp_path):
    folder, run_dir = _problem(tmp_path), tmp_path / "run"
    with FakeOpenAIServer(_replies()) as server:
        evolve.run(folder, ["budget.iterations=12", "progress=off", "ray.start_after=1e9", "prompt.crossover=0",
                            "llm=openai", f"llm.base_url={server.base_url}", "llm.model=fake-model",
                            "llm.api_key_env=null", "llm.concurrency=1", "database.islands=1"],
                   run_dir=run_dir).close()
    with sqlite3.connect(f"file:{run_dir / 'programs.db'}?mode=ro", uri=True) as conn:
        held_out = [v for (v,) in conn.execute("select validation from programs where validation is not null")]
    assert held_out and all(CANARY in v for v in held_out)  # the canary is planted where only validation sees it

    def export(*flags):
        run = subprocess.run([evolve_bin, "export", str(run_dir), "--format", "chat-jsonl", *flags],
                             capture_output=True, text=True, env=cli_env, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
        return run.stdout

    said = export()
    chat, meta = run_dir / "chat.jsonl", run_dir / "chat.meta.jsonl"
    records = [json.loads(line) for line in chat.read_text().splitlines()]
    about = [json.loads(line) for line in meta.read_text().splitlines()]
    assert f"{len(records)} replies that improved their parent written to {chat}" in said
    assert records and len(records) == len(about)
    for record, info in zip(records, about):
        assert list(record) == ["messages"]
        assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant"]
        assert record["messages"][-1]["content"].startswith("Closer to the curve.")
        assert "train: mean squared error" in record["messages"][1]["content"]  # training feedback is shown
        assert info["improved"] and info["score_delta"] > 0 and info["score"] < info["parent_score"]  # minimised
    everything = run_dir / "all.jsonl"
    export("--all", "--out", str(everything))
    every = [json.loads(line) for line in (run_dir / "all.meta.jsonl").read_text().splitlines()]
    assert len(every) > len(records) and any(not e["improved"] and e["score_delta"] < 0 for e in every)
    for path in (chat, meta, everything, run_dir / "all.meta.jsonl"):
        assert CANARY not in path.read_text()


def test_export_of_an_offline_run_says_there_is_nothing_to_export(evolve_bin, cli_env, tmp_path):
    run_dir = tmp_path / "run"
    evolve.run("circle_packing", ["budget.iterations=3", "progress=off", "ray.start_after=1e9"],
               run_dir=run_dir).close()
    run = subprocess.run([evolve_bin, "export", str(run_dir)], capture_output=True, text=True, env=cli_env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "nothing to export: the offline engine (llm=offline) proposed every program" in run.stdout
    assert run.stdout.strip().count("\n") == 0 and not (run_dir / "chat.jsonl").exists()
