"""`evolve status` on the terminal: a `CampaignStatus` as rich tables, once or refreshed (`--watch`)."""

from __future__ import annotations

import collections
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from evolve.errors import CampaignNotFound, RunDirError
from evolve.observe.outcomes import top_reasons, unapplied_message
from evolve.observe.status import CampaignStatus, read_status
from evolve.storage.lock import file_holder, pid_alive
from sandboxes import candidate_text

__all__ = ["render", "spend_table", "watch"]

_STYLE = {"running": "bold green", "finished": "bold", "interrupted": "bold yellow", "failed": "bold red",
          "unknown": "dim"}


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _when(moment: datetime | float | None) -> str:
    if moment is None:
        return "-"
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _shown(text: str) -> str:
    """Text that may quote a candidate (failure reasons, errors), fit for the terminal."""
    return candidate_text(text, "terminal")


def _failure(status: str, reason: str, n: int, example: str) -> str:
    """`3 invalid, e.g. got (3, 4)`: a reason grouped with its numbers as N shows its first real instance."""
    if not example:
        return f"{n} {status}: {reason}"
    return f"{n} {status}: {example}" if n == 1 else f"{n} {status}, e.g. {example}"


def spend_table(models: dict[str, dict[str, Any]]) -> Table | None:
    """Per proposer that made calls (`ProgramDatabase.spend`): calls, tokens, dollars, improvements and dollars
    per improvement (a child that beat its parent) and per new best (a child that beat the campaign's best)."""
    spend = {name: m for name, m in models.items() if "calls" in m}
    if not spend:
        return None
    table = Table("proposer", "calls", "failed", "tokens in", "tokens out", "cost $", "improved parent",
                  "new bests", "$ per improvement", "$ per new best", title="spend per proposer")
    for name, m in sorted(spend.items()):
        per = f"{m['cost'] / m['improvements']:.4f}" if m["improvements"] else "-"
        per_best = f"{m['cost'] / m['new_bests']:.4f}" if m["new_bests"] else "-"
        table.add_row(name or "-", str(m["calls"]), str(m["failed"]), str(m["prompt_tokens"]),
                      str(m["completion_tokens"]), f"{m['cost']:.4f}", str(m["improvements"]), str(m["new_bests"]),
                      per, per_best)
    return table


def render(status: CampaignStatus) -> RenderableType:
    """The status as the terminal shows it: the state, the figures, then the proposers' tables."""
    s = status
    table = Table(title=Text(f"{s.campaign} ({s.problem}, {s.direction})"), show_header=False)

    def row(label: str, value: str | Text) -> None:  # values as text: a reason may hold [brackets]
        table.add_row(label, value if isinstance(value, Text) else Text(_shown(value)))

    state = Text(s.state.state, style=_STYLE.get(s.state.state, ""))
    state.append(f": {_shown(s.state.reason)}" if s.state.reason else "")
    if s.state.stopped_at is not None:
        state.append(f" (at {_when(s.state.stopped_at)})")
    elif s.state.state == "running" and s.state.heartbeat is not None:
        state.append(f", heartbeat {max(0.0, s.read_at - s.state.heartbeat):.0f} s ago")
    row("state", state)
    row("iterations", f"{s.iterations} of {s.budget}")
    row("programs by status", ", ".join(f"{k} {v}" for k, v in sorted(s.programs.items())) or "-")
    row("valid share", f"{100 * s.children_valid / s.children_evaluated:.1f}% of {s.children_evaluated} "
        "evaluated children" if s.children_evaluated else "- (no child evaluated)")
    row("initial score", _score(s.initial_score))
    best = s.best
    row("best score", f"{_score(best.score)} (program {best.id}, iteration {best.iteration}, by {best.proposer})"
        if best else "-")
    if s.best_spread is not None:
        spread = s.best_spread
        row("best's spread", f"mean of {spread['n']} scorings, from {_score(spread['min'])} to "
            f"{_score(spread['max'])}, std {spread['std']:.3g} (the problem is noisy: problem.repeats)")
    if best is not None and s.best_is_improvement:
        since = max(0, s.last_iteration - best.iteration)
        row("last improvement", f"iteration {best.iteration} at {_when(best.created_at)}, "
            f"{since} iteration{'s' * (since != 1)} ago")
    elif best is not None:
        row("last improvement", "none: the initial program is still the best")
    row("best per island", ", ".join(_score(v) for v in s.island_best))
    rate = s.evaluations_per_second
    row("evaluations/s", f"{rate:.2f} over {s.active_seconds:.0f} s of activity" if rate else "-")
    if s.failures:
        row("top failure reasons", "\n".join(_failure(*failure) for failure in s.failures))
    if s.ray is not None:
        row("ray", f"evaluations in local slots since {s.ray.since}: {s.ray.line}" if s.ray.where == "local"
            else f"evaluations on Ray's workers since {s.ray.since}")
    if s.evaluator_errors:
        row("evaluator errors", f"{s.evaluator_errors}: the trusted evaluator raised (tracebacks in "
            f"{Path(s.run_dir) / 'campaign.log'}); last: {s.last_evaluator_error}")
    parts: list[RenderableType] = [table]
    in_a_row, reasons, last = s.unapplied
    limit = s.unapplied_limit
    if in_a_row and in_a_row >= (limit or 20):
        stopped = "the campaign stopped: " if limit and s.unapplied_stops else "warning: "
        message = unapplied_message(in_a_row, collections.Counter(reasons), last)
        parts.append(Text(_shown(f"{stopped}the last {message}")))
    for name, m in sorted(s.models.items()):
        if m.get("failing"):
            parts.append(Text(_shown(f"model {name or '-'} is failing: its last {m['failing']} calls failed; "
                                     f"last error: {m['last_error']}")))
    spend = spend_table(s.models)
    if spend is not None:
        parts.append(spend)
    outcomes = {name: m for name, m in s.models.items() if "proposals" in m}
    if outcomes:
        kinds = Table("proposer", "proposals", "applied", "edit failed", "why not applied", "transport failed",
                      "prompt too large", "valid / evaluated", title="proposals per proposer")
        for name, m in sorted(outcomes.items()):
            why = Text(_shown(top_reasons(collections.Counter(m["edit_failures"]), 6))) if m["edit_failures"] else "-"
            kinds.add_row(name or "-", str(m["proposals"]), str(m["applied"]), str(m["edit_failed"]), why,
                          str(m["transport_failed"]), str(m["prompt_too_large"]), f"{m['valid']} / {m['evaluated']}")
        parts.append(kinds)
    return Group(*parts)


def _starting(run_dir: str | Path) -> RenderableType | None:
    """What to show while a campaign starts (no config or database yet), or None when none starts."""
    holder = file_holder(run_dir)
    if holder is None or not pid_alive(holder.pid):
        return None
    return Text(f"starting: {holder} holds {run_dir}; no program is committed yet", style="green")


def watch(run_dir: str | Path, every: float, console: Console) -> CampaignStatus | None:
    """Show the status, refreshed every `every` seconds until the campaign is no longer running; return the
    last one read (None if the campaign never got as far as its database)."""
    status: CampaignStatus | None = None
    with Live(Text(""), console=console, auto_refresh=False, transient=False) as live:
        while True:
            try:
                status = read_status(run_dir)
                view: RenderableType = render(status)
            except (RunDirError, CampaignNotFound):
                view = _starting(run_dir)
                if view is None:
                    raise
            note = Text(f"refreshed {datetime.now():%H:%M:%S}; every {every:g} s until it stops (Ctrl-C leaves)",
                        style="dim")
            live.update(Group(view, note), refresh=True)
            if status is not None and status.state.state != "running":
                return status
            time.sleep(every)
