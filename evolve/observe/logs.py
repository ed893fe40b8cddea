"""Where a campaign's log goes: campaign.log in its run dir (INFO and up), the terminal (warnings)."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from sandboxes import candidate_text

__all__ = ["setup_logging", "terminal_quiet"]

_quiet = [False]  # `terminal_quiet`: every record goes to campaign.log only


class _Terminal(logging.StreamHandler):
    """Warnings on whatever `sys.stderr` is now (the live display redirects it), less the records logged
    with `extra={"file_only": True}` (an evaluator's traceback belongs in campaign.log only), plus the
    INFO records logged with `extra={"terminal": True}` (where the Ray dashboard is)."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(lambda record: not _quiet[0] and not getattr(record, "file_only", False) and (
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


@contextlib.contextmanager
def terminal_quiet(quiet: bool = True) -> Iterator[None]:
    """Within it (when `quiet`), records go to campaign.log only: what fails after the database or the disk
    failed is expected, and the one line that names the cause comes after."""
    before, _quiet[0] = _quiet[0], quiet or _quiet[0]
    try:
        yield
    finally:
        _quiet[0] = before


class _File(logging.FileHandler):
    """campaign.log; a record it cannot write (a full disk) is dropped without the traceback logging prints."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def setup_logging(run_dir: Path) -> None:
    """campaign.log in the run dir gets INFO and up; the terminal gets warnings only."""
    logger = logging.getLogger("evolve")
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    file_handler = _File(run_dir / "campaign.log")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(file_handler)
    console_handler = _Terminal()
    console_handler.setFormatter(_TerminalFormat())
    logger.addHandler(console_handler)
    logger.propagate = False
