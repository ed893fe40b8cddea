"""The Grafana dashboard of evolve's campaign metrics (`evolve.json`; import it in Grafana)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DASHBOARD"]

DASHBOARD = Path(__file__).with_name("evolve.json")
