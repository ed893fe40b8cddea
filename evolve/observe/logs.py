"""Where a campaign's log goes: campaign.log in its run dir (INFO and up), the terminal (warnings)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from sandboxes import candidate_text

__all__ = ["setup_logging"]


class _Terminal(logging.StreamHandler):
    """Warnings on whatever `sys.stderr` is now (the live display redirects it), less the records logged
    with `extra={"file_only": True}` (an evaluator's traceback belongs in campaign.log only), plus the
    INFO records logged with `extra={"terminal": True}` (where the Ray dashboard is)."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(lambda record: not getattr(record, "file_only", False) and (
            record.levelno >= logging.WARNING or getattr(record, "terminal", False)))

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _TerminalFormat(logging.Formatter):
    """`evolve: ` before a warning or an error, so it reads as one; information as it is. What a record
    quotes of a candidate (a validation's failure, an evaluator's error) reaches the terminal through the gate."""

    def format(self, record: logging.LogRecord) -> str:
        text = candidate_text(super().format(record), "terminal")
        return f"evolve: {text}" if record.levelno >= logging.WARNING else text


def setup_logging(run_dir: Path) -> None:
    """campaign.log in the run dir gets INFO and up; the terminal gets warnings only."""
    logger = logging.getLogger("evolve")
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    file_handler = logging.FileHandler(run_dir / "campaign.log")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(file_handler)
    console_handler = _Terminal()
    console_handler.setFormatter(_TerminalFormat())
    logger.addHandler(console_handler)
    logger.propagate = False
