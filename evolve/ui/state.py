"""Whether a campaign runs, and if not how it ended, with an ETA while it runs: what the page's state
line shows. The state is `evolve status`'s (`evolve.observe.status.campaign_state`: the lock file, the
`run_locks` row and the last recorded stop), so a controller that died without recording its end (a
SIGKILL, a lost machine) is told apart from one stopped by the user, read again at each request.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from evolve.config import Config
from evolve.observe import aggregates
from evolve.observe.status import campaign_state
from evolve.storage._orm import ProgramRow
from evolve.storage.database import ProgramDatabase
from evolve.storage.lock import file_holder
from evolve.storage.rundir import campaign_name
from sandboxes import candidate_text

__all__ = ["RATE_WINDOW", "recorded_state", "run_state"]

RATE_WINDOW = 50  # the latest programs whose pace gives the ETA


def run_state(db: ProgramDatabase, config: Config, run_dir: Path) -> dict[str, Any]:
    """`{state, label, reason, stopped_at, iterations, budget, rate_per_minute, eta_seconds, eta_by}`: label is
    running, finished, failed, stopped by the user, died, or unknown."""
    state = campaign_state(file_holder(run_dir), aggregates.lock_row(db, campaign_name(config, run_dir)),
                           aggregates.last_stop(db))
    P = ProgramRow
    with db.connect() as conn:
        done = conn.scalar(select(func.count()).select_from(P).where(P.campaign_id == db.campaign_id,
                                                                      P.iteration > 0)) or 0
    budget = config.budget.iterations
    out: dict[str, Any] = {
        "state": state.state, "label": _label(state.state, state.reason), "reason": candidate_text(state.reason, "web"),
        "stopped_at": _iso(state.stopped_at), "iterations": done, "budget": budget,
        "rate_per_minute": None, "eta_seconds": None, "eta_by": None}
    if state.state != "running":
        return out
    rate = _rate(db)
    if rate:
        out["rate_per_minute"] = round(rate * 60, 3)
        out["eta_seconds"], out["eta_by"] = max(0.0, (budget - done) / rate), "iterations"
    wall = config.budget.wall_seconds
    started = _started(state.controller.since if state.controller else "")
    if wall is not None and started is not None:
        left = max(0.0, started + wall - time.time())
        if out["eta_seconds"] is None or left < out["eta_seconds"]:
            out["eta_seconds"], out["eta_by"] = left, "wall_seconds"
    if out["eta_seconds"] is not None:
        out["eta_seconds"] = round(out["eta_seconds"], 1)
    return out


def recorded_state(db: ProgramDatabase) -> dict[str, Any] | None:
    """How the campaign's last invocation recorded its end (what report.html, written at that end, shows), or None."""
    stop = aggregates.last_stop(db)
    if stop is None:
        return None
    return {"state": stop.state, "label": _label(stop.state, stop.reason), "reason": candidate_text(stop.reason, "web"),
            "stopped_at": _iso(stop.at), "iterations": stop.iterations}


def _label(state: str, reason: str) -> str:
    if state == "interrupted":
        return "died" if reason.startswith("the controller died") else "stopped by the user"
    return state


def _rate(db: ProgramDatabase) -> float | None:
    """Iterations per second over the latest `RATE_WINDOW` programs (None before two)."""
    times = [t for (t,) in db.columns("created_at", last=RATE_WINDOW) if t is not None]
    if len(times) < 2:
        return None
    first, last = (t.replace(tzinfo=UTC) if t.tzinfo is None else t for t in (times[0], times[-1]))
    seconds = (last - first).total_seconds()
    return (len(times) - 1) / seconds if seconds > 0 else None


def _started(since: str) -> float | None:
    """The controller's start (its lock's local time) as time.time(), when it can be read."""
    try:
        return datetime.strptime(since, "%Y-%m-%d %H:%M:%S").timestamp()
    except ValueError:
        return None


def _iso(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
