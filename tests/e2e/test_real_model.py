"""A real model: llama.cpp's OpenAI-compatible server (llama-cpp-python) serves a tiny GGUF model on
127.0.0.1, and a short campaign runs against it through the `evolve` command with `llm=openai`.

The server, its interpreter and the model come from scripts/llama.sh (scripts/test.sh exports
EVOLVE_TEST_LLAMA_PYTHON and EVOLVE_TEST_LLAMA_MODEL). A recording proxy between the campaign and the
server keeps every exchange, so the database's accounting is compared with what the server said.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import pytest

from evolve.observe.outcomes import UnappliedWatch, model_outcomes
from evolve.program import ProgramStatus
from evolve.storage.rundir import load_config, open_database

pytestmark = pytest.mark.e2e

ALIAS = "tiny"  # the name the server gives its one model
KEY = "sk-local-dummy"  # the server refuses requests without it: the campaign must send it
CONTEXT = 2560  # the server's n_ctx and the campaign's context_tokens: the prompts are fitted to it
MAX_TOKENS = 256
CHARS_PER_TOKEN = 2.5  # these models' tokenizers split the prompt's code at ~2.85 characters a token
ITERATIONS, UNAPPLIED = 4, 3
PRICE_IN, PRICE_OUT = 1.0, 2.0  # dollars per million tokens: the cost follows the server's counts
_VERDICTS = (ProgramStatus.EDIT_FAILED, ProgramStatus.VALID, ProgramStatus.INVALID, ProgramStatus.DUPLICATE,
             ProgramStatus.SIMILAR)  # what a reply can come to (no transport failure, no evaluator error)


def _missing() -> str:
    """Why the server's interpreter or model from scripts/llama.sh cannot be used, or ''."""
    python, model = os.environ.get("EVOLVE_TEST_LLAMA_PYTHON", ""), os.environ.get("EVOLVE_TEST_LLAMA_MODEL", "")
    if not python or not model:
        return ("EVOLVE_TEST_LLAMA_PYTHON and EVOLVE_TEST_LLAMA_MODEL are not set; "
                'run eval "$(bash scripts/llama.sh)" (scripts/test.sh does)')
    if not os.access(python, os.X_OK) or not os.path.isfile(model):
        return f"{python} or {model} is missing; run bash scripts/llama.sh again"
    return ""


if _missing() and not os.environ.get("CI"):  # skipped here, before the session's Ray starts
    pytest.skip(_missing(), allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _models_status(url: str, key: str | None = KEY) -> int | None:
    """The HTTP status of `GET /models` with `key`, or None when nothing answers."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{url}/models", headers=headers), timeout=5) as reply:
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """llama.cpp's server on a free port of 127.0.0.1 with the tiny model; its /v1 URL and its log."""
    if _missing():
        pytest.fail(f"{_missing()}; CI must test a real model")
    python, model = os.environ["EVOLVE_TEST_LLAMA_PYTHON"], os.environ["EVOLVE_TEST_LLAMA_MODEL"]
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    command = [python, "-m", "llama_cpp.server", "--model", model, "--model_alias", ALIAS, "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", str(CONTEXT), "--api_key", KEY, "--n_threads", "2"]
    with open(log, "wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180  # loading a 100 MB model on a loaded machine
        while _models_status(url) != 200:
            tail = log.read_text(errors="replace")[-3000:]
            assert server.poll() is None, f"the llama.cpp server exited ({server.returncode}):\n{tail}"
            assert time.monotonic() < deadline, f"the llama.cpp server did not answer in 180 s:\n{tail}"
            time.sleep(0.5)
        yield url, log
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)


@dataclass(frozen=True)
class Exchange:
    """One chat request as the server answered it."""

    status: int
    request: dict[str, Any]
    reply: dict[str, Any]
    seconds: float


def _proposals(proxy: RecordingProxy) -> list[Exchange]:
    """The proxy's exchanges that asked for a proposal: not the one-token request that counts a prompt's
    tokens before the first proposal (when the server's tokenizer cannot be reached through the proxy)."""
    return [e for e in proxy.exchanges if e.request.get("max_tokens") != 1]


class RecordingProxy:
    """Forwards every request to `upstream` (a /v1 URL) and keeps each chat completion's exchange."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/").removesuffix("/v1")
        self.exchanges: list[Exchange] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._forward(None)

            def do_POST(self) -> None:
                self._forward(self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def _forward(self, body: bytes | None) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                request = urllib.request.Request(proxy.upstream + self.path, data=body, headers=headers,
                                                 method=self.command)
                started = time.perf_counter()
                try:
                    with urllib.request.urlopen(request, timeout=900) as reply:
                        status, payload = reply.status, reply.read()
                except urllib.error.HTTPError as exc:
                    status, payload = exc.code, exc.read()
                if self.path.rstrip("/").endswith("/chat/completions"):
                    proxy.exchanges.append(Exchange(status, json.loads(body or b"{}"), json.loads(payload or b"{}"),
                                                    time.perf_counter() - started))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def _overrides(base_url: str, ray_address: str, run_dir: Path) -> list[str]:
    """The campaign: circle_packing through `llm=openai`, one proposal at a time, small budgets, text edits."""
    return ["problem=circle_packing", "llm=openai", f"llm.base_url={base_url}", f"llm.model={ALIAS}",
            "llm.api_key_env=EVOLVE_TEST_LLAMA_KEY", f"llm.context_tokens={CONTEXT}", f"llm.max_tokens={MAX_TOKENS}",
            f"prompt.chars_per_token={CHARS_PER_TOKEN}", "llm.concurrency=1", "max_in_flight=1", "llm.max_retries=0",
            "llm.timeout=600", f"llm.price_input_per_million={PRICE_IN}", f"llm.price_output_per_million={PRICE_OUT}",
            f"llm.max_unapplied_in_a_row={UNAPPLIED}", f"budget.iterations={ITERATIONS}", f"ray.address={ray_address}",
            "ray.num_workers=1", "database.islands=1", "progress=off", f"hydra.run.dir={run_dir}",
            "llm.edit_format=diff"]  # text: the structured test below asks for JSON


@pytest.mark.timeout(1500)  # a real model on two loaded cores: minutes, not the default 300 s
def test_a_short_campaign_against_a_real_model(llama_server, evolve_bin, cli_env, ray_address, tmp_path):
    upstream, server_log = llama_server
    assert _models_status(upstream, key=None) == 401  # so the campaign's requests carry the key it was named
    run_dir = tmp_path / "run"
    env = {**cli_env, "EVOLVE_TEST_LLAMA_KEY": KEY}
    with RecordingProxy(upstream) as proxy:
        run = subprocess.run([evolve_bin, "run", *_overrides(proxy.base_url, ray_address, run_dir)], check=False,
                             capture_output=True, text=True, env=env, timeout=1200)
        exchanges = _proposals(proxy)
    terminal = run.stdout + run.stderr
    assert exchanges, terminal
    with open_database(load_config(run_dir), run_dir, read_only=True) as db:
        calls = db.calls()
        programs = [p for p in db.programs() if p.iteration > 0]
        spend = db.spend()[ALIAS]

    # every request reached the real server and was answered; none was refused for its size
    assert all(e.status == 200 for e in exchanges), [(e.status, e.reply) for e in exchanges]
    assert all(e.request["max_tokens"] == MAX_TOKENS for e in exchanges)
    # each prompt was fitted to the context by the counts the server's tokenizer (or its usage) gave: the
    # real prompt and the longest reply fit, where the 2.5 characters a token estimate alone would trim more
    assert all(e.reply["usage"]["prompt_tokens"] + MAX_TOKENS <= CONTEXT for e in exchanges), \
        [e.reply["usage"]["prompt_tokens"] for e in exchanges]
    # every reply is recorded with its verdict: one call and one program per request, in order
    assert len(calls) == len(programs) == len(exchanges), terminal
    for exchange, call, program in zip(exchanges, calls, programs):
        assert call["response"] == program.proposal == exchange.reply["choices"][0]["message"]["content"]
        assert call["messages"] == exchange.request["messages"] and call["model"] == program.proposer == ALIAS
        assert program.status in _VERDICTS and (program.status is not ProgramStatus.EDIT_FAILED or program.error)
    # the accounting is the server's: tokens per call (a prompt-counting request's booked with the proposal it
    # was asked for) and in total, and the cost they make
    usage = [(e.reply["usage"]["prompt_tokens"], e.reply["usage"]["completion_tokens"]) for e in exchanges]
    counting = [(e.reply["usage"]["prompt_tokens"], e.reply["usage"]["completion_tokens"])
                for e in proxy.exchanges if e.request.get("max_tokens") == 1]
    booked = [(c["prompt_tokens"], c["completion_tokens"]) for c in calls]
    assert [(p.prompt_tokens, p.completion_tokens) for p in programs] == booked
    assert sum(b != u for b, u in zip(booked, usage)) <= len(counting), (booked, usage, counting)
    assert all(b[0] >= u[0] and b[1] >= u[1] for b, u in zip(booked, usage)), (booked, usage)
    prompt_tokens, completion_tokens = map(sum, zip(*usage, *counting))
    assert tuple(map(sum, zip(*booked))) == (prompt_tokens, completion_tokens)
    assert (spend["calls"], spend["prompt_tokens"], spend["completion_tokens"]) == \
        (len(exchanges), prompt_tokens, completion_tokens)
    assert spend["cost"] == pytest.approx((prompt_tokens * PRICE_IN + completion_tokens * PRICE_OUT) / 1e6)
    # the campaign ended on its own, for the reason its recorded verdicts give: the iteration budget, or
    # UNAPPLIED replies in a row that did not apply (the budget wins when both fall on the last iteration)
    watch = UnappliedWatch(UNAPPLIED)
    for n, program in enumerate(programs, 1):
        watch.observe(program)
        assert not watch.stopped or n == len(programs), "the campaign went on after the unapplied stop"
    log = (run_dir / "campaign.log").read_text()
    if len(programs) == ITERATIONS:  # the budget
        assert run.returncode == 0, terminal
        assert f"campaign stopped: budget.iterations={ITERATIONS} reached" in log
    else:
        assert watch.stopped and run.returncode == 1, terminal
        assert watch.message in " ".join(terminal.split()), terminal
    outcomes = model_outcomes(programs)[ALIAS]
    assert (outcomes.proposals, outcomes.transport_failed, outcomes.prompt_too_large) == (len(programs), 0, 0)
    seconds = sum(e.seconds for e in exchanges)
    trimmed = log.count("to fit the model's context")
    budget_stop = len(programs) == ITERATIONS
    print(f"\nreal model: {len(exchanges)} replies, {prompt_tokens} prompt and {completion_tokens} completion tokens "
          f"in {seconds:.0f} s of requests ({completion_tokens / seconds:.1f} completion tokens/s); applied "
          f"{outcomes.applied}, edit failures: {outcomes.reasons()}; {trimmed} prompts trimmed; stopped by "
          f"{'the iteration budget' if budget_stop else 'the unapplied stop'}; server log: {server_log}")


STRUCTURED_PROPOSALS, STRUCTURED_APPLIED = 30, 0.6


@pytest.mark.timeout(3600)  # 30 replies: 5 to 15 minutes on 2 idle cores, far longer on loaded ones
def test_structured_edits_from_a_real_model_mostly_apply(llama_server, evolve_bin, cli_env, ray_address, tmp_path):
    """With `llm.edit_format=structured` the server's constrained decoding can only write edits of the parent
    (llama-cpp-python's server takes the schema as `json_object`): most of SmolLM2's replies apply."""
    upstream, server_log = llama_server
    run_dir = tmp_path / "run"
    overrides = [o for o in _overrides("", ray_address, run_dir)
                 if not o.startswith(("llm.base_url=", "budget.iterations=", "llm.max_unapplied_in_a_row=",
                                      "llm.edit_format="))]
    with RecordingProxy(upstream) as proxy:
        run = subprocess.run([evolve_bin, "run", *overrides, f"llm.base_url={proxy.base_url}",
                              "llm.edit_format=structured", "llm.structured_edits=1",  # one edit suits a 135M model
                              f"budget.iterations={STRUCTURED_PROPOSALS}", "llm.max_unapplied_in_a_row=null",
                              "llm.max_wait_seconds=900"],
                             check=False, capture_output=True, text=True,
                             env={**cli_env, "EVOLVE_TEST_LLAMA_KEY": KEY}, timeout=3300)
        exchanges = [e for e in _proposals(proxy) if e.status == 200]
    terminal = run.stdout + run.stderr
    assert run.returncode == 0, terminal
    with open_database(load_config(run_dir), run_dir, read_only=True) as db:
        programs = [p for p in db.programs() if p.iteration > 0]
    assert len(programs) == len(exchanges) == STRUCTURED_PROPOSALS, terminal
    # every answered request carried the parent's schema, in the one shape this server takes
    assert all(e.request["response_format"]["type"] == "json_object" and e.request["response_format"]["schema"]
               for e in exchanges)
    outcomes = model_outcomes(programs)[ALIAS]
    share = outcomes.applied / len(programs)
    print(f"\nreal model, structured edits: {outcomes.applied} of {len(programs)} applied ({share:.0%}); "
          f"edit failures: {outcomes.reasons()}; server log: {server_log}")
    assert share >= STRUCTURED_APPLIED, outcomes.reasons()
