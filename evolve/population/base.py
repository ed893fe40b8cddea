"""The population seam: which valid programs breed, and what is shown beside them.

A `Population` sees only `Member`s, the small columns of valid programs (`evolve.storage.Member`); it
hands back program ids, and the engine loads the programs themselves from the store. It is rebuilt from
the store's small columns when a campaign resumes, never from full rows.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from evolve.config import DatabaseConfig, FeatureDimension
from evolve.storage.database import Member

__all__ = ["Member", "Population", "Selection"]


@dataclass(frozen=True)
class Selection:
    """A parent and the inspirations to show beside it, as program ids.

    Attributes:
        parent: the program to change.
        inspirations: other programs shown in the prompt, most relevant first.
        labels: why each inspiration was chosen (`best`, `diverse`, `migrant`, ...), by id; optional. Prompts
            show them, and show an inspiration far below the parent only when it is labelled `diverse`.
        cell: the parent's MAP-Elites cell (one bin index per feature dimension); None: no grid.
    """

    parent: int
    inspirations: tuple[int, ...] = ()
    labels: dict[int, str] = field(default_factory=dict)
    cell: tuple[int, ...] | None = None


class Population(abc.ABC):
    """Chooses parents and inspirations among the valid programs of a campaign.

    Contract:
    - Given: `add(member)` for every valid program in commit order (the initial program, iteration 0,
      first); `place(id, island)` for each migration recorded in the store, after the members, when the
      campaign resumes; `migrate()` exactly every `database.migration_interval` committed iterations.
    - When: from the campaign's one event loop (and from a reader such as the web view, on its own
      instance). Not thread-safe; no call waits on I/O.
    - Returns ids only: the engine loads the programs. `select` raises `LookupError` while no program
      has been added.
    - Determinism: with the same seed and the same sequence of calls, the same choices (draw only from
      `self.rng`). A population built by `restore` from the store equals the live one, so that a
      resumed campaign goes on as it would have (the draws after a resume differ: the seed is reseeded).
    - Strategies are chosen by `database.population` (a built-in name or an entry point in the
      `evolve.populations` group); the constructor takes `(config, features, seed)`.

    Example (a complete strategy: the best program is always the parent, the next best inspire it)::

        class Greedy(Population):
            def __init__(self, config, features=(), seed=0):
                super().__init__(config, features, seed)
                self.ranked: list[Member] = []
            def add(self, member):
                self.ranked.append(member)
                self.ranked.sort(key=lambda m: (-m.score, m.id))
            def select(self, island):
                if not self.ranked:
                    raise LookupError("no valid program yet")
                best, *rest = self.ranked
                return Selection(best.id, tuple(m.id for m in rest[:2]))
    """

    def __init__(self, config: DatabaseConfig | None = None, features: Sequence[FeatureDimension] = (),
                 seed: int = 0) -> None:
        self.config = config or DatabaseConfig()
        self.features = list(features)
        self.rng = random.Random(seed)

    @abc.abstractmethod
    def add(self, member: Member) -> None:
        """Take in a newly committed valid program."""

    @abc.abstractmethod
    def select(self, island: int) -> Selection:
        """The parent and inspirations of a child on `island`."""

    @property
    def islands(self) -> int:
        """How many islands the campaign spreads its iterations over (iteration `n` runs on `n % islands`)."""
        return 1

    def partner(self, island: int) -> int | None:
        """A second parent for a crossover on `island` (None: a crossover without one)."""
        return None

    def migrate(self) -> list[tuple[int, int]]:
        """Move programs between islands now; return the moves as (program id, to island)."""
        return []

    def place(self, program_id: int, island: int) -> None:
        """Put an added program on `island` too (a recorded migration, replayed on resume)."""

    def island_best(self) -> list[float | None]:
        """The best score on each island (None: an empty island)."""
        return []

    def grids(self) -> list[dict[tuple[int, ...], int]]:
        """Each island's MAP-Elites grid, cell to elite id, for viewers (empty: no grid)."""
        return []

    def leaders(self) -> list[int]:
        """Each island's best program id, for viewers."""
        return []

    def bounds(self) -> list[list[float]]:
        """Each feature dimension's `bins + 1` bin edges, low to high, for viewers (here: the fixed ranges)."""
        return [[d.min + (d.max - d.min) * b / d.bins for b in range(d.bins + 1)] for d in self.features]

    def restore(self, members: Iterable[Member], migrations: Iterable[tuple[int, int]] = ()) -> None:
        """Rebuild from the store: every valid program in commit order, then the recorded migrations."""
        for member in members:
            self.add(member)
        for program_id, island in migrations:
            self.place(program_id, island)
