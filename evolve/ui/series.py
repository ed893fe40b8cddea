"""Curves over a campaign's life from the programs' small columns: cost per model over time, and the best
score against evaluations of each run of a sweep (`evolve run -m ...`: Hydra's multirun folder, which holds
`multirun.yaml` and one run dir per job). Each curve keeps at most `MAX_POINTS` points (a best-so-far curve
only its steps), whatever the number of programs.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select

from evaluators.direction import natural
from evolve.errors import EvolveError
from evolve.program import ProgramStatus
from evolve.storage._orm import ProgramRow
from evolve.storage.database import ProgramDatabase, _raw_rows
from evolve.ui.rundirs import find_runs

__all__ = ["MAX_POINTS", "SweepCurves", "best_curve", "cost_over_time", "sweep_dir"]

MAX_POINTS = 400
_EVALUATED = [s.value for s in ProgramStatus if s.is_evaluated()]


def cost_over_time(db: ProgramDatabase, programs: Sequence[Any] | None = None) -> dict[str, Any]:
    """Per model (proposer): its cumulative cost in USD and proposals against seconds since the first program.
    `programs`: every program's small columns in commit order with `cost` and `epoch` (`evolve.ui.data`'s
    rows), when the caller has read them, else they are read here."""
    series: dict[str, dict[str, list]] = {}
    if programs is not None:
        first = programs[0].epoch if programs else None
        found: Iterable[tuple] = ((r.proposer, r.cost, r.epoch) for r in programs if r.iteration > 0)
        _add_costs(series, found, first)
    else:
        P = ProgramRow
        seconds = db.epoch_seconds(P.created_at)
        query = (select(P.proposer, P.cost, seconds).where(P.campaign_id == db.campaign_id, P.iteration > 0)
                 .order_by(P.id))
        with db.connect() as conn:
            first = conn.scalar(select(seconds).where(P.campaign_id == db.campaign_id).order_by(P.id).limit(1))
            _add_costs(series, _raw_rows(conn, query), first)
    models = [{"model": name, **s} for name, s in sorted(series.items())]  # thinned already
    return {"models": models, "total_cost": sum(m["cost"][-1] for m in models if m["cost"])}


def _add_costs(series: dict[str, dict[str, list]], rows: Iterable[tuple], first: float | None) -> None:
    """Each model's cumulative series from its (proposer, cost, epoch seconds) rows, thinned (`_thin`): the
    times worked out for the points kept only."""
    found: dict[str, tuple[list, list]] = {}
    for proposer, cost, created in rows:
        costs, times = found.setdefault(proposer or "-", ([], []))
        costs.append(cost or 0.0)
        times.append(created)
    for name, (costs, times) in found.items():
        kept = _kept(len(costs))
        total = list(itertools.accumulate(costs, initial=0.0))[1:]
        series[name] = {"time": [round(times[k] - first, 3) if times[k] is not None and first is not None else 0.0
                                 for k in kept],
                        "cost": [total[k] for k in kept], "proposals": [k + 1 for k in kept]}


def _kept(n: int) -> list[int]:
    """The indices of the points that `_thin` keeps of `n`."""
    if n <= MAX_POINTS:
        return list(range(n))
    step = n / (MAX_POINTS - 1)
    return [int(k * step) for k in range(MAX_POINTS - 1)] + [n - 1]


def _thin(values: list) -> list:
    """At most `MAX_POINTS` of `values`, evenly spaced, the last always kept."""
    if len(values) <= MAX_POINTS:
        return values
    step = len(values) / (MAX_POINTS - 1)
    return [values[int(k * step)] for k in range(MAX_POINTS - 1)] + [values[-1]]


def best_curve(db: ProgramDatabase, direction: str) -> dict[str, Any]:
    """The best score so far against evaluations: its steps, and the evaluations done."""
    P = ProgramRow
    query = (select(P.status, P.score).where(P.campaign_id == db.campaign_id, P.status.in_(_EVALUATED))
             .order_by(P.id))
    evaluations: list[int] = []
    scores: list[float] = []
    done, top = 0, None
    with db.connect() as conn:
        for status, score in _raw_rows(conn, query):
            done += 1
            if status == ProgramStatus.VALID.value and score is not None and (top is None or score > top):
                top = score
                evaluations.append(done)
                scores.append(natural(score, direction))
    if scores:  # the last step runs on to the latest evaluation
        evaluations.append(done)
        scores.append(scores[-1])
    return {"evaluation": _thin(evaluations), "score": _thin(scores), "evaluated": done,
            "best": scores[-1] if scores else None}


def sweep_dir(run_dir: Path) -> Path | None:
    """The multirun folder a run dir belongs to (its parent holds Hydra's `multirun.yaml`), or None."""
    parent = run_dir.resolve().parent
    return parent if (parent / "multirun.yaml").is_file() else None


class SweepCurves:
    """The best-score curves of a sweep's runs, each read again only when its database changed. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[Path, tuple[Any, dict[str, Any]]] = {}

    def curves(self, run_dir: Path) -> dict[str, Any]:
        """`{sweep, runs: [{name, run_dir, current, direction, evaluation, score, evaluated, best} or {name,
        run_dir, error}]}`; `sweep` is None (no runs) when `run_dir` is not part of one."""
        folder = sweep_dir(run_dir)
        if folder is None:
            return {"sweep": None, "runs": []}
        try:
            members = find_runs(folder)
        except EvolveError:
            members = []
        runs = []
        for member in members:
            entry = {"name": member.name, "run_dir": str(member), "current": member.resolve() == run_dir.resolve()}
            try:
                entry.update(self._curve(member))
            except (EvolveError, OSError) as exc:
                entry["error"] = str(exc)
            runs.append(entry)
        for entry, label in zip(runs, _labels([r["name"] for r in runs]), strict=True):
            entry["label"] = label
        return {"sweep": str(folder), "runs": runs}

    def _curve(self, run_dir: Path) -> dict[str, Any]:
        from evolve.storage.rundir import load_config, open_database

        signature = tuple(_mtime(p) for p in (run_dir / "programs.db", run_dir / "programs.db-wal"))
        with self._lock:
            cached = self._cache.get(run_dir)
        if cached is not None and cached[0] == signature and signature[0] is not None:
            return cached[1]
        config = load_config(run_dir, find_problem=False)
        with open_database(config, run_dir, read_only=True, indexes=False) as db:
            curve = {"direction": config.problem.direction, **best_curve(db, config.problem.direction)}
        with self._lock:
            self._cache[run_dir] = (signature, curve)
        return curve


def _labels(names: list[str]) -> list[str]:
    """Short names of a sweep's runs: Hydra's `<job number>_<overrides>` without the overrides they all share."""
    parts = [name.partition("_") for name in names]
    overrides = [set(rest.split(",")) if sep else set() for _, sep, rest in parts]
    shared = set.intersection(*overrides) if overrides else set()
    out = []
    for (number, sep, rest), name in zip(parts, names, strict=True):
        own = [o for o in rest.split(",") if o not in shared] if sep else []
        out.append(f"{number}: {','.join(own)}" if own else name)
    return out


def _mtime(path: Path) -> tuple[float, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime, stat.st_size
