"""Candidate text end to end: `evolve check` on a hostile initial program shows its text inert; a
campaign whose programs fail on held-out data, saying what they saw, never puts that in a prompt; and a
campaign of hostile children proposed by a model sends the model their words, never their sequences."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import zlib
from pathlib import Path

import pytest

import evolve
from evolve.cli.scaffold import new_problem
from evolve.testing.attacks import HOSTILE_TEXT
from sandboxes import TEXT_CAPS

pytestmark = pytest.mark.e2e

CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
CANARY = "held-out-canary-5b1e9"


def test_evolve_check_shows_a_hostile_programs_text_inert(evolve_bin, cli_env, tmp_path):
    """The candidate clears the screen and prints "VALID" in green in its output and its error, with a
    megabyte of text after it: the terminal gets the words, cut, and none of the sequences."""
    folder = new_problem("hostile_text", tmp_path)
    (folder / "initial.py").write_text(f"""import sys
TEXT = {HOSTILE_TEXT!r}
print(TEXT * 3)
print(TEXT, file=sys.stderr)


# EVOLVE-BLOCK-START
def predict(x):
    raise ValueError(TEXT + "x" * 1_000_000 + TEXT)
# EVOLVE-BLOCK-END
""")
    out = subprocess.run([evolve_bin, "check", f"problem={folder}"], capture_output=True, text=True, env=cli_env,
                         timeout=300, check=False)
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    assert "initial program: INVALID" in out.stdout and "VALID: score 1e9" in out.stdout
    for stream in (out.stdout, out.stderr):
        assert CONTROLS.search(stream) is None, repr(stream[:3000])
        assert "x" * TEXT_CAPS["terminal"] not in stream
    assert out.stderr.startswith("evolve: the initial program of 'hostile_text' is invalid")
    assert out.stderr.strip().count("\n") == 0 and len(out.stderr) < 600


def test_held_out_failure_text_never_reaches_a_prompt(tmp_path):
    """Every program fails validation, its error naming the held-out input it was given; 20 iterations of
    prompts later, no prompt, failure or feedback the model could see holds it, while the validation
    record (the user's) does."""
    folder = new_problem("held_out_text", tmp_path)
    evaluator = folder / "evaluator.py"
    evaluator.write_text(evaluator.read_text() + f'''

class Leaky(Approximation):
    """Validation hands the candidate a held-out input that it repeats in its error."""

    def validate(self, candidate: Session) -> Score:
        candidate.call("predict", {CANARY!r})
        return super().validate(candidate)
''')
    config = folder / "config.yaml"
    config.write_text(config.read_text().replace("evaluator: evaluator:Approximation", "evaluator: evaluator:Leaky"))
    initial = folder / "initial.py"
    initial.write_text(initial.read_text().replace('    """A first guess: a straight line."""\n',
                                                   '    """A first guess: a straight line."""\n'
                                                   '    if isinstance(x, str):\n'
                                                   '        raise ValueError(f"cannot predict {x}")\n'))
    run_dir = tmp_path / "run"
    evolve.run(folder, ["budget.iterations=20", "progress=off", "ray.start_after=100000", "prompt.crossover=0"],
               run_dir=run_dir).close()
    with sqlite3.connect(f"file:{run_dir / 'programs.db'}?mode=ro", uri=True) as conn:
        validations = [json.loads(v) for (v,) in conn.execute("select validation from programs where validation "
                                                              "is not null")]
        assert validations and all(CANARY in v["feedback"] and not v["valid"] for v in validations)
        prompts = [zlib.decompress(data).decode() for (data,) in conn.execute("select data from llm_messages")]
        assert len(prompts) == 20
        seen_by_the_model = prompts + [f"{f} {e}" for f, e in conn.execute("select feedback, error from programs")]
    assert not [text for text in seen_by_the_model if CANARY in text]
    assert CANARY in Path(run_dir / "campaign.log").read_text()  # the user's record has it; the model's does not


def test_a_campaign_of_hostile_children_keeps_their_text_inert(tmp_path):
    """A model (the fake server) proposes children that print and raise escape sequences, HTML and a
    megabyte: what the model is sent back about them, what is stored and what `evolve status` shows carry
    their words, cut, and none of their sequences."""
    from io import StringIO

    from rich.console import Console

    from evolve.api import compose
    from evolve.cli.status_view import render
    from evolve.config import LLMConfig, ModelConfig
    from evolve.observe.status import read_status
    from evolve.testing import FakeOpenAIServer

    folder = new_problem("hostile_children", tmp_path)
    counter = iter(range(1000))

    def responder(request):
        n = next(counter)
        return (f"Try variant {n}.\n<<<<<<< SEARCH\n    return 0.5 * x\n=======\n    text = {HOSTILE_TEXT!r}\n"
                f"    print(text * 1000)\n    raise ValueError(text + 'x' * {1_000_000 + n} + text)\n"
                ">>>>>>> REPLACE\n")

    run_dir = tmp_path / "run"
    with FakeOpenAIServer(responder) as server:
        config = compose(folder, ["budget.iterations=12", "progress=off", "ray.start_after=100000", "prompt.full=0",
                                  "prompt.crossover=0", "prompt.scratchpad_interval=2"])
        config.llm = LLMConfig(kind="ensemble", models=[ModelConfig(model="fake-model", base_url=server.base_url,
                                                                    max_retries=0)], concurrency=2)
        evolve.run(folder, run_dir=run_dir, config=config).close()
        sent = [m["content"] for r in server.requests if "messages" in r for m in r["messages"]]
    assert sent and all(CONTROLS.search(text) is None and "x" * 1000 not in text for text in sent)
    assert any("What keeps failing" in text and "<script>alert('evolve')</script>" in text for text in sent)
    with sqlite3.connect(f"file:{run_dir / 'programs.db'}?mode=ro", uri=True) as conn:
        rows = conn.execute("select feedback, error from programs where status = 'invalid'").fetchall()
    assert len(rows) >= 10
    for feedback, error in rows:
        for text in (feedback, error):
            assert CONTROLS.search(text) is None and len(text) <= TEXT_CAPS["database"] and "VALID" in text
    console = Console(file=StringIO(), width=200)
    console.print(render(read_status(run_dir)))
    shown = console.file.getvalue()
    assert CONTROLS.search(shown) is None and "invalid" in shown and "x" * 1000 not in shown
