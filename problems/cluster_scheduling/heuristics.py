"""Reference placement rules as score functions for `simulator.simulate` (highest score wins).

Each gets the task `{"cpu", "mem"}` and the rows `[free_cpu, free_mem, cpu_capacity, mem_capacity]` of
the machines that can hold it, in fleet order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RULES", "alphaevolve", "best_fit", "dot_product", "first_fit", "worst_fit"]


def _left(task: dict, machines: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Shares of each machine's CPU and memory that would be left free after placing the task."""
    m = np.asarray(machines, dtype=float)
    return (m[:, 0] - task["cpu"]) / m[:, 2], (m[:, 1] - task["mem"]) / m[:, 3]


def first_fit(task: dict, machines: list[list[float]]) -> np.ndarray:
    """The first machine in fleet order."""
    return -np.arange(len(machines), dtype=float)


def best_fit(task: dict, machines: list[list[float]]) -> np.ndarray:
    """The machine left with the least free capacity (CPU share plus memory share)."""
    cpu_left, mem_left = _left(task, machines)
    return -(1.0 * cpu_left + 1.0 * mem_left)


def worst_fit(task: dict, machines: list[list[float]]) -> np.ndarray:
    """The machine left with the most free capacity (load spreading)."""
    return -best_fit(task, machines)


def dot_product(task: dict, machines: list[list[float]]) -> np.ndarray:
    """Tetris's alignment (Grandl et al., SIGCOMM 2014): demand . free, both as shares of the machine."""
    m = np.asarray(machines, dtype=float)
    return task["cpu"] / m[:, 2] * (m[:, 0] / m[:, 2]) + task["mem"] / m[:, 3] * (m[:, 1] / m[:, 3])


def alphaevolve(task: dict, machines: list[list[float]]) -> np.ndarray:
    """AlphaEvolve's Borg score (Novikov et al. 2025, Fig. 6): a, b = the task's share of free CPU, memory;
    -(a + b + a/b + b/a), highest for a roomy machine that the task leaves balanced."""
    m = np.asarray(machines, dtype=float)
    cpu = task["cpu"] / m[:, 0]
    mem = task["mem"] / m[:, 1]
    return -1.0 * (cpu + mem + mem / cpu + cpu / mem)


RULES = {"first fit": first_fit, "best fit": best_fit, "worst fit": worst_fit, "dot product (Tetris)": dot_product,
         "AlphaEvolve's Borg score": alphaevolve}
