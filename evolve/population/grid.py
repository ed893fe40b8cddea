"""MAP-Elites cells: where a program's feature values fall, on fixed or adaptive bins.

A dimension with fixed bins cuts `[min, max]` into `bins` equal widths. An adaptive one (`adaptive: true`)
cuts the distinct values the valid programs have into `bins` groups of about as many values each
(quantiles), so the grid follows what programs really do; its edges move only when the number of programs
reaches a power of two, and are a function of the values in commit order, so that a population rebuilt
from the store has the same edges and cells as the live one.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

from evolve.config import FeatureDimension

__all__ = ["Axes", "cell_of", "quantile_edges", "unseen_features", "value_of"]


def value_of(dim: FeatureDimension, values: Mapping[str, Any], code_length: int) -> float | None:
    """A program's value on `dim` (`code_length` is the engine's own feature); None where it has none."""
    value = values.get(dim.name)
    if value is None and dim.name == "code_length":
        return float(code_length)
    return None if value is None else float(value)


def unseen_features(features: Sequence[FeatureDimension], returned: Mapping[str, Any],
                    metrics: Mapping[str, Any]) -> list[str]:
    """One line per feature dimension that the initial program's `Score.features` (`returned`) lacks, naming the
    closest feature or metric it has (`code_length` is the engine's own)."""
    import difflib

    lines = []
    for index, dim in enumerate(features):
        if dim.name == "code_length" or dim.name in returned:
            continue
        known = sorted({*returned, *metrics})
        close = difflib.get_close_matches(dim.name, known, n=1, cutoff=0.6)
        lines.append(f"features[{index}] {dim.name!r} is not among the initial program's features or metrics"
                     f" ({', '.join(known) or 'none'}){f'; did you mean {close[0]}?' if close else ''} (the grid "
                     "reads Score.features; without it every program sits in that axis's first bin)")
    return lines


def quantile_edges(values: Sequence[float], bins: int) -> tuple[float, ...]:
    """The `bins - 1` inner edges that cut the distinct `values` into `bins` groups of about equal size."""
    distinct = sorted(set(values))
    if not distinct:
        return ()
    return tuple(distinct[k * len(distinct) // bins] for k in range(1, bins))


def _fixed_bin(dim: FeatureDimension, value: float) -> int:
    span = (dim.max - dim.min) or 1.0
    return min(dim.bins - 1, max(0, int((value - dim.min) / span * dim.bins)))


def cell_of(features: Sequence[FeatureDimension], values: Mapping[str, Any], code_length: int,
            edges: Sequence[Sequence[float] | None] | None = None) -> tuple[int, ...]:
    """The MAP-Elites cell of a program's feature values (`code_length` is the engine's own feature).

    `edges[k]` holds the inner edges of an adaptive dimension `k` (None: its fixed bins); a value equal to
    an edge falls in the bin above it. A missing value falls in the first bin.
    """
    cell = []
    for k, dim in enumerate(features):
        value = value_of(dim, values, code_length)
        inner = edges[k] if edges is not None else None
        if value is None:
            cell.append(0)
        elif dim.adaptive and inner:
            cell.append(bisect.bisect_right(inner, value))
        else:
            cell.append(_fixed_bin(dim, value))
    return tuple(cell)


class Axes:
    """The bins of every feature dimension: fixed ones, and adaptive ones that follow the values seen.

    `observe(values, code_length)` takes in one valid program's values (in commit order) and returns True
    when the adaptive edges have just been recomputed (at 1, 2, 4, 8, ... programs): every cell must then
    be recomputed with `cell`. Cheap: a recomputation sorts the values seen, O(n log n) at doubling points.
    """

    def __init__(self, features: Sequence[FeatureDimension]) -> None:
        self.features = list(features)
        self._adaptive = [k for k, dim in enumerate(self.features) if dim.adaptive]
        self._seen: dict[int, list[float]] = {k: [] for k in self._adaptive}
        self._count = 0
        self._range: dict[int, tuple[float, float]] = {}
        self.edges: list[tuple[float, ...] | None] = [() if dim.adaptive else None for dim in self.features]

    @property
    def adaptive(self) -> bool:
        """Some dimension's bins follow the values seen."""
        return bool(self._adaptive)

    def observe(self, values: Mapping[str, Any], code_length: int) -> bool:
        """Take in one valid program's feature values; True when the adaptive edges were just recomputed."""
        if not self._adaptive:
            return False
        for k in self._adaptive:
            value = value_of(self.features[k], values, code_length)
            if value is not None:
                self._seen[k].append(value)
                low, high = self._range.get(k, (value, value))
                self._range[k] = (min(low, value), max(high, value))
        self._count += 1
        if self._count & (self._count - 1):  # not a power of two
            return False
        edges = list(self.edges)
        for k in self._adaptive:
            edges[k] = quantile_edges(self._seen[k], self.features[k].bins)
        moved = edges != self.edges
        self.edges = edges
        return moved

    def cell(self, values: Mapping[str, Any], code_length: int) -> tuple[int, ...]:
        """The cell of a program's feature values on the current bins."""
        return cell_of(self.features, values, code_length, self.edges)

    def bounds(self) -> list[list[float]]:
        """Each dimension's `bins + 1` bin edges, low to high (an adaptive one: from the values seen), for
        viewers."""
        out = []
        for k, dim in enumerate(self.features):
            inner = self.edges[k]
            if dim.adaptive and inner:
                low, high = self._range[k]
                out.append([low, *inner, high])
            else:
                width = (dim.max - dim.min) / dim.bins
                out.append([dim.min + width * b for b in range(dim.bins + 1)])
        return out
