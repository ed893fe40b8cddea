"""The attack suite (`evolve.testing.SandboxContract`) against every built-in sandbox backend.

For each attack: no score it did not earn, the worker survives, nothing outside the scratch dir
changes, no secret leaks, no process outlives the evaluation, and the next evaluation is unaffected.
"""

from __future__ import annotations

import html.parser
import io
import json
import re
import sqlite3
import threading
import urllib.request

import pytest

from evaluators import evaluate_program
from evolve.config import SandboxConfig
from evolve.evaluation.sandboxing import make_sandbox
from evolve.testing import SandboxContract
from evolve.testing.attacks import ATTACKS, HONEST, HOSTILE_TEXT, TEXT_ATTACKS, ContractEvaluator
from evolve.testing.sandbox_contract import LIMITS
from sandboxes import TEXT_CAPS
from tests.sandbox.docker_engine import docker_sandbox


class TestProcess(SandboxContract):
    def make_sandbox(self):
        return make_sandbox(SandboxConfig())


class TestDocker(SandboxContract):
    def make_sandbox(self):
        return docker_sandbox("host")


class TestDockerImage(SandboxContract):  # sandbox.interpreter=image
    def make_sandbox(self):
        return docker_sandbox("image")


def test_the_suite_covers_every_category_in_the_notes():
    categories = {a.category.split(" (")[0] for a in ATTACKS}
    required = {"endless loop", "endless sleep", "memory bomb", "fork bomb", "thread bomb", "disk bomb", "network",
                "reading API keys from the environment", "reading other processes' /proc/*/environ",
                "writing outside its directory", "finding hidden answer files", "signalling the parent",
                "ptracing the parent", "huge stdout", "NaN/inf results", "objects with lying __eq__/__float__",
                "patching time, builtins or the evaluator", "sys.exit/os._exit before the work",
                "forging result lines or files", "pickle payloads in results", "ctypes segfaults",
                "daemons that outlive the run", "ignoring SIGALRM/SIGTERM", "poisoning the next run",
                "import-time side effects", "oversized results", "oversized and escape-laden text"}
    assert required <= categories and len(ATTACKS) >= 25


@pytest.fixture(scope="module", params=["process", "docker", "docker-image"])
def sandbox(request):
    """Each backend once for the text checks (the contract classes above hold their own)."""
    if request.param == "process":
        made = make_sandbox(SandboxConfig())
    else:
        made = docker_sandbox("image" if request.param == "docker-image" else "host")
    yield made
    made.close()


# what no use may let through: C0 controls but tab and newline, DEL, C1, bidirectional overrides and isolates
CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# as an older evolve stored it, or an evaluator outside the cascade hands it on: uncut and unclean
RAW = HOSTILE_TEXT + "x" * 3_000_000 + HOSTILE_TEXT


def _inert(text: str, use: str) -> None:
    assert len(text) <= TEXT_CAPS[use], f"{len(text)} characters reached the {use}"
    found = CONTROLS.search(text)
    assert found is None, f"{found.group()!r} reached the {use}: {text[max(0, found.start() - 40):found.end() + 40]!r}"


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)


@pytest.mark.parametrize("attack", TEXT_ATTACKS, ids=[a.name for a in TEXT_ATTACKS])
def test_candidate_text_is_gated_at_each_use(attack, sandbox, tmp_path, capsys):
    """A candidate's output and errors with escape sequences, HTML and megabytes, at every use: the cascade's
    result, the store, a prompt, the terminal (`evolve status`, `evolve best`), the web view and report.html.
    Each use is also handed the raw text (stored by hand), so each gate is checked on its own."""
    from rich.console import Console

    from evolve.cli.commands import main
    from evolve.cli.status_view import render
    from evolve.config import Config
    from evolve.observe.status import read_status
    from evolve.problems import get_problem
    from evolve.program import ProgramStatus
    from evolve.proposals.prompts import PromptBuilder
    from evolve.proposals.scratchpad import Scratchpad
    from evolve.storage.rundir import open_database, write_config
    from evolve.ui.report import write_report
    from evolve.ui.server import make_server

    result = evaluate_program(ContractEvaluator(), sandbox, attack.source, LIMITS)
    assert not result.valid and attack.refusal in result.feedback
    _inert(result.feedback, "result")
    _inert(result.output, "result")

    config = Config(problem=get_problem("circle_packing"), name="hostile-text")
    write_config(config, tmp_path)
    with open_database(config, tmp_path) as db:
        initial = db.add(iteration=0, status=ProgramStatus.VALID, code=HONEST, code_hash="h0", score=1.0, feedback=RAW)
        db.set_validation(initial.id, {"valid": False, "score": None, "metrics": {}, "feedback": RAW})
        for i, (status, text) in enumerate([(ProgramStatus.INVALID, result.feedback), (ProgramStatus.INVALID, RAW),
                                            (ProgramStatus.INVALID, RAW), (ProgramStatus.EVALUATOR_ERROR, RAW)], 1):
            db.add(iteration=i, status=status, code=attack.source, code_hash=f"h{i}", parent=initial, feedback=text,
                   error=text)
        db.record_stop("failed", RAW)
    with sqlite3.connect(tmp_path / "programs.db") as conn:  # what the store holds
        for feedback, error, validation in conn.execute("select feedback, error, validation from programs"):
            _inert(feedback, "database")
            _inert(error, "database")
            _inert(json.loads(validation)["feedback"] if validation else "", "database")
        [(reason,)] = conn.execute("select reason from stops").fetchall()
        _inert(reason, "database")
        # past the store's gate: the raw text, as an older evolve stored it
        conn.execute("update programs set feedback = ?, error = case when iteration > 0 then ? else '' end", (RAW, RAW))
        conn.execute("update stops set reason = ?", (RAW,))

    with open_database(config, tmp_path, read_only=True) as db:  # a prompt
        child = db.get(2)
        assert len(child.feedback) == len(RAW)
        scratchpad = Scratchpad()
        scratchpad.restore(db)
        prompt = PromptBuilder("d", "solve").build(child, [db.get(initial.id)], [child, child],
                                                   scratchpad=scratchpad.text)
        for message in prompt.messages:
            _inert(message["content"], "prompt") if message["role"] == "system" else None
            assert CONTROLS.search(message["content"]) is None and "x" * 2000 not in message["content"]
            assert len(message["content"]) < len(attack.source) + 4 * TEXT_CAPS["prompt"]

    console = Console(file=io.StringIO(), width=200)  # not a terminal: rich adds no sequences of its own
    console.print(render(read_status(tmp_path)))
    shown = console.file.getvalue()
    assert CONTROLS.search(shown) is None and "x" * 2000 not in shown and "VALID" in shown
    with pytest.raises(SystemExit) as end:
        main(["best", str(tmp_path)])
    assert end.value.code == 0
    printed = capsys.readouterr().out
    assert CONTROLS.search(printed) is None and "x" * 2000 not in printed and "VALID" in printed

    server = make_server(tmp_path, port=0)  # the web view
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api/"
    try:
        for pid in range(1, 6):
            with urllib.request.urlopen(f"{url}program?run=0&id={pid}", timeout=60) as response:
                detail = json.loads(response.read())
            _inert(detail["feedback"], "web")
            _inert(detail["error"], "web")
            _inert((detail["validation"] or {}).get("feedback", ""), "web")
        with urllib.request.urlopen(f"{url}campaign?run=0", timeout=60) as response:
            reasons = json.loads(response.read())["failures"]["reasons"]
        assert reasons and all(_inert(reason, "web") is None for reason, _ in reasons)
        with urllib.request.urlopen(f"{url}programs?run=0&status=invalid", timeout=60) as response:
            page = json.loads(response.read())
        assert page["reasons"] and all(_inert(reason, "web") is None for reason, _ in page["reasons"])
        assert all(_inert(row["reason"], "web") is None for row in page["rows"])
        with urllib.request.urlopen(f"{url}state?run=0", timeout=60) as response:
            state = json.loads(response.read())
        assert state["label"] == "failed" and _inert(state["reason"], "web") is None  # the stop's reason, quoted
    finally:
        server.shutdown()
        server.server_close()
    with open_database(config, tmp_path, read_only=True) as db:  # report.html: HTML built with the text in it
        page = write_report(tmp_path, db, config, references=[]).read_text()
    tags = _Tags()
    tags.feed(page)
    assert "img" not in tags.tags and tags.tags.count("script") == 3, "the candidate's HTML became the report's"
    start = page.index("<script>")  # plotly.min.js, inlined, holds control characters of its own
    ours = page[:start] + page[page.index("</script>", start):]
    assert CONTROLS.search(ours) is None and "x" * 20_000 not in ours
