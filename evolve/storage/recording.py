"""A past campaign's recorded proposer calls, read from its run dir: what replay plays back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evolve.errors import ConfigError
from evolve.storage.rundir import load_config, open_database

__all__ = ["Recording", "ReplayStep"]


@dataclass(frozen=True)
class ReplayStep:
    """One recorded call: what it was asked about and what came back."""

    iteration: int
    parent_hash: str
    inspiration_hashes: tuple[str, ...]
    model: str
    response: str | None
    error: str
    prompt_tokens: int
    completion_tokens: int
    cost: float


class Recording:
    """Every proposer call of one campaign, in the order it decided."""

    def __init__(self, source: str | Path, steps: list[ReplayStep]) -> None:
        self.source = Path(source)
        self.steps = tuple(steps)
        self._by_iteration = {s.iteration: s for s in self.steps}

    @classmethod
    def load(cls, source: str | Path) -> Recording:
        """Read the calls of the run dir `source` (its database opened read-only)."""
        run_dir = Path(source)
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError(f"llm.source={source}: not a run dir (no config.yaml); give the run dir to replay")
        config = load_config(run_dir)
        with open_database(config, run_dir, read_only=True) as db:
            calls = db.calls()
        if not calls:
            raise ConfigError(f"llm.source={source}: the run recorded no proposer calls to replay")
        return cls(run_dir, [ReplayStep(c["iteration"], c["parent_hash"], tuple(c["inspiration_hashes"] or ()),
                                        c["model"], c["response"], c["error"], c["prompt_tokens"],
                                        c["completion_tokens"], c["cost"]) for c in calls])

    def step(self, iteration: int) -> ReplayStep | None:
        """The recorded call of `iteration`, if there was one."""
        return self._by_iteration.get(iteration)
