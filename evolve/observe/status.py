"""What `evolve status` knows of a run: whether its campaign is running, finished, interrupted or failed,
and its figures, as one `CampaignStatus` (also its `--json` form, whose schema is documented below).

Running means a live controller holds the run (`evolve.storage.lock`: the run dir's lock file on this host, or
the database's `run_locks` row with a fresh heartbeat on any host). Otherwise the state is how the last
invocation recorded its end (`ProgramDatabase.record_stop`): finished, interrupted or failed. A holder
that is gone without releasing the run (a SIGKILL, a lost machine) is `interrupted` by a dead controller.

JSON schema (`schema` 1; keys are only ever added, and `schema` goes up if one changes meaning):

    schema              1
    run_dir, campaign, problem, direction      strings; direction is maximize or minimize
    state               running | finished | interrupted | failed | unknown (no end was recorded:
                        a database written before evolve recorded it)
    reason              the stop condition, the signal, the one-line error, or who runs it
    stopped_at          when it stopped (ISO 8601, UTC), or null
    controller          {host, pid, since, heartbeat_age_s (null without a heartbeat), alive} or null
    iterations          {done, budget}
    programs            {status: count} for every status present
    valid_share         {valid, evaluated}: the children (not the initial program) evaluated, and valid
    initial_score       natural (as the problem states it, even when minimised), or null
    best                {id, iteration, score (natural), proposer, at (ISO 8601), spread} or null; spread
                        is {n, min, max, std} of a noisy problem's repeated scorings (`problem.repeats`:
                        score is their mean; min and max natural) or null when it was scored once
    last_improvement    {iteration, at, iterations_since} of the best when it beat the initial program, or null
    island_best         [natural score or null per island]
    evaluations_per_second, active_seconds     over the time the campaign was active (gaps between
                        resumes left out); the rate is null before the first evaluation
    failure_reasons     [{status, reason, count, example}], the commonest first (at most 5); reason with its
                        numbers as N, example the first such failure's reason as written ("" when the same)
    evaluator_errors    {count, last}
    unapplied           {in_a_row, reasons: {kind: count}, last} of the proposals at the end that did not apply
    models              [{name, calls, failed, prompt_tokens, completion_tokens, cost, improvements,
                        new_bests, failing, last_error, proposals, applied, edit_failed, edit_failures,
                        transport_failed, prompt_too_large, evaluated, valid}]
    ray                 {where: local | ray, since, line} from campaign.log's last line of Ray's state (a
                        fault that left the evaluations in local slots, or Ray's workers up), or null
"""

from __future__ import annotations

import mmap
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from evaluators.direction import natural
from evolve.observe import aggregates
from evolve.program import ProgramStatus, score_spread
from evolve.storage.lock import Holder, file_holder, holder_live, pid_alive
from evolve.storage.rundir import campaign_name, load_config, open_database

__all__ = ["SCHEMA", "STATES", "CampaignStatus", "RayState", "State", "campaign_state", "ray_state", "read_status"]

SCHEMA = 1
STATES = ("running", "finished", "interrupted", "failed", "unknown")
TOP_FAILURES = 5
_RAY_MARK = b" evolve.ray: "  # campaign.log's lines of logger `evolve.ray` (evolve.evaluation.handover.RAY_LOG)


@dataclass(frozen=True)
class State:
    """Whether a campaign runs, and if not how it ended.

    Attributes:
        state: one of `STATES`.
        reason: the stop condition, the signal or the one-line error; for a running one, who runs it.
        stopped_at: time.time() when it stopped, when known.
        controller: the process that runs it (or ran it, when it died).
        heartbeat: that controller's last heartbeat (time.time()), when its database row has one.
    """

    state: str
    reason: str
    stopped_at: float | None = None
    controller: Holder | None = None
    heartbeat: float | None = None


def campaign_state(holder: Holder | None, row: aggregates.LockRow | None, stop: aggregates.Stop | None,
                   here: str | None = None) -> State:
    """Decide the state from the lock file's holder, the `run_locks` row and the last recorded stop."""
    here = here or socket.gethostname()
    row_holder = Holder(row.host, row.pid, row.since) if row else None
    if row is not None and holder_live(row.host, row.pid, row.heartbeat):
        return State("running", f"controller {row_holder}", controller=row_holder, heartbeat=row.heartbeat)
    stale_row_is_file = row_holder is not None and holder is not None and \
        (row_holder.host, row_holder.pid) == (holder.host, holder.pid)
    if holder is not None and holder.host == here and pid_alive(holder.pid) and not stale_row_is_file:
        return State("running", f"controller {holder} (starting)" if row is None else f"controller {holder}",
                     controller=holder)
    dead = row_holder or (holder if holder is not None and holder.host == here else None)
    if dead is not None and not (stop is not None and (stop.host, stop.pid) == (dead.host, dead.pid)):
        last = f", last heartbeat {_clock(row.heartbeat)}" if row is not None else ""
        return State("interrupted", f"the controller died ({dead}{last}) without recording an end",
                     controller=dead, heartbeat=row.heartbeat if row is not None else None)
    if stop is not None:
        return State(stop.state, stop.reason, stopped_at=stop.at, controller=Holder(stop.host, stop.pid))
    return State("unknown", "no end recorded (a database written before evolve recorded how campaigns end)")


class RayState(NamedTuple):
    """Where the evaluations went at the last change of Ray's state: `local` (a fault; `line` names it) or `ray`."""

    where: str
    since: str  # as campaign.log writes it: local time
    line: str


def ray_state(log: Path) -> RayState | None:
    """The last line of logger `evolve.ray` in campaign.log (found from the end, without reading the file)."""
    try:
        with open(log, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as text:
            at = text.rfind(_RAY_MARK)
            if at < 0:
                return None
            start = text.rfind(b"\n", 0, at) + 1
            end = text.find(b"\n", at)
            head, line = text[start:at].decode(errors="replace"), text[at + len(_RAY_MARK):end if end >= 0 else None]
    except (OSError, ValueError):  # no log, or an empty one
        return None
    stamp, _, level = head.rpartition(" ")
    return RayState("ray" if level == "INFO" else "local", stamp.split(",")[0],
                    " ".join(line.decode(errors="replace").split())[:400])


@dataclass
class CampaignStatus:
    """Everything `evolve status` shows of one run (scores natural); `to_json` is the `--json` form."""

    run_dir: str
    campaign: str
    problem: str
    direction: str
    state: State
    iterations: int
    budget: int
    programs: dict[str, int]
    children_valid: int
    children_evaluated: int
    initial_score: float | None
    best: aggregates.Top | None
    best_is_improvement: bool
    last_iteration: int
    island_best: list[float | None]
    active_seconds: float
    failures: list[tuple[str, str, int, str]]  # (status, reason, count, example: "" when it is the reason)
    evaluator_errors: int
    last_evaluator_error: str
    unapplied: tuple[int, dict[str, int], str]
    unapplied_limit: int | None
    unapplied_stops: bool
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    read_at: float = field(default_factory=time.time)
    best_spread: dict[str, float | None] | None = None  # a noisy problem's repeated scorings of the best
    ray: RayState | None = None  # campaign.log's last line about Ray's state

    @property
    def evaluated(self) -> int:
        """Programs that went through the evaluator, the initial program included."""
        return sum(self.programs.get(s.value, 0) for s in ProgramStatus if s.is_evaluated())

    @property
    def evaluations_per_second(self) -> float | None:
        return self.evaluated / self.active_seconds if self.active_seconds else None

    def to_json(self) -> dict[str, Any]:
        """The documented `--json` form (see the module's docstring)."""
        s, best = self.state, self.best
        controller = None
        if s.controller is not None:
            controller = {"host": s.controller.host, "pid": s.controller.pid, "since": s.controller.since,
                          "heartbeat_age_s": None if s.heartbeat is None else round(self.read_at - s.heartbeat, 1),
                          "alive": s.state == "running"}
        improvement = None
        if best is not None and self.best_is_improvement:
            improvement = {"iteration": best.iteration, "at": _iso(best.created_at),
                           "iterations_since": max(0, self.last_iteration - best.iteration)}
        rate = self.evaluations_per_second
        in_a_row, reasons, last = self.unapplied
        return {
            "schema": SCHEMA, "run_dir": self.run_dir, "campaign": self.campaign, "problem": self.problem,
            "direction": self.direction, "state": s.state, "reason": s.reason,
            "stopped_at": _iso(s.stopped_at), "controller": controller,
            "iterations": {"done": self.iterations, "budget": self.budget},
            "programs": dict(sorted(self.programs.items())),
            "valid_share": {"valid": self.children_valid, "evaluated": self.children_evaluated},
            "initial_score": self.initial_score,
            "best": None if best is None else {"id": best.id, "iteration": best.iteration, "score": best.score,
                                               "proposer": best.proposer, "at": _iso(best.created_at),
                                               "spread": self.best_spread},
            "last_improvement": improvement,
            "island_best": self.island_best,
            "evaluations_per_second": None if rate is None else round(rate, 4),
            "active_seconds": round(self.active_seconds, 3),
            "failure_reasons": [{"status": st, "reason": r, "count": n, "example": e} for st, r, n, e in self.failures],
            "evaluator_errors": {"count": self.evaluator_errors, "last": self.last_evaluator_error},
            "unapplied": {"in_a_row": in_a_row, "reasons": reasons, "last": last},
            "models": [{"name": name, **figures} for name, figures in sorted(self.models.items())],
            "ray": None if self.ray is None else self.ray._asdict(),
        }


def read_status(run_dir: str | Path) -> CampaignStatus:
    """Read a run dir's status: its config, its database read-only (no indexes: aggregates in SQL), its lock."""
    config = load_config(run_dir, find_problem=False)  # its folder is not needed here
    name, direction = campaign_name(config, run_dir), config.problem.direction
    holder = file_holder(run_dir)
    with open_database(config, run_dir, read_only=True, indexes=False) as db:
        state = campaign_state(holder, aggregates.lock_row(db, name), aggregates.last_stop(db))
        counted = aggregates.current(db)
        figures = aggregates.figures(counted)
        best, initial = aggregates.top_programs(db, counted)
        best_program = db.get(best.id) if best is not None and config.problem.repeats > 1 else None
        islands = aggregates.island_best(db, config.database.islands, counted)
        spend = db.spend(improvements=counted.improvements)
        unapplied = aggregates.unapplied_tail(db)
        last_error = ""
        if figures.counts.get(ProgramStatus.EVALUATOR_ERROR.value):
            latest = db.latest(ProgramStatus.EVALUATOR_ERROR)
            last_error = " ".join(latest.error.split())[:300] if latest else ""
    models: dict[str, dict[str, Any]] = {name: dict(s) for name, s in spend.items()}
    for proposer, o in figures.outcomes.items():
        models.setdefault(proposer, {}).update(
            proposals=o.proposals, applied=o.applied, edit_failed=o.edit_failed,
            edit_failures=dict(o.edit_failures.most_common()), transport_failed=o.transport_failed,
            prompt_too_large=o.prompt_too_large, evaluated=o.evaluated, valid=o.valid)

    def shown(value: float | None) -> float | None:  # as the problem states it (the engine maximises)
        return natural(value, direction)

    if best is not None:
        best = best._replace(score=shown(best.score))
    return CampaignStatus(
        run_dir=str(run_dir), campaign=name, problem=config.problem.name, direction=direction, state=state,
        iterations=figures.iterations, budget=config.budget.iterations, programs=figures.counts,
        children_valid=figures.children_valid, children_evaluated=figures.children_evaluated,
        initial_score=shown(initial.score) if initial else None, best=best,
        best_is_improvement=best is not None and initial is not None and best.id != initial.id,
        last_iteration=figures.last_iteration, island_best=[shown(v) for v in islands],
        active_seconds=figures.active_seconds,
        failures=[(st, r, n, figures.examples.get((st, r), ""))
                  for (st, r), n in figures.failures.most_common(TOP_FAILURES)],
        evaluator_errors=figures.counts.get(ProgramStatus.EVALUATOR_ERROR.value, 0), last_evaluator_error=last_error,
        unapplied=(unapplied[0], dict(unapplied[1].most_common()), unapplied[2]),
        unapplied_limit=config.llm.max_unapplied_in_a_row, unapplied_stops=config.llm.on_unapplied == "stop",
        models=models, best_spread=score_spread(best_program.metrics) if best_program is not None else None,
        ray=ray_state(Path(run_dir) / "campaign.log"))


def _iso(moment: float | datetime | None) -> str | None:
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _clock(moment: float) -> str:
    return datetime.fromtimestamp(moment).strftime("%Y-%m-%d %H:%M:%S")
