"""An OpenAI-compatible chat server on 127.0.0.1 for tests: scripted replies, injected faults.

    with FakeOpenAIServer(lambda request: "<<<<<<< SEARCH\\n...") as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test")

A responder gets the request body (a dict) and returns either the reply text or a `FakeReply` for
full control (HTTP status, headers such as retry-after, a delay, a raw body, or a fault: `hang` leaves
the request unanswered until the server stops, `drop` closes the connection with no reply).
`server.fault` puts the whole server into one fault at once (`"hang"`, `"drop"` or an HTTP status such
as 500), whatever the responder says; `None` ends it. Every request is kept
in `server.requests`, and the seconds the server spent answering each chat request (from reading it to
sending the reply) in `server.seconds`. With `context_tokens`, a request whose prompt (counted as the
server counts usage: 4 characters a token) plus its `max_tokens` exceeds it is refused with HTTP 400,
as llama.cpp and vLLM refuse it; refused requests are kept in `server.refused`. With `latency`, every
chat reply waits that many seconds more (a model of fixed latency, for benchmarks); `server.log` holds
one `Logged(path, arrived, answered)` per request of any kind, in wall-clock seconds (`time.time()`),
so another process's timestamps can be set beside them. With `tokenizer`, it also serves llama.cpp's
`POST /tokenize` (`{"content": text}` -> `{"tokens": [...]}`, one token per 4 characters, as it counts usage).
Connections are kept alive between requests and replies leave without Nagle's delay, as real servers
answer; `stop()` ends the kept-alive ones too.

`schema_shapes` names the shapes of `response_format` with a JSON schema that the server takes
(`json_schema`: OpenAI's `{"type": "json_schema", "json_schema": {"schema": ...}}`, `json_object`:
llama-cpp-python's `{"type": "json_object", "schema": ...}`; `STRUCTURED` names both). It takes none by
default, as a server without structured outputs: a schema is refused with HTTP 400 and the request kept in
`server.refused`, so scripted text replies reach a campaign as written. A schema it takes is honoured as
llama.cpp honours it, by constrained decoding: a scripted reply that does not conform is replaced by one
that does (the first choice of every enum, the fewest array items, empty strings). The pre-flight
question of `llm.edit_format=auto` (`evolve.proposals.structured.PROBE_SCHEMA`) is answered by the server
itself (or refused, as any schema), whatever the responder or a fault would do, and kept in `server.probes`
alone, so that scripted replies, `server.requests`, `server.refused` and `server.seconds` concern proposals
only.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from evolve.proposals.structured import PROBE_SCHEMA

__all__ = ["STRUCTURED", "FakeOpenAIServer", "FakeReply", "Logged", "conforming"]

STRUCTURED = ("json_schema", "json_object")  # every shape of response_format with a schema


@dataclass
class FakeReply:
    """A scripted HTTP answer.

    Attributes:
        content: the assistant message (ignored when `body` is given).
        status: HTTP status code.
        headers: extra response headers.
        delay: seconds to wait before answering.
        body: a raw body to send instead of a chat completion.
        prompt_tokens, completion_tokens: the usage to report.
        finish_reason: `stop`, or `length` for a reply cut off at max_tokens.
        hang: never answer: the request waits, unanswered, until the server stops.
        drop: close the connection without a reply (as a crashed server or a proxy that cut it).
    """

    content: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: bytes | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str = "stop"
    hang: bool = False
    drop: bool = False


@dataclass(frozen=True)
class Logged:
    """One request as the server saw it: its path and wall-clock arrival and answer (`time.time()`)."""

    path: str
    arrived: float
    answered: float


Responder = Callable[[dict[str, Any]], "str | FakeReply"]


def _prompt_tokens(request: dict[str, Any]) -> int:
    """The prompt's tokens as this server counts them: 4 characters a token."""
    return sum(len(str(m.get("content", ""))) // 4 for m in request.get("messages", []))


def _schema(request: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The shape and JSON schema of the request's `response_format`, or None when it asks for none."""
    shape = request.get("response_format")
    if not isinstance(shape, dict):
        return None
    if shape.get("type") == "json_schema" and isinstance(shape.get("json_schema"), dict):
        schema = shape["json_schema"].get("schema")
    else:
        schema = shape.get("schema")
    return (str(shape.get("type")), schema) if isinstance(schema, dict) else None


def conforming(schema: dict[str, Any]) -> Any:
    """The simplest instance of `schema` (the subset constrained decoding handles): what a model whose
    every choice is forced and that stops as early as it may would write."""
    if "anyOf" in schema or "oneOf" in schema:
        return conforming((schema.get("anyOf") or schema["oneOf"])[0])
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        properties = schema.get("properties", {})
        return {key: conforming(properties.get(key, {})) for key in schema.get("required", list(properties))}
    if kind == "array":
        return [conforming(schema.get("items", {}))] * max(1, schema.get("minItems", 0))
    return {"string": "", "integer": 0, "number": 0.0, "boolean": False, "null": None}.get(kind, "")


def _conforms(content: str, schema: dict[str, Any]) -> bool:
    """Whether a reply is JSON that `schema` accepts."""
    import jsonschema

    try:
        jsonschema.validate(json.loads(content), schema)
    except (ValueError, jsonschema.ValidationError):
        return False
    return True


def _faulty(fault: str | int | None) -> FakeReply | None:
    """The reply that the server-wide `fault` forces (None: no fault)."""
    if fault is None:
        return None
    if fault in ("hang", "drop"):
        return FakeReply(hang=fault == "hang", drop=fault == "drop")
    return FakeReply(f"injected fault: HTTP {fault}", status=int(fault))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.connections: set[socket.socket] = set()  # kept alive between requests, as real servers keep them
        self.connections_lock = threading.Lock()

    def close_connections(self) -> None:
        """End every open connection: a stopped server answers nothing more, not even on a kept-alive one."""
        with self.connections_lock:
            connections, self.connections = self.connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)  # a client that timed out and left is expected


class FakeOpenAIServer:
    """Serves `/v1/chat/completions` and `/v1/models` on an ephemeral port of 127.0.0.1."""

    def __init__(self, responder: Responder | None = None, model: str = "fake-model",
                 context_tokens: int | None = None, latency: float = 0.0, tokenizer: bool = False,
                 schema_shapes: tuple[str, ...] = ()) -> None:
        self.tokenizer = tokenizer
        self.responder: Responder = responder or (lambda request: "no edit")
        self.model = model
        self.context_tokens = context_tokens
        self.latency = latency
        self.schema_shapes = schema_shapes
        self.log: list[Logged] = []
        self.requests: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []
        self.probes: list[dict[str, Any]] = []
        self.seconds: list[float] = []
        self.fault: str | int | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()  # releases hung requests
        self._httpd = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The URL to give an OpenAI client (ends in /v1)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> Self:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.close_connections()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            # as vLLM, llama.cpp and OpenAI answer: connections kept alive, replies sent without Nagle's delay
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                with self.server.connections_lock:
                    self.server.connections.add(self.connection)

            def finish(self) -> None:
                with self.server.connections_lock:
                    self.server.connections.discard(self.connection)
                super().finish()

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                arrived = time.time()
                try:
                    self._get()
                finally:
                    with server._lock:
                        server.log.append(Logged(self.path, arrived, time.time()))

            def _get(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    body = {"object": "list", "data": [{"id": server.model, "object": "model",
                                                        "created": 0, "owned_by": "evolve"}]}
                    self._send(200, json.dumps(body).encode())
                else:
                    self._send(404, b'{"error": {"message": "not found"}}')

            def do_POST(self) -> None:
                started, arrived = time.perf_counter(), time.time()
                self.probe = False
                try:
                    self._chat()
                finally:
                    with server._lock:
                        if self.path.rstrip("/").endswith("/chat/completions") and not self.probe:
                            server.seconds.append(time.perf_counter() - started)
                        server.log.append(Logged(self.path, arrived, time.time()))

            def _chat(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                try:
                    request = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send(400, b'{"error": {"message": "invalid JSON"}}')
                    return
                if server.tokenizer and self.path.rstrip("/") == "/tokenize":
                    tokens = list(range(len(str(request.get("content", ""))) // 4))
                    self._send(200, json.dumps({"tokens": tokens}).encode())
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                needed = _prompt_tokens(request) + int(request.get("max_tokens") or 0)
                if server.context_tokens is not None and needed > server.context_tokens:
                    with server._lock:
                        server.refused.append(request)
                    message = (f"the request exceeds the available context size ({needed} tokens with max_tokens, "
                               f"context {server.context_tokens})")
                    self._send(400, json.dumps({"error": {"message": message, "type": "exceed_context_size_error",
                                                          "code": 400}}).encode())
                    return
                schema = _schema(request)
                probe = self.probe = schema is not None and schema[1] == PROBE_SCHEMA
                if probe:
                    with server._lock:
                        server.probes.append(request)
                if schema is not None and schema[0] not in server.schema_shapes:
                    if not probe:
                        with server._lock:
                            server.refused.append(request)
                    message = f"response_format type {schema[0]!r} is not supported"
                    self._send(400, json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                                          "code": 400}}).encode())
                    return
                if probe:
                    reply: FakeReply | str = FakeReply(json.dumps(conforming(PROBE_SCHEMA)))
                else:
                    with server._lock:
                        server.requests.append(request)
                    reply = _faulty(server.fault) or server.responder(request)
                if isinstance(reply, str):
                    reply = FakeReply(content=reply)
                if schema is not None and reply.status == 200 and not _conforms(reply.content, schema[1]):
                    reply = FakeReply(**{**reply.__dict__, "content": json.dumps(conforming(schema[1]))})
                if reply.hang:
                    server._stopping.wait()
                if reply.hang or reply.drop:
                    self.close_connection = True  # no reply at all: the connection just closes
                    return
                if reply.delay or server.latency:
                    time.sleep(reply.delay + server.latency)
                if reply.body is not None:
                    self._send(reply.status, reply.body, reply.headers)
                    return
                if reply.status != 200:
                    error = {"error": {"message": reply.content or f"status {reply.status}", "type": "fake"}}
                    self._send(reply.status, json.dumps(error).encode(), reply.headers)
                    return
                prompt_tokens = reply.prompt_tokens if reply.prompt_tokens is not None else _prompt_tokens(request)
                completion_tokens = reply.completion_tokens if reply.completion_tokens is not None \
                    else len(reply.content) // 4
                body = {
                    "id": f"chatcmpl-{len(server.requests)}", "object": "chat.completion",
                    "created": int(time.time()), "model": request.get("model", server.model),
                    "choices": [{"index": 0, "finish_reason": reply.finish_reason,
                                 "message": {"role": "assistant", "content": reply.content}}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                              "total_tokens": prompt_tokens + completion_tokens},
                }
                self._send(200, json.dumps(body).encode(), reply.headers)

        return Handler
