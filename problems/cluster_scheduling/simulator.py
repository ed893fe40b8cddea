"""The trusted scheduler and its accounting: placements, departures, stranded resources over time.

Tasks arrive in order. Departures due by a task's arrival free their resources first. The machines that
can hold the task (free CPU and free memory both at least its request) are offered to `score` as rows
`[free_cpu, free_mem, cpu_capacity, mem_capacity]`, in fleet order; the task goes to the highest score,
the first on ties. A task that no machine can hold waits in a queue; after every departure each waiting
task that now fits somewhere is placed, in arrival order (smaller later tasks may pass a large one). Its
requests count as pending while it waits.

Stranded resources: on a machine whose free memory is below the memory threshold (no typical task could
land there), its free CPU is stranded; on a machine whose free CPU is below the CPU threshold, its free
memory is stranded. The thresholds are a quantile of the trace's requests (`exhausted_quantile`). Both
and the pending requests are integrated over time within the trace's window and reported as shares of
the fleet's capacity.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

import numpy as np

from problems.cluster_scheduling.traces import Trace

__all__ = ["Outcome", "ScoreFn", "simulate", "simulation_steps", "stranded", "thresholds"]

ScoreFn = Callable[[dict, list[list[float]]], Sequence[float]]


@dataclass(frozen=True)
class Outcome:
    """What one simulated trace did; percentages are of the fleet's capacity, time-averaged over the window.

    Attributes:
        stranded_pct: mean of stranded CPU % and stranded memory %.
        stranded_cpu_pct, stranded_mem_pct: each dimension alone.
        pending_pct: requests of the tasks waiting in the queue (mean of CPU % and memory %).
        waited: tasks that found no machine on arrival and had to wait.
        unplaced: tasks still waiting when the trace ends.
        allocated_pct: allocated CPU and memory (mean of the two).
        empty_machines_pct: machines running nothing.
        placements: machine of each task, -1 when never placed.
    """

    stranded_pct: float
    stranded_cpu_pct: float
    stranded_mem_pct: float
    pending_pct: float
    waited: int
    unplaced: int
    allocated_pct: float
    empty_machines_pct: float
    placements: tuple[int, ...]

    def wasted_pct(self, pending_weight: float = 1.0) -> float:
        """Stranded plus `pending_weight` times pending: the fitness is minus its mean over the traces."""
        return self.stranded_pct + pending_weight * self.pending_pct


def thresholds(trace: Trace, quantile: float) -> tuple[float, float]:
    """(CPU, memory): below these free amounts a machine counts as exhausted in that dimension."""
    return float(np.quantile(trace.cpu, quantile)), float(np.quantile(trace.mem, quantile))


def stranded(free: np.ndarray, limits: tuple[float, float]) -> tuple[float, float]:
    """(stranded CPU, stranded memory) on machines with `free` rows [cpu, mem]."""
    cpu_out = free[:, 0] < limits[0]
    mem_out = free[:, 1] < limits[1]
    return float(free[mem_out, 0].sum()), float(free[cpu_out, 1].sum())


def simulate(trace: Trace, score: ScoreFn, exhausted_quantile: float = 0.1) -> Outcome:
    """Schedule every task of `trace` with `score` (which may raise) and account for it."""
    steps = simulation_steps(trace, exhausted_quantile)
    try:
        task, machines = next(steps)
        while True:
            task, machines = steps.send(score(task, machines.tolist()))
    except StopIteration as done:
        return done.value


def simulation_steps(trace: Trace, exhausted_quantile: float = 0.1) -> Generator[tuple[dict, np.ndarray],
                                                                                  Sequence[float] | int, Outcome]:
    """`simulate` as an episode (`evaluators.lockstep`): yields `(task, machines)` for each placement (the rows
    as a float array: a session sends it packed, and the candidate gets the lists `tolist()` makes), is sent
    the scores, returns the `Outcome`.

    The fleet's figures (stranded, allocated, empty machines) are kept up to date machine by machine as tasks
    come and go, not summed over the fleet at every event: requests and capacities are quarters, so these
    sums are exact, and equal to the fleet-wide sums bit for bit."""
    capacity = trace.capacity
    rows = np.column_stack([capacity, capacity])  # what a machine is offered as: free cpu, free mem, capacities
    free = rows[:, :2]  # a view: kept up to date by `change`
    cap_cpu, cap_mem = (float(v) for v in capacity.sum(0))
    free_cpu, free_mem = free[:, 0].tolist(), free[:, 1].tolist()
    running = [0] * len(capacity)
    cpus, mems, lifetimes, arrivals = trace.cpu.tolist(), trace.mem.tolist(), trace.lifetime.tolist(), \
        trace.arrival.tolist()
    lim_cpu, lim_mem = thresholds(trace, exhausted_quantile)
    start, end = trace.window
    # stranded cpu and mem, allocated cpu and mem, empty machines, queued cpu and mem (each x time)
    totals = [0.0] * 7
    fleet = {"s_cpu": sum(c for c, m in zip(free_cpu, free_mem) if m < lim_mem),
             "s_mem": sum(m for c, m in zip(free_cpu, free_mem) if c < lim_cpu),
             "f_cpu": sum(free_cpu), "f_mem": sum(free_mem), "empty": len(running), "q_cpu": 0.0, "q_mem": 0.0}
    departures: list[tuple[float, int, int]] = []
    placements = [-1] * trace.tasks
    queue: list[int] = []
    waited = 0
    clock = start

    def advance(to: float) -> None:
        nonlocal clock
        to = min(to, end)
        if to > clock:
            span = to - clock
            rates = (fleet["s_cpu"], fleet["s_mem"], cap_cpu - fleet["f_cpu"], cap_mem - fleet["f_mem"],
                     fleet["empty"], fleet["q_cpu"], fleet["q_mem"])
            for k, rate in enumerate(rates):
                totals[k] += span * rate
            clock = to

    def change(machine: int, cpu: float, mem: float, tasks: int) -> None:
        """Add `cpu`, `mem` to the machine's free capacity and `tasks` to its running ones."""
        c, m = free_cpu[machine], free_mem[machine]
        fleet["s_cpu"] -= c if m < lim_mem else 0.0
        fleet["s_mem"] -= m if c < lim_cpu else 0.0
        fleet["empty"] -= running[machine] == 0
        c, m = c + cpu, m + mem
        free_cpu[machine], free_mem[machine] = c, m
        free[machine] = c, m
        running[machine] += tasks
        fleet["s_cpu"] += c if m < lim_mem else 0.0
        fleet["s_mem"] += m if c < lim_cpu else 0.0
        fleet["empty"] += running[machine] == 0
        fleet["f_cpu"] += cpu
        fleet["f_mem"] += mem

    def place(k: int, now: float) -> Generator[tuple[dict, np.ndarray], Sequence[float] | int, bool]:
        cpu, mem = cpus[k], mems[k]
        fits = ((free[:, 0] >= cpu) & (free[:, 1] >= mem)).nonzero()[0]
        if not len(fits):
            return False
        scores = yield {"cpu": cpu, "mem": mem}, rows[fits]
        best = scores if type(scores) is int else int(np.asarray(scores, dtype=float).argmax())  # int: picked
        machine = int(fits[best])
        change(machine, -cpu, -mem, 1)
        placements[k] = machine
        heapq.heappush(departures, (now + lifetimes[k], k, machine))
        return True

    for k in range(trace.tasks):
        now = arrivals[k]
        while departures and departures[0][0] <= now:
            when, task, machine = heapq.heappop(departures)
            advance(when)
            change(machine, cpus[task], mems[task], -1)
            for waiting in list(queue):  # every waiting task that now fits, in arrival order
                if not (free_cpu[machine] >= cpus[waiting] and free_mem[machine] >= mems[waiting]):
                    continue  # the freed machine is the only one with more room than when the task last tried
                if (yield from place(waiting, when)):
                    queue.remove(waiting)
                    fleet["q_cpu"] -= cpus[waiting]
                    fleet["q_mem"] -= mems[waiting]
        advance(now)
        if not (yield from place(k, now)):
            queue.append(k)
            fleet["q_cpu"] += cpus[k]
            fleet["q_mem"] += mems[k]
            waited += 1
    advance(end)
    span = (end - start) * capacity.sum(0)
    totals_ = np.array(totals)
    s_cpu, s_mem = 100 * totals_[0] / span[0], 100 * totals_[1] / span[1]
    return Outcome(
        stranded_pct=float((s_cpu + s_mem) / 2), stranded_cpu_pct=float(s_cpu), stranded_mem_pct=float(s_mem),
        pending_pct=float(100 * (totals_[5:7] / span).mean()), waited=waited, unplaced=len(queue),
        allocated_pct=float(100 * (totals_[2:4] / span).mean()),
        empty_machines_pct=float(100 * totals_[4] / ((end - start) * len(capacity))),
        placements=tuple(placements),
    )
