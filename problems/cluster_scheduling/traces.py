"""Seeded synthetic cluster traces: a heterogeneous fleet and tasks arriving over time.

A trace is a fleet of machines of three shapes (standard 32 cores / 128 GiB, high-memory 32 / 256,
high-CPU 64 / 128, mixed 2:1:1 in a shuffled order, so the fleet has 4 GiB per core) and tasks arriving
as a Poisson process, one per time unit on average. A task asks for CPU (log-normal around `mean_cpu`
cores, in quarter cores, at most 24) and memory (its CPU times a memory-per-core ratio from one of three
classes, CPU-heavy 1, balanced 4 and memory-heavy 8 GiB per core, with noise, in quarter GiB, at most
96), and runs for a log-normal lifetime scaled so that the offered CPU load is `load` of the fleet.
Everything comes from NumPy's PCG64 seeded by (seed, split, index), so every machine builds the same
traces.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = ["MACHINE_SHAPES", "SPLITS", "GeneratorConfig", "Trace", "build_splits", "generate"]

SPLITS = ("train", "val", "test")
MACHINE_SHAPES = ((32.0, 128.0, 2), (32.0, 256.0, 1), (64.0, 128.0, 1))  # cores, GiB, weight
RATIO_CLASSES = ((1.0, 0.35), (4.0, 0.40), (8.0, 0.25))  # GiB per core, probability: the fleet's 4:1 on average


@dataclass(frozen=True, eq=False)
class Trace:
    """One trace: machine capacities and tasks (arrival, CPU, memory, lifetime), in arrival order.

    Compared and hashed by identity (it holds arrays); `build_splits` makes each trace once.

    Attributes:
        capacity: (machines, 2) array of [cores, GiB].
        arrival, cpu, mem, lifetime: one entry per task.
        window: (start, end) of the measured period: after the warm-up, until the last arrival.
    """

    name: str
    capacity: np.ndarray
    arrival: np.ndarray
    cpu: np.ndarray
    mem: np.ndarray
    lifetime: np.ndarray
    window: tuple[float, float]

    @property
    def tasks(self) -> int:
        """Number of tasks."""
        return len(self.arrival)

    def head(self, n: int) -> Trace:
        """The first `n` tasks, measured from the same warm-up share to the last of their arrivals."""
        arrival = self.arrival[:n]
        share = self.window[0] / self.window[1]
        return Trace(f"{self.name}-head{n}", self.capacity, arrival, self.cpu[:n], self.mem[:n], self.lifetime[:n],
                     (float(arrival[-1] * share), float(arrival[-1])))


@dataclass(frozen=True)
class GeneratorConfig:
    """How traces are made.

    Attributes:
        seed: root seed of every split.
        machines: machines in the fleet.
        tasks: tasks per trace.
        load: offered CPU load as a share of the fleet's cores (memory follows from the task shapes).
        mean_cpu: mean CPU request in cores.
        lifetime_sigma: spread of the log-normal lifetimes (their mean follows from `load`).
        warmup: share of the arrival period left out of the measurement (the fleet starts empty).
        train, val, test: traces per split.
    """

    seed: int = 2026
    machines: int = 24
    tasks: int = 1500
    load: float = 0.8
    mean_cpu: float = 3.0
    lifetime_sigma: float = 1.0
    warmup: float = 0.25
    train: int = 4
    val: int = 4
    test: int = 16

    def __post_init__(self) -> None:
        if self.machines < 1 or self.tasks < 1:
            raise ValueError(f"machines={self.machines} and tasks={self.tasks} must be positive")
        if not 0 < self.load <= 2 or self.mean_cpu <= 0 or not 0 <= self.warmup < 1:
            raise ValueError(f"load={self.load} must be in (0, 2], mean_cpu={self.mean_cpu} positive and "
                             f"warmup={self.warmup} in [0, 1)")
        if min(self.train, self.val, self.test) < 1:
            raise ValueError("every split needs at least one trace")


def _quarters(x: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip(np.ceil(x * 4.0) / 4.0, low, high)


def generate(cfg: GeneratorConfig, split: str, index: int) -> Trace:
    """Trace number `index` of `split`."""
    rng = np.random.default_rng([cfg.seed, SPLITS.index(split), index])
    shapes = np.array([s[:2] for s in MACHINE_SHAPES])
    weights = np.array([s[2] for s in MACHINE_SHAPES], dtype=float)
    counts = np.floor(cfg.machines * weights / weights.sum()).astype(int)
    counts[: cfg.machines - counts.sum()] += 1  # the same mix in every trace; only the order is drawn
    capacity = shapes[rng.permutation(np.repeat(np.arange(len(shapes)), counts))]
    n = cfg.tasks
    sigma = 0.8
    cpu = _quarters(rng.lognormal(np.log(cfg.mean_cpu) - sigma ** 2 / 2, sigma, n), 0.25, 24.0)
    ratios = np.array([r for r, _ in RATIO_CLASSES])[rng.choice(len(RATIO_CLASSES), n, p=[p for _, p in RATIO_CLASSES])]
    mem = _quarters(cpu * ratios * rng.lognormal(0.0, 0.3, n), 0.25, 96.0)
    arrival = np.cumsum(rng.exponential(1.0, n))
    mean_life = cfg.load * capacity[:, 0].sum() / float(cpu.mean())  # Little's law at one arrival per unit
    sigma_life = cfg.lifetime_sigma
    lifetime = rng.lognormal(np.log(mean_life) - sigma_life ** 2 / 2, sigma_life, n)
    window = (float(arrival[-1] * cfg.warmup), float(arrival[-1]))
    return Trace(f"{split}-{index:02d}", capacity, arrival, cpu, mem, lifetime, window)


@functools.lru_cache(maxsize=8)
def build_splits(cfg: GeneratorConfig) -> dict[str, list[Trace]]:
    """The three splits, identical on every machine for the same config."""
    return {split: [generate(cfg, split, k) for k in range(getattr(cfg, split))] for split in SPLITS}
