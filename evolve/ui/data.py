"""The web view's data: plain-JSON views of one campaign, read from a `ProgramDatabase` (read-only or not).

Every score is natural (a minimised problem's values negated back). The same dicts feed `evolve ui`'s
endpoints and the data embedded in `report.html`, so both show the same figures.
"""

from __future__ import annotations

import collections
import difflib
import itertools
import math
import re
from typing import Any

from evaluators.direction import natural
from evolve.config import Config
from evolve.population import Population, restore_population
from evolve.program import ProgramStatus, score_spread
from evolve.storage.database import ProgramDatabase
from sandboxes import candidate_text

__all__ = ["campaign_data", "finite", "lineage_ids", "program_detail"]

_SHARE_WINDOW = 50  # evaluated children per point of the valid-share curve
_LINEAGE_TOP = 10  # the lineage tree joins the ancestries of this many best programs (and each island's best)
_REASONS = 12


def campaign_data(db: ProgramDatabase, config: Config, references: list[dict] | None = None) -> dict[str, Any]:
    """Every chart's series for one campaign, as plain JSON."""
    direction = config.problem.direction
    rows = list(db.summaries())
    times = dict(db.columns("id", "created_at"))
    start = min(times.values()) if times else None
    seconds = {pid: (t - start).total_seconds() for pid, t in times.items()} if start else {}
    population = restore_population(config, db)  # from the small columns, as a resumed campaign rebuilds it
    scores = _scores(rows, seconds, direction, population.islands)
    best, initial = db.best(), db.initial()
    return {
        "name": db_name(config), "problem": config.problem.name, "direction": direction,
        "description": config.problem.description,
        "iterations": db.iterations, "budget": config.budget.iterations,
        "counts": db.counts(), "islands": population.islands,
        "started": start.isoformat() if start else None,
        "last": max(times.values()).isoformat() if times else None,
        "best": _brief(best, direction), "initial": _brief(initial, direction),
        "references": references or [],
        **scores,
        "valid_share": _valid_share(rows, seconds),
        "failures": _failures(rows),
        "maps": _maps(db, population, rows, direction),
        "lineage": _lineage(db, population, rows, direction),
        "spend": _spend(db, rows),
    }


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
        if not r.status.is_evaluated():
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
    evaluated = 0
    for r in rows:
        if not r.status.is_evaluated():
            continue
        evaluated += 1
        if r.iteration == 0:
            continue
        window.append(r.status is ProgramStatus.VALID)
        out["evaluation"].append(evaluated)
        out["time"].append(seconds.get(r.id, 0.0))
        out["share"].append(sum(window) / len(window))
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


def _failures(rows) -> dict[str, Any]:
    """Programs per status and the commonest reasons of the failed ones."""
    reasons: collections.Counter = collections.Counter()
    statuses: collections.Counter = collections.Counter()
    for r in rows:
        statuses[r.status.value] += 1
        if r.status in (ProgramStatus.INVALID, ProgramStatus.EDIT_FAILED, ProgramStatus.PROPOSAL_FAILED,
                        ProgramStatus.EVALUATOR_ERROR):
            reasons[_reason(r.status, r.error)] += 1
    top = reasons.most_common(_REASONS)
    rest = sum(reasons.values()) - sum(n for _, n in top)
    if rest:
        top.append((f"{len(reasons) - len(top)} other reasons", rest))
    return {"statuses": dict(statuses), "reasons": [[k, n] for k, n in top]}


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
    parent = {r.id: r.parent_id for r in rows}
    valid = sorted((r for r in rows if r.status is ProgramStatus.VALID), key=lambda r: (-r.score, r.id))
    leaves = [r.id for r in valid[:_LINEAGE_TOP]]
    leaves += population.leaders()
    nodes: set[int] = set()
    for pid in leaves:
        while pid is not None and pid not in nodes:
            nodes.add(pid)
            pid = parent.get(pid)
    return nodes, list(dict.fromkeys(leaves))


def _lineage(db: ProgramDatabase, population: Population, rows, direction: str) -> dict[str, Any]:
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
    best = db.best()
    return {"nodes": [{"id": pid, "parent": r.parent_id if r.parent_id in by_id else None,
                       "generation": r.generation, "y": y[pid], "iteration": r.iteration, "island": r.island,
                       "score": natural(r.score, direction), "proposer": r.proposer,
                       "best": best is not None and pid == best.id, "leaf": pid in leaves}
                      for pid, r in sorted(by_id.items())]}


def _spend(db: ProgramDatabase, rows) -> list[dict[str, Any]]:
    """Per model: calls, tokens, dollars, improvements (the database's `spend`) and what became of its
    proposals (`evolve.observe.outcomes`)."""
    from evolve.observe.outcomes import model_outcomes

    spend, outcomes = db.spend(), model_outcomes(rows)
    out = []
    for name in sorted(set(spend) | set(outcomes)):
        s, o = spend.get(name, {}), outcomes.get(name)
        out.append({"model": name or "-", "calls": s.get("calls", 0), "failed": s.get("failed", 0),
                    "prompt_tokens": s.get("prompt_tokens", 0), "completion_tokens": s.get("completion_tokens", 0),
                    "cost": s.get("cost", 0.0), "improvements": s.get("improvements", 0),
                    "new_bests": s.get("new_bests", 0),
                    "proposals": o.proposals if o else 0, "applied": o.applied if o else 0,
                    "edit_failed": o.edit_failed if o else 0, "why_not_applied": o.reasons(6) if o else "-",
                    "transport_failed": o.transport_failed if o else 0,
                    "prompt_too_large": o.prompt_too_large if o else 0,
                    "evaluated": o.evaluated if o else 0, "valid": o.valid if o else 0})
    return out


def program_detail(db: ProgramDatabase, program_id: int, direction: str, max_chars: int = 0) -> dict[str, Any] | None:
    """One program: its code, its diff against its parent, the evaluator's feedback, and the prompt and
    reply that made it (the last proposer call of its iteration). `max_chars` cuts long texts (0: never)."""
    program = db.get(program_id)
    if program is None:
        return None
    parent = db.get(program.parent_id) if program.parent_id is not None else None
    diff = "" if parent is None else "\n".join(difflib.unified_diff(
        parent.code.splitlines(), program.code.splitlines(), f"program {parent.id}", f"program {program.id}",
        lineterm="", n=3))
    calls = db.calls(program.iteration) if program.iteration > 0 else []
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


def finite(value: Any) -> Any:
    """`value` with every NaN and infinity replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
