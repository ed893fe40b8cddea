"""`report.html`: the views of `evolve ui` in one self-contained file (plotly inlined, the data embedded),
with the tables of the best program, the proposals per model and the top programs beneath them."""

from __future__ import annotations

import difflib
import html
import logging
import os
import time
from concurrent import futures
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from sqlalchemy import select

from evaluators.direction import natural
from evolve.background import in_background
from evolve.config import Config
from evolve.engine.observer import CampaignObserver
from evolve.observe.aggregates import unapplied_tail
from evolve.observe.outcomes import unapplied_message
from evolve.population import Population
from evolve.program import Program, ProgramStatus
from evolve.storage._orm import ProgramRow
from evolve.storage.database import ProgramDatabase
from evolve.ui.assets import fill, plotly_js, static_text
from evolve.ui.data import (
    Figures,
    Tallies,
    campaign_figures,
    collection_paused,
    lineage_nodes,
    program_details,
    to_json,
)
from sandboxes import candidate_text

__all__ = ["ReportWriter", "write_report"]

_log = logging.getLogger("evolve.engine.campaign")

_EMBED_CHARS = 8000  # of each text of a program embedded in the report (code, diff, prompt messages, reply)
_REFRESH_WAIT = 60.0  # seconds the stop waits for a refresh under way


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape(candidate_text(value, "web", 200))


def _diff(before: str, after: str) -> str:
    rows = []
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), "initial", "best", lineterm="", n=2):
        css = "add" if line.startswith("+") and not line.startswith("+++") else \
            "del" if line.startswith("-") and not line.startswith("---") else ""
        rows.append(f'<span class="{css}">{html.escape(line)}</span>')
    return "<pre>" + "\n".join(rows) + "</pre>" if rows else "<p>The best program is the initial one.</p>"


def _side_by_side(best: Program, initial: Program, direction: str) -> str:
    head = ("<tr><th></th><th>best: train</th><th>best: validation</th><th>initial: train</th>"
            "<th>initial: validation</th></tr>")
    bv, iv = best.validation or {}, initial.validation or {}
    rows = [("score", natural(best.score, direction), natural(bv.get("score"), direction),
             natural(initial.score, direction), natural(iv.get("score"), direction))]
    rows += [(key, best.metrics[key], bv.get("metrics", {}).get(key), initial.metrics.get(key),
              iv.get("metrics", {}).get(key)) for key in sorted(k for k in best.metrics if "." not in k)]
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def write_report(run_dir: Path, db: ProgramDatabase, config: Config, references: list[dict] | None = None,
                 population: Population | None = None, figures: Figures | None = None,
                 details: dict[int, tuple[Any, dict[str, Any]]] | None = None) -> Path:
    """Write `run_dir/report.html` from the database and return its path (written whole or not at all).

    It reads small columns, grouped counts and the programs it shows in full (a database opened with
    `indexes=False` does). `references`: the problem's reference lines; by default its evaluator is asked
    for them. `population`: the campaign's own, else rebuilt from the store. `figures` and `details`: what
    was read before (`ReportWriter` keeps them during the campaign), brought up to date here."""
    if references is None:
        from evolve.ui.references import reference_lines

        references = reference_lines(config.problem)
    with collection_paused():
        return _write(run_dir, db, config, references, population, figures, details)


def _write(run_dir: Path, db: ProgramDatabase, config: Config, references: list[dict], population: Population | None,
           figures: Figures | None, details: dict[int, tuple[Any, dict[str, Any]]] | None) -> Path:
    data, tallies = campaign_figures(db, config, references, population, figures)
    shown = {node["id"] for node in data["lineage"]["nodes"]}
    shown |= {pid for m in data["maps"] for row in m["ids"] for pid in row if pid is not None}
    details = program_details(db, sorted(shown), config.problem.direction, _EMBED_CHARS, details)
    embedded = {"written": time.strftime("%Y-%m-%d %H:%M:%S"), "campaigns": [_brief(data, run_dir)],
                "data": [data], "programs": [{str(k): v for k, v in details.items()}],
                **_views(db, config, run_dir, tallies)}
    script = "window.EVOLVE_EMBEDDED = " + to_json(embedded).replace("</", "<\\/") + ";"
    page = fill(static_text("index.html"),
                head=f"<style>{static_text('style.css')}</style>\n<script>{_inline(plotly_js().read_text())}</script>",
                tail=f"<script>{script}</script>\n<script>{_inline(static_text('app.js'))}</script>",
                static="\n".join(_tables(db, config, data, tallies)))
    path = run_dir / "report.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page)
    os.replace(tmp, path)
    return path


def _views(db: ProgramDatabase, config: Config, run_dir: Path, tallies: Tallies) -> dict[str, list]:
    """The views with endpoints of their own in `evolve ui`, embedded: the state the campaign recorded at its
    end, the best programs' rows for the table, the genealogy, cost over time and the sweep's runs (the
    genealogy and the costs from the rows the charts read: no other pass over every program)."""
    from evolve.ui.genealogy import genealogy
    from evolve.ui.series import SweepCurves, cost_over_time
    from evolve.ui.state import recorded_state
    from evolve.ui.table import report_table

    direction = config.problem.direction
    return {"state": [recorded_state(db)], "tables": [report_table(db, direction)],
            "genealogy": [genealogy(db, direction, programs=tallies.rows)],
            "costs": [cost_over_time(db, tallies.rows)],
            "sweep": [SweepCurves().curves(run_dir)]}


def _inline(script: str) -> str:
    return script.replace("</script", "<\\/script")


def _brief(data: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The report's one campaign as `evolve ui` lists campaigns."""
    return {"run": 0, "run_dir": str(run_dir), "name": data["name"], "problem": data["problem"], "last": data["last"]}


def _tables(db: ProgramDatabase, config: Config, data: dict[str, Any], tallies: Tallies) -> list[str]:
    """The report's tables: the best program against the initial one, proposals per model, the top
    programs and what the best program changed."""
    direction = config.problem.direction
    best, initial = tallies.best, tallies.initial
    ranked = _top(db, 10)
    top_rows = "".join(
        f"<tr><td>{p.id}</td><td>{p.iteration}</td><td>{p.generation}</td><td>{p.island}</td>"
        f"<td>{_fmt(natural(p.score, direction))}</td>"
        f"<td>{_fmt(natural((p.validation or {}).get('score'), direction))}</td>"
        f"<td>{html.escape(p.proposer)}</td></tr>" for p in ranked)
    parts = [f"<section><h2>{html.escape(config.problem.name)}: {html.escape(db_name(config))}</h2>",
             f"<p>{html.escape(config.problem.description)}</p>",
             f"<p>{data['iterations']} of {config.budget.iterations} iterations; programs by status: "
             + ", ".join(f"{html.escape(k)} {v}" for k, v in sorted(data["counts"].items())) + "</p>"]
    if best is not None and initial is not None:
        parts += [f"<h2>Best program {best.id} (iteration {best.iteration}, by {html.escape(best.proposer)})</h2>",
                  _side_by_side(best, initial, direction),
                  f"<p>{html.escape(candidate_text(best.feedback, 'web', _EMBED_CHARS))}</p>"]
    parts += _proposals(db, config, data, tallies)
    parts += [("<h2>Top programs</h2><table><tr><th>id</th><th>iteration</th><th>generation</th><th>island</th>"
               f"<th>score</th><th>validation</th><th>proposer</th></tr>{top_rows}</table>")]
    if best is not None and initial is not None:
        parts += ["<h2>What the best program changed</h2>", _diff(initial.code, best.code)]
    return parts + ["</section>"]


def _top(db: ProgramDatabase, n: int) -> list[Program]:
    """The `n` best valid programs in full (the first committed among equal scores)."""
    P = ProgramRow
    query = (select(P.id).where(P.campaign_id == db.campaign_id, P.status == ProgramStatus.VALID.value)
             .order_by(P.score.desc(), P.id).limit(n))
    with db.connect() as conn:
        ids = list(conn.execute(query).scalars())
    found = db.read_many(ids)
    return [found[pid] for pid in ids if pid in found]


def _proposals(db: ProgramDatabase, config: Config, data: dict[str, Any], tallies: Tallies) -> list[str]:
    """Per model: proposals, applied edits, edit failures by kind, transport failures, tokens; and the
    run of replies that did not apply at the end, when it stopped (or would have stopped) the campaign."""
    if not tallies.outcomes:
        return []
    children, valid = tallies.children_evaluated, tallies.children_valid
    share = (f"{100 * valid / children:.1f}% of {children} evaluated children" if children
             else "no child evaluated")
    rows = "".join(
        f"<tr><td>{html.escape(m['model'])}</td><td>{m['proposals']}</td><td>{m['applied']}</td>"
        f"<td>{m['edit_failed']}</td><td>{html.escape(m['why_not_applied'])}</td><td>{m['transport_failed']}</td>"
        f"<td>{m['prompt_too_large']}</td><td>{m['prompt_tokens']}</td><td>{m['completion_tokens']}</td>"
        f"<td>{m['valid']} / {m['evaluated']}</td>{_dollars(m)}</tr>" for m in data["spend"] if m["proposals"])
    out = ["<h2>Proposals per model</h2>", f"<p>valid share: {share}</p>",
           ("<table><tr><th>proposer</th><th>proposals</th><th>applied</th><th>edit failed</th><th>why not applied</th>"
            "<th>transport failed</th><th>prompt too large</th><th>tokens in</th><th>tokens out</th>"
            "<th>valid / evaluated</th><th>cost $</th><th>improved parent</th><th>new bests</th>"
            f"<th>$ per improvement</th><th>$ per new best</th></tr>{rows}</table>")]
    run, reasons, last = unapplied_tail(db)
    limit = config.llm.max_unapplied_in_a_row
    if run and run >= (limit or 20):
        out.append(f"<p><b>The last {html.escape(unapplied_message(run, reasons, last))}</b></p>")
    return out


def _dollars(spend: dict) -> str:
    """Cells: a model's cost, improvements, new bests, and dollars per improvement and per new best."""
    cost, improved, bests = spend.get("cost", 0.0), spend.get("improvements", 0), spend.get("new_bests", 0)
    per = [f"{cost / n:.4f}" if n else "-" for n in (improved, bests)]
    return f"<td>{cost:.4f}</td><td>{improved}</td><td>{bests}</td><td>{per[0]}</td><td>{per[1]}</td>"


def db_name(config: Config) -> str:
    """The campaign's name as the database knows it."""
    return config.name or config.problem.name


class ReportWriter(CampaignObserver):
    """Writes `report.html` at every stop of a campaign, from the campaign's own population (nothing rebuilt
    at the stop); the problem's reference lines (its evaluator may take seconds to build) are computed on a
    thread once the campaign has started.

    What the report reads is kept up to date off the event loop, once the campaign has started and every
    `REFRESH_EVERY` commits: the programs' small columns (`evolve.ui.data.Figures`) and the details of the
    programs it would show, so that the stop reads only what came since."""

    REFRESH_EVERY = 1000

    def __init__(self) -> None:
        self._references: Future | None = None
        self._population: Population | None = None
        self._database: ProgramDatabase | None = None
        self._direction = "maximize"
        self._figures = Figures()
        self._details: dict[int, tuple[Any, dict[str, Any]]] = {}
        self._refresh: Future | None = None
        self._commits = 0

    def database(self, database: ProgramDatabase) -> None:
        self._database = database
        self._refresh = in_background(self._figures.update, database, name="evolve-report")  # during the set-up

    def population(self, population: Population) -> None:
        self._population = population

    def started(self, config: Config, run_dir: Path) -> None:
        from evolve.ui.references import reference_lines

        self._references = in_background(reference_lines, config.problem)
        self._direction = config.problem.direction
        self._refresh_now(after=self._refresh)

    def committed(self, program: Program, best: bool) -> None:
        self._commits += 1
        if self._commits >= self.REFRESH_EVERY and (self._refresh is None or self._refresh.done()):
            self._refresh_now()

    def _refresh_now(self, after: Future | None = None) -> None:
        """Bring what the report reads up to date on a thread, once the refresh `after` is done: the population's
        leaders and cells are taken here, on the event loop."""
        if self._database is None or self._population is None:
            return
        self._commits = 0
        cells = {pid for grid in self._population.grids() for pid in grid.values()}
        self._refresh = in_background(self._catch_up, after, self._database, self._population.leaders(), cells,
                                      name="evolve-report")

    def _catch_up(self, after: Future | None, db: ProgramDatabase, leaders: list[int], cells: set[int]) -> None:
        if after is not None:
            futures.wait([after])
        rows = self._figures.update(db)[0]
        shown = lineage_nodes(rows, leaders) | cells
        with collection_paused():
            program_details(db, sorted(shown), self._direction, _EMBED_CHARS, self._details)

    def stopped(self, config: Config, run_dir: Path, database: ProgramDatabase) -> None:
        population, self._population = self._population, None
        figures, details = self._figures, self._details
        if self._refresh is not None:
            try:
                self._refresh.result(timeout=_REFRESH_WAIT)
            except TimeoutError:  # still reading (a database that hardly answers): the report reads afresh
                figures, details = Figures(), {}
            except Exception as exc:  # noqa: BLE001 (what it read is kept; the report reads the rest)
                _log.info("report.html's refresh failed: %s: %s", type(exc).__name__, exc)
        try:
            write_report(run_dir, database, config,
                         references=self._references.result() if self._references is not None else None,
                         population=population, figures=figures, details=details)
        except Exception as exc:  # noqa: BLE001 (failing here must not hide why the campaign stopped)
            from evolve.storage.faults import describe

            _log.warning("report.html was not written: %s: %s", type(exc).__name__, describe(exc))
