"""Where run dirs are: a run dir itself, or every run dir below a folder (`runs/`, a sweep's multirun folder)."""

from __future__ import annotations

from pathlib import Path

from evolve.errors import RunDirError

__all__ = ["find_runs"]


def find_runs(path: str | Path) -> list[Path]:
    """The run dirs at `path`: itself when it is one, else every run dir below it (e.g. `runs/`)."""
    root = Path(path)
    if not root.exists():
        raise RunDirError(f"{root} does not exist; give a run dir or a folder of them, e.g. `evolve ui runs/`")
    if (root / "config.yaml").is_file():
        return [root]
    found = sorted(p.parent for p in root.rglob("config.yaml")
                   if p.parent.name != ".hydra" and ((p.parent / "campaign.log").exists()
                                                     or (p.parent / "programs.db").exists()))
    if not found:
        raise RunDirError(f"{root} holds no evolve run dir (a folder with config.yaml); start one with `evolve run`")
    return found
