"""What a campaign tells the parts that watch it, through a base class with no-op hooks.

The engine never imports its viewers: the report (`evolve.ui.report.ReportWriter`) and anything a user
adds arrive as observers handed to `Campaign(observers=...)`.
"""

from __future__ import annotations

from pathlib import Path

from evolve.config import Config
from evolve.population import Population
from evolve.program import Program
from evolve.storage.database import ProgramDatabase

__all__ = ["CampaignObserver"]


class CampaignObserver:
    """Hooks a campaign calls on its event loop; override the ones you need.

    Contract: hooks are called from the campaign's one event loop, never concurrently, so they must
    return quickly (start slow work on a thread, as `ReportWriter` does). A hook that raises is logged
    and ignored: watching a campaign never stops it. The database passed in is the campaign's own,
    open for writing; observers only read it, and must not keep it after `stopped`.

    Example::

        class Bests(CampaignObserver):          # print each new best
            def committed(self, program, best):
                if best:
                    print(program.iteration, program.score)
    """

    def database(self, database: ProgramDatabase) -> None:
        """The campaign's database, open for writing, as soon as it is open (before the workers start and the
        initial program is scored); read it only (from any thread: its reads are thread-safe), and not after
        `stopped`."""

    def population(self, population: Population) -> None:
        """The campaign's population, restored and following its commits (called before `started`); read it
        only, on the event loop, and not after `stopped`."""

    def started(self, config: Config, run_dir: Path) -> None:
        """The set-up is done and the initial program scored; the first proposals go out next."""

    def committed(self, program: Program, best: bool) -> None:
        """One iteration's program is committed; `best`: it is the campaign's new best."""

    def stopped(self, config: Config, run_dir: Path, database: ProgramDatabase) -> None:
        """The campaign stopped (any stop: a budget, a signal, an error); nothing is in flight any more."""
