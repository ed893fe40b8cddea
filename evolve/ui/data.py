"""The web view's data: plain-JSON views of one campaign, read from a `ProgramDatabase` (read-only or not).

Every score is natural (a minimised problem's values negated back). The same dicts feed `evolve ui`'s
endpoints and the data embedded in `report.html`, so both show the same figures.
"""

from __future__ import annotations

import collections
import contextlib
import difflib
import functools
import gc
import heapq
import itertools
import json
import math
import re
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import case, func, select

from evaluators.direction import natural
from evolve.config import Config
from evolve.observe.outcomes import counted_outcomes, outcome_kind
from evolve.population import Population, restore_population
from evolve.program import Program, ProgramStatus, score_spread
from evolve.storage._orm import ProgramRow
from evolve.storage.database import ProgramDatabase, count_improvements
from sandboxes import candidate_text

__all__ = ["Figures", "Tallies", "campaign_data", "campaign_figures", "collection_paused", "finite", "lineage_ids",
           "lineage_nodes", "program_detail", "program_details", "to_json"]

_EVALUATED = frozenset(s for s in ProgramStatus if s.is_evaluated())
_SHARE_WINDOW = 50  # evaluated children per point of the valid-share curve
_LINEAGE_TOP = 10  # the lineage tree joins the ancestries of this many best programs (and each island's best)
_REASONS = 12


def campaign_data(db: ProgramDatabase, config: Config, references: list[dict] | None = None,
                  population: Population | None = None, figures: Figures | None = None) -> dict[str, Any]:
    """Every chart's series for one campaign, as plain JSON.

    It reads small columns and grouped counts only (a database opened with `indexes=False` does), and the
    best and the initial program in full; `population`: the campaign's own (a running campaign's report),
    else it is rebuilt from the store's small columns. `figures`: the small columns read before (see
    `campaign_figures`)."""
    return campaign_figures(db, config, references, population, figures)[0]


class _Row(NamedTuple):
    """A program's columns that the charts need (no code, metrics, feedback or error)."""

    id: int
    iteration: int
    status: ProgramStatus
    score: float | None
    parent_id: int | None
    island: int
    generation: int
    proposer: str
    cost: float = 0.0
    epoch: float | None = None  # the commit time in seconds since the epoch, as the database computes it


class Tallies(NamedTuple):
    """What the report needs beside the charts: the best and initial programs in full, the children
    evaluated and valid, and the rows per model's outcome."""

    best: Program | None
    initial: Program | None
    children_evaluated: int
    children_valid: int
    outcomes: dict[str, Any]
    rows: Sequence[_Row] = ()  # every program's small columns, for the report's other views


_pause_lock = threading.Lock()
_paused = {"pauses": 0, "collecting": True}  # pauses under way; whether the collector ran before the first


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a reader builds many small objects (it would walk them over
    and over as they pile up: half the time of a scan of 100,000 rows); thread-safe and re-entrant, the
    collector runs again after the last pause as it did before the first."""
    with _pause_lock:
        if _paused["pauses"] == 0:
            _paused["collecting"] = gc.isenabled()
            gc.disable()
        _paused["pauses"] += 1
    try:
        yield
    finally:
        with _pause_lock:
            _paused["pauses"] -= 1
            if _paused["pauses"] == 0 and _paused["collecting"]:
                gc.enable()


def campaign_figures(db: ProgramDatabase, config: Config, references: list[dict] | None = None,
                     population: Population | None = None,
                     figures: Figures | None = None) -> tuple[dict[str, Any], Tallies]:
    """`campaign_data` and the `Tallies` that the report adds to it. `figures`: the small columns read before
    (by a campaign's report or the web view), brought up to date here: only the rows since are read."""
    with collection_paused():
        return _figures(db, config, references, population, figures)


def _figures(db: ProgramDatabase, config: Config, references: list[dict] | None, population: Population | None,
             figures: Figures | None) -> tuple[dict[str, Any], Tallies]:
    direction = config.problem.direction
    figures = figures if figures is not None else Figures()
    rows, seconds, start, last, groups = figures.update(db)
    if population is None:
        population = restore_population(config, db)  # from the small columns, as a resumed campaign rebuilds it
    scores = _scores(rows, seconds, direction, population.islands)
    top: _Row | None = None
    initial_id = None
    for r in rows:  # the rule of the store's indexes: the first of the highest score, the first initial one
        if r.status is ProgramStatus.VALID:
            if top is None or r.score > top.score:
                top = r
            if initial_id is None and r.iteration == 0:
                initial_id = r.id
    best_id = top.id if top is not None else None
    found = db.read_many([pid for pid in (best_id, initial_id) if pid is not None])
    best = found.get(best_id) if best_id is not None else None
    initial = found.get(initial_id) if initial_id is not None else None
    counts = _counts(groups)
    outcomes = counted_outcomes((proposer, status, outcome_kind(status, error), n)
                                for proposer, status, child, proposal, error, n in groups if child and proposal)
    children = [(status, n) for _, status, child, _, _, n in groups if child and status.is_evaluated()]
    data = {
        "name": db_name(config), "problem": config.problem.name, "direction": direction,
        "description": config.problem.description,
        "iterations": sum(1 for r in rows if r.iteration > 0), "budget": config.budget.iterations,
        "counts": counts, "islands": population.islands,
        "started": start.isoformat() if start else None,
        "last": last.isoformat() if last else None,
        "best": _brief(best, direction), "initial": _brief(initial, direction),
        "references": references or [],
        **scores,
        "valid_share": _valid_share(rows, seconds),
        "failures": _failures(groups, counts),
        "maps": _maps(db, population, rows, direction),
        "lineage": _lineage(db, population, rows, direction, best),
        "spend": _spend(db, rows, outcomes),
    }
    tallies = Tallies(best, initial, sum(n for _, n in children),
                       sum(n for status, n in children if status is ProgramStatus.VALID), outcomes, rows)
    return data, tallies


class Figures:
    """A campaign's small columns as the charts read them, read once and then only the rows committed since (a
    committed row never changes): every program's `_Row` and commit time in commit order, and the rows grouped
    as `_group_rows` groups them. Kept by a campaign's report and by the web view between calls. Thread-safe."""

    class Read(NamedTuple):
        """What `update` read: the rows, their seconds since the first, the first and last times, the groups."""

        rows: list[_Row]
        seconds: dict[int, float]
        start: datetime | None
        last: datetime | None
        groups: list[tuple[str, ProgramStatus, bool, bool, str, int]]

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rows: list[_Row] = []
        self.times: dict[int, datetime] = {}  # each program's commit time
        self.seconds: dict[int, float] = {}  # from the first commit time to each program's
        self.start: datetime | None = None  # the first and last commit times
        self.last: datetime | None = None
        self._grouped: dict[tuple[str, str, bool, bool, str], list[int]] = {}  # key: [rows, first id]
        self.upto = 0  # the last id read

    def update(self, db: ProgramDatabase) -> Figures.Read:
        """Read the rows committed since the last update (all of them the first time); return what was read
        as it is now."""
        with self._lock, collection_paused():
            after = self.upto
            rows, times = _scan(db, after)
            if rows:  # the groups of the same rows: those up to the last one scanned
                grouped = _group_rows(db, after, rows[-1].id)
                self.rows.extend(rows)
                self.upto = rows[-1].id
                self._add_times(times)
                for key, n, first in grouped:
                    found = self._grouped.get(key)
                    if found is None:
                        self._grouped[key] = [n, first]
                    else:
                        found[0] += n
            return Figures.Read(list(self.rows), dict(self.seconds), self.start, self.last, self._groups())

    def _add_times(self, times: dict[int, datetime]) -> None:
        self.times.update(times)
        first, last = min(times.values()), max(times.values())
        self.last = last if self.last is None else max(self.last, last)
        if self.start is not None and first >= self.start:
            self.seconds.update((pid, (t - self.start).total_seconds()) for pid, t in times.items())
        else:  # the first time, or an earlier one (a clock stepped back): every program's seconds again
            self.start = first
            self.seconds = {pid: (t - first).total_seconds() for pid, t in self.times.items()}

    def _groups(self) -> list[tuple[str, ProgramStatus, bool, bool, str, int]]:
        """The rows grouped by (proposer, status, past the initial iteration, has a parent, error), the error
        kept for failed rows only, in the order of each group's first row."""
        found = sorted(self._grouped.items(), key=lambda item: item[1][1])
        return [(proposer, ProgramStatus(status), child, proposal, error, n)
                for (proposer, status, child, proposal, error), (n, _) in found]


def _counts(groups: list[tuple[str, ProgramStatus, bool, bool, str, int]]) -> dict[str, int]:
    """Programs per status, from the rows' groups."""
    out: dict[str, int] = {}
    for _, status, _, _, _, n in groups:
        out[status.value] = out.get(status.value, 0) + n
    return dict(sorted(out.items()))


def _scan(db: ProgramDatabase, after: int) -> tuple[list[_Row], dict[int, datetime]]:
    """Every program's `_Row` past id `after` in commit order, and its commit time: one pass over small
    columns (on SQLite an index holds them all), as the driver returns them (SQLAlchemy's per-row processing
    costs more)."""
    P = ProgramRow
    query = (select(P.id, P.iteration, P.status, P.score, P.parent_id, P.island, P.generation, P.proposer, P.cost,
                    db.epoch_seconds(P.created_at), P.created_at)
             .where(P.campaign_id == db.campaign_id, P.id > after).order_by(P.id))
    statuses = {s.value: s for s in ProgramStatus}
    make = functools.partial(tuple.__new__, _Row)  # a column at a time, at C speed: 100,000 rows
    rows: list[_Row] = []
    times: dict[int, datetime] = {}
    with db.connect() as conn:
        cursor = conn.execute(query).cursor
        while batch := cursor.fetchmany(5000):
            ids, iterations, status, *rest, created = zip(*batch, strict=True)
            rows.extend(map(make, zip(ids, iterations, map(statuses.__getitem__, status), *rest)))
            if isinstance(created[0], str):  # SQLite's text
                created = tuple(map(datetime.fromisoformat, created))
            times.update(zip(ids, created))
    return rows, times


_FAILED = (ProgramStatus.INVALID, ProgramStatus.EDIT_FAILED, ProgramStatus.PROPOSAL_FAILED,
           ProgramStatus.EVALUATOR_ERROR)


def _group_rows(db: ProgramDatabase, after: int, upto: int) -> list[tuple[tuple[str, str, bool, bool, str], int, int]]:
    """The rows of ids `after` < id <= `upto` grouped by (proposer, status, past the initial iteration, has a
    parent, error), the error kept for failed rows only: each group's key, rows and first id (one grouped
    query, no row read)."""
    P = ProgramRow
    failed = [s.value for s in _FAILED]
    error = case((P.status.in_(failed), P.error), else_="").label("error")
    child, proposal = (P.iteration > 0).label("child"), P.parent_id.is_not(None).label("proposal")
    query = (select(P.proposer, P.status, child, proposal, error, func.count(), func.min(P.id))
             .where(P.campaign_id == db.campaign_id, P.id > after, P.id <= upto)
             .group_by(P.proposer, P.status, child, proposal, error))
    with db.connect() as conn:
        found = conn.execute(query).all()
    return [((proposer, status, bool(c), bool(p), e or ""), n, first) for proposer, status, c, p, e, n, first in found]


def db_name(config: Config) -> str:
    """The campaign's name as the database knows it."""
    return config.name or config.problem.name


def _brief(program, direction: str) -> dict[str, Any] | None:
    if program is None:
        return None
    validation = (program.validation or {}).get("score")
    return {"id": program.id, "iteration": program.iteration, "score": natural(program.score, direction),
            "validation": natural(validation, direction), "proposer": program.proposer}


def _scores(rows, seconds: dict[int, float], direction: str, islands: int) -> dict[str, Any]:
    """Valid scores against evaluations and time, best-so-far steps overall and per island, and the view
    that shows the climb (the points outside it are counted, never moved onto the axis)."""
    points = {"id": [], "evaluation": [], "time": [], "score": [], "island": []}
    evaluated = 0
    steps = {k: {"evaluation": [], "time": [], "score": []} for k in ["all", *range(islands)]}
    tops: dict[Any, float] = {}
    sign = -1 if direction == "minimize" else 1
    for r in rows:
        if r.status not in _EVALUATED:
            continue
        evaluated += 1
        if r.status is not ProgramStatus.VALID:
            continue
        value, t = natural(r.score, direction), seconds.get(r.id, 0.0)
        for key, v in (("id", r.id), ("evaluation", evaluated), ("time", t), ("score", value), ("island", r.island)):
            points[key].append(v)
        owners = ["all", *range(islands)] if r.iteration == 0 else ["all", r.island % islands]
        for key in owners:  # the initial program starts every island
            if key in tops and value * sign <= tops[key] * sign:
                continue
            tops[key] = value
            for name, v in (("evaluation", evaluated), ("time", t), ("score", value)):
                steps[key][name].append(v)
    last_t = max(seconds.values(), default=0.0)
    for s in steps.values():  # each step line runs on to the latest evaluation
        if s["score"]:
            s["evaluation"].append(evaluated)
            s["time"].append(last_t)
            s["score"].append(s["score"][-1])
    return {"scores": points, "steps": {str(k): v for k, v in steps.items()}, "evaluated": evaluated,
            "view": _view(points["score"], sign)}


def _view(values: list[float], sign: int) -> dict[str, Any]:
    """The score range that shows the climb: from the lower quartile (worse programs would flatten the
    curve) to the best; `off` counts the points beyond it, `side` says where they are."""
    if not values:
        return {"lo": None, "hi": None, "off": 0, "side": "below", "worst": None}
    ordered = sorted(v * sign for v in values)
    floor, top = ordered[len(ordered) // 4], ordered[-1]
    margin = 0.05 * ((top - floor) or abs(top) or 1.0)
    lo, hi = floor - margin, top + margin
    off = sum(1 for v in ordered if v < lo)
    bounds = sorted((lo * sign, hi * sign))
    return {"lo": bounds[0], "hi": bounds[1], "off": off, "side": "below" if sign > 0 else "above",
            "worst": ordered[0] * sign}


def _valid_share(rows, seconds: dict[int, float]) -> dict[str, list]:
    """The share of valid programs among the last `_SHARE_WINDOW` evaluated children, after each one."""
    window: collections.deque[bool] = collections.deque(maxlen=_SHARE_WINDOW)
    out = {"evaluation": [], "time": [], "share": [], "window": _SHARE_WINDOW}
    evaluated = valid = 0  # valid: in the window
    for r in rows:
        if r.status not in _EVALUATED:
            continue
        evaluated += 1
        if r.iteration == 0:
            continue
        if len(window) == window.maxlen:
            valid -= window[0]
        window.append(r.status is ProgramStatus.VALID)
        valid += window[-1]
        out["evaluation"].append(evaluated)
        out["time"].append(seconds.get(r.id, 0.0))
        out["share"].append(valid / len(window))
    return out


_NUMBERS = re.compile(r"\d+(\.\d+)?")


def _reason(status: ProgramStatus, error: str) -> str:
    """A failure's kind: the edit failure's kind, else the error's first line with numbers masked."""
    if status is ProgramStatus.EDIT_FAILED:
        from evolve.observe.outcomes import edit_failure_kind

        return f"edit failed: {edit_failure_kind(error)}"
    head, traceback, tail = error.partition("Traceback (most recent call last)")
    if traceback:  # the exception's own line says more than the traceback's first
        lines = [line for line in tail.splitlines() if line.strip()]
        error = head + (lines[-1].strip() if lines else "")
    first = " ".join(error.split())
    first = candidate_text(first if len(first) <= 90 else first[:89] + "…", "web")  # cut where the reader sees it
    return f"{status.value}: {_NUMBERS.sub('N', first) or 'no reason given'}"


def _failures(groups, counts: dict[str, int]) -> dict[str, Any]:
    """Programs per status and the commonest reasons of the failed ones (ties: the reason seen first)."""
    reasons: collections.Counter = collections.Counter()
    for _, status, _, _, error, n in groups:
        if status in _FAILED:
            reasons[_reason(status, error)] += n
    top = reasons.most_common(_REASONS)
    rest = sum(reasons.values()) - sum(n for _, n in top)
    if rest:
        top.append((f"{len(reasons) - len(top)} other reasons", rest))
    return {"statuses": dict(counts), "reasons": [[k, n] for k, n in top]}


def _maps(db: ProgramDatabase, population: Population, rows, direction: str) -> list[dict[str, Any]]:
    """Each island's MAP-Elites grid (the database's cells) over its first two feature dimensions; the
    elite of a cell is the best of the cells that share those two coordinates."""
    dims = db.features
    if not dims:
        return []
    scores = {r.id: r.score for r in rows}
    x, y = dims[0], dims[1] if len(dims) > 1 else None
    bounds = population.bounds()
    out = []
    for n, grid in enumerate(population.grids()):
        z = [[None] * x.bins for _ in range(y.bins if y else 1)]
        ids = [[None] * x.bins for _ in range(y.bins if y else 1)]
        for cell, pid in grid.items():
            i, j = cell[0], cell[1] if y else 0
            score = scores.get(pid)
            if score is None:
                continue
            current = ids[j][i]
            if current is None or score > scores[current]:
                z[j][i], ids[j][i] = natural(score, direction), pid
        out.append({"island": n, "x": _axis(x, bounds[0]), "y": _axis(y, bounds[1]) if y else None, "z": z,
                    "ids": ids, "filled": len(grid), "cells": _cells(dims)})
    return out


def _axis(dim, edges: list[float]) -> dict[str, Any]:
    """One axis of a map: its name and the centre of each bin (`edges`: the population's bin edges; adaptive
    bins over fewer distinct values than bins share edges, and are then numbered instead)."""
    centres = [(low + high) / 2 for low, high in itertools.pairwise(edges)]
    if any(b <= a for a, b in itertools.pairwise(centres)):
        centres = list(range(len(centres)))
    return {"name": dim.name, "centres": centres}


def _cells(dims) -> int:
    total = 1
    for d in dims:
        total *= d.bins
    return total


def lineage_ids(db: ProgramDatabase, population: Population, rows=None) -> tuple[set[int], list[int]]:
    """The programs of the lineage tree (the ancestries of the best programs and of each island's best)
    and those best programs themselves."""
    rows = list(db.summaries()) if rows is None else rows
    leaves = _leaves(rows, population.leaders())
    return lineage_nodes(rows, leaves), leaves


def lineage_nodes(rows: Sequence[Any], leaders: Sequence[int]) -> set[int]:
    """The programs of the lineage tree of `rows` (every program's small columns) and each island's best
    (`leaders`)."""
    parent = {r.id: r.parent_id for r in rows}
    nodes: set[int] = set()
    for pid in _leaves(rows, leaders):
        while pid is not None and pid not in nodes:
            nodes.add(pid)
            pid = parent.get(pid)
    return nodes


def _leaves(rows: Sequence[Any], leaders: Sequence[int]) -> list[int]:
    """The best valid programs of `rows` and `leaders`, each once, best first."""
    valid = heapq.nsmallest(_LINEAGE_TOP, (r for r in rows if r.status is ProgramStatus.VALID),
                            key=lambda r: (-r.score, r.id))
    return list(dict.fromkeys([*(r.id for r in valid), *leaders]))


def _lineage(db: ProgramDatabase, population: Population, rows, direction: str, best) -> dict[str, Any]:
    """The lineage tree laid out: x is the generation, y the order of the leaves (parents centred)."""
    nodes, leaves = lineage_ids(db, population, rows)
    by_id = {r.id: r for r in rows if r.id in nodes}
    children: dict[int | None, list[int]] = collections.defaultdict(list)
    for pid in sorted(by_id):
        p = by_id[pid].parent_id
        children[p if p in by_id else None].append(pid)
    y: dict[int, float] = {}
    leaf_row = 0
    stack = [(root, False) for root in reversed(children.get(None, []))]
    while stack:  # depth first, parents after their children: a leaf takes the next row, a parent the middle
        pid, placed_children = stack.pop()
        kids = children.get(pid, [])
        if not placed_children:
            stack.append((pid, True))
            stack.extend((k, False) for k in reversed(kids))
        elif kids:
            y[pid] = (min(y[k] for k in kids) + max(y[k] for k in kids)) / 2
        else:
            y[pid], leaf_row = leaf_row, leaf_row + 1
    return {"nodes": [{"id": pid, "parent": r.parent_id if r.parent_id in by_id else None,
                       "generation": r.generation, "y": y[pid], "iteration": r.iteration, "island": r.island,
                       "score": natural(r.score, direction), "proposer": r.proposer,
                       "best": best is not None and pid == best.id, "leaf": pid in leaves}
                      for pid, r in sorted(by_id.items())]}


def _spend(db: ProgramDatabase, rows, outcomes) -> list[dict[str, Any]]:
    """Per model: calls, tokens, dollars, improvements and dollars per improvement and per new best (the
    database's `spend`) and what became of its proposals (`evolve.observe.outcomes`)."""
    valid = ((r.id, r.parent_id, r.score, r.proposer) for r in rows if r.status is ProgramStatus.VALID)
    spend = db.spend(improvements=count_improvements(valid))
    out = []
    for name in sorted(set(spend) | set(outcomes)):
        s, o = spend.get(name, {}), outcomes.get(name)
        out.append({"model": name or "-", "calls": s.get("calls", 0), "failed": s.get("failed", 0),
                    "prompt_tokens": s.get("prompt_tokens", 0), "completion_tokens": s.get("completion_tokens", 0),
                    "cost": s.get("cost", 0.0), "improvements": s.get("improvements", 0),
                    "new_bests": s.get("new_bests", 0),
                    "per_improvement": _per(s.get("cost", 0.0), s.get("improvements", 0)),
                    "per_new_best": _per(s.get("cost", 0.0), s.get("new_bests", 0)),
                    "proposals": o.proposals if o else 0, "applied": o.applied if o else 0,
                    "edit_failed": o.edit_failed if o else 0, "why_not_applied": o.reasons(6) if o else "-",
                    "transport_failed": o.transport_failed if o else 0,
                    "prompt_too_large": o.prompt_too_large if o else 0,
                    "evaluated": o.evaluated if o else 0, "valid": o.valid if o else 0})
    return out


def _per(cost: float, count: int) -> float | None:
    """Dollars per improvement (None: none yet)."""
    return cost / count if count else None


def program_detail(db: ProgramDatabase, program_id: int, direction: str, max_chars: int = 0) -> dict[str, Any] | None:
    """One program: its code, its diff against its parent, the evaluator's feedback, and the prompt and
    reply that made it (the last proposer call of its iteration). `max_chars` cuts long texts (0: never)."""
    return program_details(db, [program_id], direction, max_chars).get(program_id)


def program_details(db: ProgramDatabase, ids: Sequence[int], direction: str, max_chars: int = 0,
                    cache: dict[int, tuple[Any, dict[str, Any]]] | None = None) -> dict[int, dict[str, Any]]:
    """`program_detail` of each program of `ids` that exists, by id: the programs, their parents and their
    iterations' calls read in a few queries. `cache`: details made before with the same `direction` and
    `max_chars`, by id, and kept here (a committed program changes only by its held-out validation, which is
    read again)."""
    out: dict[int, dict[str, Any]] = {}
    if cache:
        kept = [pid for pid in dict.fromkeys(ids) if pid in cache]
        for pid, validation in _validations(db, kept).items():
            if cache[pid][0] == validation:
                out[pid] = cache[pid][1]
    programs = db.read_many([pid for pid in ids if pid not in out])
    parent_ids = {p.parent_id for p in programs.values() if p.parent_id is not None} - set(programs)
    parents = {**programs, **db.read_many(sorted(parent_ids))}
    calls: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
    for call in db.calls(sorted({p.iteration for p in programs.values() if p.iteration > 0})):
        calls[call["iteration"]].append(call)
    for pid, program in programs.items():
        out[pid] = _detail(program, parents.get(program.parent_id) if program.parent_id is not None else None,
                           calls.get(program.iteration, []) if program.iteration > 0 else [], direction, max_chars)
        if cache is not None:
            cache[pid] = (program.validation, out[pid])
    return dict(sorted(out.items()))


def _validations(db: ProgramDatabase, ids: Sequence[int]) -> dict[int, Any]:
    """The held-out validation of each program of `ids` (None: none), in queries of 500 ids."""
    P = ProgramRow
    out: dict[int, Any] = {}
    with db.connect() as conn:
        for at in range(0, len(ids), 500):
            query = select(P.id, P.validation).where(P.campaign_id == db.campaign_id, P.id.in_(ids[at:at + 500]))
            out.update((pid, validation) for pid, validation in conn.execute(query))
    return out


def _detail(program: Program, parent: Program | None, calls: list[dict[str, Any]], direction: str,
            max_chars: int) -> dict[str, Any]:
    diff = "" if parent is None else "\n".join(difflib.unified_diff(
        parent.code.splitlines(), program.code.splitlines(), f"program {parent.id}", f"program {program.id}",
        lineterm="", n=3))
    call = calls[-1] if calls else None

    def cut(text: str) -> str:
        if not max_chars or len(text) <= max_chars:
            return text
        return text[:max_chars] + f"\n… ({len(text) - max_chars} more characters)"

    def quoted(text: str) -> str:  # may quote the candidate: through the gate, as any view of it
        return candidate_text(text, "web", max_chars or None)

    validation = program.validation
    if validation is not None:
        validation = {**validation, "score": natural(validation.get("score"), direction),
                      "feedback": quoted(validation.get("feedback") or "")}
    return {
        "id": program.id, "iteration": program.iteration, "status": program.status.value,
        "score": natural(program.score, direction), "island": program.island, "generation": program.generation,
        "parent": program.parent_id, "proposer": program.proposer, "mode": program.mode,
        "code": cut(program.code), "diff": cut(diff), "feedback": quoted(program.feedback),
        "error": quoted(program.error),
        "metrics": {k: quoted(v) if isinstance(v, str) else v for k, v in program.metrics.items()},
        "validation": validation, "spread": score_spread(program.metrics),
        "prompt": [{"role": m.get("role", ""), "content": cut(str(m.get("content", "")))}
                   for m in (call or {}).get("messages", [])],
        "reply": cut((call or {}).get("response") or program.proposal or ""),
        "calls": len(calls),
    }


def to_json(value: Any) -> str:
    """`value` as JSON, with every NaN and infinity as null (`finite`; walked only when there is one)."""
    try:
        return json.dumps(value, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(finite(value), default=str, allow_nan=False)


def finite(value: Any) -> Any:
    """`value` with every NaN and infinity replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
