"""The `evolve` command."""

from __future__ import annotations

from evolve.cli.commands import main

__all__ = ["main"]
