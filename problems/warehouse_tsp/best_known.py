"""Best-known routes where no exact optimum exists: the best of long OR-Tools runs, cached per machine.

Multi-block layouts, capacity, precedence, one-way aisles and start != end put a tour beyond the
Ratliff-Rosenthal DP. Its reference is then the shortest route that several long OR-Tools runs found (one
run per metaheuristic), labelled "best known"; `bounds.lower_bound` still says how far that can be from
the optimum. The runs take seconds per tour, so `evolve check` computes them once and stores them in a
JSON file under the user's cache directory (`EVOLVE_CACHE_DIR`, else `$XDG_CACHE_HOME/evolve`, else
`~/.cache/evolve`); evaluators only read it. A tour is keyed by a hash of everything that defines it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from problems.warehouse_tsp.instances import Tour
from problems.warehouse_tsp.ortools_solver import METAHEURISTICS, solve_ortools
from problems.warehouse_tsp.routes import check_route

__all__ = ["BestKnown", "BestKnownCache", "cache_dir", "tour_key"]


@dataclass(frozen=True)
class BestKnown:
    """The shortest route length found for a tour, and the effort behind it."""

    length: float
    seconds: float  # per run
    runs: int

    @staticmethod
    def describe(entries: Sequence[BestKnown]) -> str:
        """How a set of entries was found, e.g. "best of 3 OR-Tools runs x 2 s"."""
        runs = sorted({e.runs for e in entries})
        low, high = min(e.seconds for e in entries), max(e.seconds for e in entries)
        return (f"best of {'/'.join(map(str, runs))} OR-Tools runs x "
                f"{f'{low:g}' if low == high else f'{low:g}-{high:g}'} s")


def cache_dir() -> Path:
    """Where evolve keeps per-machine caches."""
    if os.environ.get("EVOLVE_CACHE_DIR"):
        return Path(os.environ["EVOLVE_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "evolve"


@functools.lru_cache(maxsize=8192)  # scoring looks each tour up on every evaluation
def tour_key(tour: Tour) -> str:
    """A stable hash of the tour's distances, depots and side constraints."""
    digest = hashlib.sha256()
    digest.update(np.round(tour.matrix, 9).tobytes())
    digest.update(repr((tour.start, tour.end, tour.weights, tour.classes, tour.capacity, tour.precedence)).encode())
    return digest.hexdigest()[:32]


def _best_of_runs(job: tuple[Tour, float]) -> float | None:
    tour, seconds = job
    lengths = [check_route(tour, solve_ortools(tour, seconds, metaheuristic)).length
               for metaheuristic in METAHEURISTICS]
    found = [length for length in lengths if length is not None]
    return min(found) if found else None


class BestKnownCache:
    """Best-known lengths of tours, read from and written to one JSON file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / "warehouse_tsp_best_known.json"
        self.entries: dict[str, BestKnown] = self._read()

    def _read(self) -> dict[str, BestKnown]:
        try:
            raw = json.loads(self.path.read_text())
            return {key: BestKnown(**value) for key, value in raw.items()}
        except (OSError, ValueError, TypeError, AttributeError):  # missing, unreadable or damaged: recomputed
            return {}

    def get(self, tour: Tour, seconds: float) -> BestKnown | None:
        """The cached entry for `tour` found with at least `seconds` per run, if any."""
        entry = self.entries.get(tour_key(tour))
        return entry if entry is not None and entry.seconds >= seconds else None

    def missing(self, tours: Sequence[Tour], seconds: float) -> list[Tour]:
        """The tours without an exact optimum whose best-known length is not cached at this effort."""
        return [t for t in tours if not t.is_exact_solvable and self.get(t, seconds) is None]

    def fill(self, tours: Sequence[Tour], seconds: float, workers: int | None = None,
             advance: Callable[[int], None] | None = None) -> int:
        """Compute and store what `missing` lists; returns how many tours were solved."""
        todo = self.missing(tours, seconds)
        if not todo:
            return 0
        workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
        found: dict[str, BestKnown] = {}
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for tour, length in zip(todo, pool.map(_best_of_runs, [(t, seconds) for t in todo])):
                key, old = tour_key(tour), self.entries.get(tour_key(tour))
                if old is not None and (length is None or old.length < length):
                    length = old.length  # a shorter run's route is still a route
                if length is not None:
                    found[key] = BestKnown(length, seconds, len(METAHEURISTICS))
                if advance is not None:
                    advance(1)
        self.entries = {**self._read(), **found}  # another process may have added tours meanwhile
        try:
            self._write()
        except OSError as exc:  # the entries still serve this process
            print(f"warehouse_tsp: could not cache best-known routes in {self.path} ({exc.strerror or exc}); "
                  "set EVOLVE_CACHE_DIR to a writable folder", file=sys.stderr, flush=True)
        return len(found)

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".best_known.")
        with os.fdopen(fd, "w") as out:
            json.dump({key: asdict(value) for key, value in self.entries.items()}, out)
        os.replace(tmp, self.path)
