"""`evolve ui`: a local web view of campaigns (`server`), who may read it (`access`), its data (`data`), and the
page's files (`assets`).
`report.html` (`evolve.ui.report`) is the same page with the data embedded."""

from __future__ import annotations

__all__: list[str] = []
