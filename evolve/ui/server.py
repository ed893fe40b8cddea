"""`evolve ui`: a local web view of campaigns, served by the standard library's `http.server`.

One static page (`evolve/ui/static/`) and JSON endpoints; the page polls them, so a running campaign's
charts follow it. Every database is opened read-only (`evolve.storage.rundir.open_database(read_only=True)`):
the view never writes. The chart library's script is served from the `plotly` package: no CDN.

    GET /                             the page
    GET /static/NAME                  its script, style and plotly.min.js
    GET /api/campaigns                the run dirs found and a line about each
    GET /api/campaign?run=K           every chart's data for run K (`evolve.ui.data.campaign_data`)
    GET /api/program?run=K&id=N       one program: code, diff, feedback, prompt and reply
    GET /api/state?run=K              running, finished, failed, stopped by the user or died, why, and the ETA
    GET /api/programs?run=K&sort=score&order=desc&status=&reason=&island=&page=0&size=50
                                      one page of the table of all programs (`evolve.ui.table`)
    GET /api/genealogy?run=K&limit=N  the genealogy tree, every program or the best ones' ancestries
    GET /api/costs?run=K              cost and proposals per model over time
    GET /api/sweep?run=K              the best-score curves of the runs of run K's sweep (`evolve run -m`)

The list of run dirs is scanned again (at most every `RESCAN_SECONDS`) when the page asks for it, so
runs started after `evolve ui` appear; a run keeps its number.

Only for its owner (`evolve.ui.access`): a request whose `Host` names another address is refused (DNS
rebinding), and off loopback every request needs the token printed in the URL.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from datetime import UTC
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

from evolve.errors import EvolveError, RunDirError
from evolve.ui.access import Access
from evolve.ui.assets import asset, page
from evolve.ui.rundirs import find_runs

__all__ = ["RESCAN_SECONDS", "RunSource", "find_runs", "make_server"]

_log = logging.getLogger("evolve.ui")
RESCAN_SECONDS = 2.0


class RunSource:
    """One run dir as the page sees it: its config, its database opened read-only (reopened when its
    rows change, so the indexes follow a running campaign), the chart data cached until then."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._lock = threading.Lock()
        self._config = None
        self._db = None
        self._opened_wal = False
        self._signature: Any = None
        self._fresh_until = 0.0
        self._data: dict[str, Any] | None = None
        self._references: list[dict] | None = None
        self._references_thread: threading.Thread | None = None
        self._reasons: Any = None  # evolve.ui.table.Reasons, made on first use
        self._cached: dict[str, tuple[Any, Any]] = {}  # genealogy and costs, by the row counts they were read at
        self._figures: Any = None  # evolve.ui.data.Figures: the small columns read so far, made on first use

    def _open(self):
        from evolve.storage.rundir import load_config, open_database

        if self._config is None:
            self._config = load_config(self.run_dir, find_problem=False)  # the figures only: see `_start_references`
        if self._db is not None and self._wal() != self._opened_wal:
            self._db.close()  # a closed SQLite file is read as immutable: a campaign resumed since needs a new reader
            self._db, self._fresh_until = None, 0.0
        if self._db is None:
            self._opened_wal = self._wal()
            self._db = open_database(self._config, self.run_dir, read_only=True, indexes=False)  # none needed
        return self._config, self._db

    def _wal(self) -> bool:
        """Whether the run's SQLite file has a write-ahead log now (a campaign has it open)."""
        from evolve.storage.rundir import database_url

        url = database_url(self._config, self.run_dir)
        return url.startswith("sqlite") and Path(url.split(":///", 1)[1] + "-wal").exists()

    def _start_references(self) -> None:
        """Build the problem's evaluator once, apart, for its reference lines (it may take seconds)."""
        if self._references_thread is not None:
            return
        from evolve.ui.references import reference_lines

        def work() -> None:  # the problem's folder looked up anew (it may have moved since the run): its evaluator
            from evolve.storage.rundir import load_config

            try:
                problem = load_config(self.run_dir).problem
            except (EvolveError, OSError):  # changed since it was read: the folder it names
                problem = self._config.problem
            self._references = reference_lines(problem)

        self._references_thread = threading.Thread(target=work, name=f"references {self.run_dir}", daemon=True)
        self._references_thread.start()

    def summary(self) -> dict[str, Any]:
        """The run's name and problem, and when it last changed, without opening its database (the list
        of a folder of many runs stays quick); or why its config cannot be read."""
        from datetime import datetime

        from evolve.storage.rundir import campaign_name, load_config

        try:
            with self._lock:
                if self._config is None:
                    self._config = load_config(self.run_dir, find_problem=False)
        except (EvolveError, OSError) as exc:
            return {"run_dir": str(self.run_dir), "error": str(exc)}
        changed = 0.0
        for path in [*self.run_dir.glob("programs.db*"), self.run_dir / "config.yaml"]:
            try:
                changed = max(changed, path.stat().st_mtime)
            except OSError:  # a -wal file removed as the campaign closed
                pass
        return {"run_dir": str(self.run_dir), "name": campaign_name(self._config, self.run_dir),
                "problem": self._config.problem.name,
                "last": datetime.fromtimestamp(changed, UTC).isoformat()}

    def data(self, wait_references: float = 0.0) -> dict[str, Any]:
        """Every chart's data, recomputed only when the database's rows changed, and then at most once per
        ten times what the last computation took (the view of a large live campaign leaves it the CPU)."""
        from evolve.ui.data import Figures, campaign_data, collection_paused

        with self._lock:
            if self._figures is None:
                self._figures = Figures()
            config, db = self._open()
            if wait_references:
                self._start_references()
                self._references_thread.join(wait_references)
            if self._data is not None and time.monotonic() < self._fresh_until:
                return self._data
            signature = (db.counts(), self._references is not None)
            if signature != self._signature:
                started = time.monotonic()
                if self._signature is not None and signature[0] != self._signature[0]:
                    db.close()  # new rows: a fresh reader (a SQLite file may have been closed since)
                    self._db = None
                    config, db = self._open()
                with collection_paused():
                    self._data = campaign_data(db, config, self._references, figures=self._figures)
                self._data["version"] = json.dumps(signature, sort_keys=True, default=str)
                self._signature = signature
                self._fresh_until = time.monotonic() + 9 * (time.monotonic() - started)
            self._start_references()  # after the first answer: building the evaluator would slow it down
            return self._data

    def program(self, program_id: int) -> dict[str, Any] | None:
        """One program's details."""
        from evolve.ui.data import program_detail

        with self._lock:
            config, db = self._open()
            return program_detail(db, program_id, config.problem.direction)

    def state(self) -> dict[str, Any]:
        """Whether the campaign runs, how it ended, and its ETA (read anew each time)."""
        from evolve.ui.state import run_state

        with self._lock:
            config, db = self._open()
            return run_state(db, config, self.run_dir)

    def table(self, query: Any) -> dict[str, Any]:
        """One page of the table of programs (`query`: an `evolve.ui.table.TableQuery`)."""
        from evolve.ui.table import Reasons, program_page

        with self._lock:
            config, db = self._open()
            if self._reasons is None:
                self._reasons = Reasons()
            return program_page(db, config.problem.direction, query, self._reasons)

    def genealogy(self, limit: int) -> dict[str, Any]:
        """The genealogy tree, read again only when rows were added."""
        from evolve.ui.genealogy import genealogy

        return self._cached_view("genealogy", lambda config, db: genealogy(db, config.problem.direction, limit),
                                 limit)

    def costs(self) -> dict[str, Any]:
        """Cost and proposals per model over time, read again only when rows were added."""
        from evolve.ui.series import cost_over_time

        return self._cached_view("costs", lambda _config, db: cost_over_time(db))

    def _cached_view(self, key: str, compute: Any, *asked: Any) -> Any:
        """`compute(config, db)`, kept until rows are added or it is asked for with other arguments."""
        with self._lock:
            config, db = self._open()
            signature = (db.counts(), asked)
            cached = self._cached.get(key)
            if cached is None or cached[0] != signature:
                cached = self._cached[key] = (signature, compute(config, db))
            return cached[1]

    def close(self) -> None:
        """Release the database."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        refusal = self.server.access.check(self.headers.get("Host"), self.headers.get("Cookie"), query.get("token"))
        if refusal is not None:
            return self._error(refusal.status, refusal.message)
        try:
            if url.path in ("/", "/index.html"):
                return self._send(page(), "text/html; charset=utf-8")
            if url.path.startswith("/static/"):
                found = asset(url.path.removeprefix("/static/"))
                if found is None:
                    return self._error(HTTPStatus.NOT_FOUND, f"no such file {url.path}")
                return self._send(*found, cache=url.path.endswith("plotly.min.js"))  # the page's own files may change
            if url.path == "/api/campaigns":
                self.server.rescan()
                return self._json([dict(s.summary(), run=k) for k, s in enumerate(list(self.server.sources))])
            source = self._source(query)
            if source is None:
                return None
            if url.path == "/api/campaign":
                return self._json(source.data())
            if url.path == "/api/program":
                if not query.get("id", "").isdigit():
                    return self._error(HTTPStatus.BAD_REQUEST, "id=N: a program's id is required")
                found = source.program(int(query["id"]))
                if found is None:
                    return self._error(HTTPStatus.NOT_FOUND, f"no program {query['id']} in {source.run_dir}")
                return self._json(found)
            if url.path == "/api/state":
                return self._json(source.state())
            if url.path == "/api/programs":
                return self._programs(source, query)
            if url.path == "/api/genealogy":
                return self._genealogy(source, query)
            if url.path == "/api/costs":
                return self._json(source.costs())
            if url.path == "/api/sweep":
                return self._json(self.server.sweeps.curves(source.run_dir))
            return self._error(HTTPStatus.NOT_FOUND, f"no such page {url.path}")
        except (EvolveError, OSError) as exc:
            return self._error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))

    def _programs(self, source: RunSource, query: dict[str, str]) -> None:
        from evolve.ui.table import TableQuery

        try:
            asked = TableQuery(**{k: query[k] for k in ("sort", "order", "status", "reason", "island", "page", "size")
                                  if k in query})
        except EvolveError as exc:
            return self._error(HTTPStatus.BAD_REQUEST, str(exc))
        return self._json(source.table(asked))

    def _genealogy(self, source: RunSource, query: dict[str, str]) -> None:
        from evolve.ui.genealogy import DEFAULT_LIMIT, MAX_LIMIT

        limit = query.get("limit", str(DEFAULT_LIMIT))
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            return self._error(HTTPStatus.BAD_REQUEST, f"limit={limit}: the most nodes to draw, 1 to {MAX_LIMIT}")
        return self._json(source.genealogy(int(limit)))

    def _source(self, query: dict[str, str]) -> RunSource | None:
        run = query.get("run", "0")
        if not run.isdigit() or int(run) >= len(self.server.sources):
            self._error(HTTPStatus.NOT_FOUND, f"run={run}: no such run (0 to {len(self.server.sources) - 1})")
            return None
        return self.server.sources[int(run)]

    def _json(self, value: Any) -> None:
        from evolve.ui.data import to_json

        self._send(to_json(value).encode(), "application/json")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._send(json.dumps({"error": message}).encode(), "application/json", status)

    def _send(self, body: bytes, kind: str, status: HTTPStatus = HTTPStatus.OK, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=86400" if cache else "no-store")
        self.send_header("Referrer-Policy", "no-referrer")  # a URL with the token in it goes nowhere else
        cookie = self.server.access.set_cookie(parse_qs(urlparse(self.path).query).get("token", [None])[-1])
        if cookie is not None and status == HTTPStatus.OK:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the page asks for several things at once

    def __init__(self, address: tuple[str, int], sources: list[RunSource], token: str | None = None,
                 root: Path | None = None) -> None:
        import evolve.ui.data  # noqa: F401 (imported before the address is printed, not in the first call)
        from evolve.ui.series import SweepCurves

        self.sources = sources
        self.root = root
        self.sweeps = SweepCurves()
        self._scan_lock = threading.Lock()
        self._scanned = time.monotonic()
        super().__init__(address, _Handler)
        self.access = Access(address[0], self.server_address[1], token)

    def rescan(self) -> None:
        """Add the run dirs created under the root since the last scan (at most every `RESCAN_SECONDS`);
        the runs already listed keep their numbers."""
        if self.root is None or not self._scan_lock.acquire(blocking=False):
            return
        try:
            if time.monotonic() - self._scanned < RESCAN_SECONDS:
                return
            known = {s.run_dir for s in self.sources}
            try:
                found = find_runs(self.root)
            except RunDirError:  # the folder was emptied or removed: the runs listed stay
                found = []
            self.sources.extend(RunSource(run_dir) for run_dir in found if run_dir not in known)
            self._scanned = time.monotonic()
        finally:
            self._scan_lock.release()

    @property
    def url(self) -> str:
        """The address to open: this machine's name on a bind to every interface, the token when there is one."""
        host, port = self.server_address[:2]
        if self.access.everywhere:
            host = socket.gethostname()
        query = f"?token={quote(self.access.token)}" if self.access.token else ""
        return f"http://{host}:{port}/{query}"

    def server_close(self) -> None:
        super().server_close()
        for source in self.sources:
            source.close()


def make_server(path: str | Path, host: str = "127.0.0.1", port: int = 8470, token: str | None = None) -> _Server:
    """A server of the run dirs at `path` (call `serve_forever`; `server_address` holds the real port
    when `port` is 0, `url` the address to open). `token`: None gives a random one off loopback and none
    on it; "" asks for none, which a bind off loopback refuses (`evolve.ui.access.Access`)."""
    Access(host, port, token)  # a bind it would refuse is refused before the port is taken
    sources = [RunSource(run_dir) for run_dir in find_runs(path)]
    try:
        return _Server((host, port), sources, token, root=Path(path))
    except OSError as exc:
        raise EvolveError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another with --port") from None
