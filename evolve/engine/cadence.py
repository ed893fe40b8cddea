"""Exact cadences over a count that grows unevenly (commits from many iterations in flight)."""

from __future__ import annotations

__all__ = ["Cadence"]


class Cadence:
    """Fires once at each multiple of `every` that a growing count reaches (`every` 0: never).

    The count may skip values (two commits between looks) or repeat them (a look without a commit):
    each multiple fires exactly once, and a count that starts past some multiples (a resumed campaign)
    fires only for those still ahead.
    """

    def __init__(self, every: int, count: int = 0) -> None:
        self.every = max(0, every)
        self._next = (count // self.every + 1) * self.every if self.every else 0

    def due(self, count: int) -> list[int]:
        """The multiples of `every` that `count` has reached since the last call, each once."""
        if not self.every:
            return []
        fired = []
        while count >= self._next:
            fired.append(self._next)
            self._next += self.every
        return fired
