"""Cluster scheduling: how well each machine suits the task that has just arrived.

`score(task, machines)` gets the task's requests, `{"cpu": cores, "mem": GiB}`, and one row
`[free_cpu, free_mem, cpu_capacity, mem_capacity]` per machine that can hold it, and returns one number
per machine. The task goes to the machine with the highest score (the first on ties). The seed is best
fit: the machine left with the least free capacity (CPU share plus memory share) wins, with the weights
of its other terms at zero.
"""

import numpy as np


# EVOLVE-BLOCK-START
CPU_WEIGHT = 1.0  # weight of the share of the machine's CPU left free after placing the task
MEM_WEIGHT = 1.0  # weight of the share of the machine's memory left free after placing the task
BALANCE_WEIGHT = 0.0  # weight of the gap between those two shares (a lopsided machine strands resources)
ALIGN_WEIGHT = 0.0  # weight of Tetris's alignment: the task's demand . the machine's free resources


def score(task, machines):
    """Best fit: minus the capacity each machine would have left, with optional shaping terms."""
    m = np.asarray(machines, dtype=float)
    free_cpu, free_mem, cpu_capacity, mem_capacity = m.T
    cpu_left = (free_cpu - task["cpu"]) / cpu_capacity
    mem_left = (free_mem - task["mem"]) / mem_capacity
    s = -(CPU_WEIGHT * cpu_left + MEM_WEIGHT * mem_left)
    s = s - BALANCE_WEIGHT * np.abs(cpu_left - mem_left)
    align = task["cpu"] / cpu_capacity * (free_cpu / cpu_capacity) + \
        task["mem"] / mem_capacity * (free_mem / mem_capacity)
    s = s + ALIGN_WEIGHT * align
    return s
# EVOLVE-BLOCK-END
