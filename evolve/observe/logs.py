"""Where a campaign's log goes: campaign.log in its run dir (INFO and up), the terminal (warnings).

Ray's own output goes to campaign.log only: its Python loggers and the errors its cluster publishes to the
driver (`quiet_ray`), and, for the CLI, what native code writes to file descriptor 2 (Ray's C++ core worker,
gRPC: `capture_native_stderr`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sandboxes import candidate_text

__all__ = ["capture_native_stderr", "quiet_ray", "setup_logging", "terminal_quiet"]

_terminal: list[int] = []  # the terminal's stderr (a copy of fd 2), once native writes to fd 2 go to campaign.log
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


class _IntoCampaignLog(logging.Handler):
    """Hands a record of Ray's loggers to evolve's handlers, for campaign.log only (nowhere without them)."""

    def emit(self, record: logging.LogRecord) -> None:
        record.file_only = True
        evolve = logging.getLogger("evolve")
        if evolve.handlers:
            evolve.handle(record)


def _published(data: dict[str, Any], ignore_prefix: bool = False) -> None:
    """Log what Ray's cluster published to this driver (a dead raylet's last log lines, say) instead of
    printing it."""
    lines = [str(line).rstrip() for line in data.get("lines", ())]
    if any(lines):
        logging.getLogger("ray.published").warning("%s", "\n".join(lines))


def quiet_ray() -> None:
    """Send Ray's Python-side output in this process to campaign.log instead of the terminal: its `ray`
    loggers, and the errors its cluster publishes to the driver (which Ray prints from a thread of its own
    whatever `log_to_driver` says). Call it once Ray is imported; calling it again does nothing more."""
    ray_logger = logging.getLogger("ray")
    for handler in list(ray_logger.handlers):
        if not isinstance(handler, _IntoCampaignLog):
            ray_logger.removeHandler(handler)
    if not ray_logger.handlers:
        ray_logger.addHandler(_IntoCampaignLog())
    ray_logger.propagate = False
    worker = sys.modules.get("ray._private.worker")
    if worker is not None and hasattr(worker, "print_to_stdstream"):
        worker.print_to_stdstream = _published  # read at each call by its error listener thread


def capture_native_stderr(run_dir: Path) -> None:
    """Point file descriptor 2 at the run's campaign.log, where native code (Ray's C++ core worker, gRPC)
    writes its warnings; `sys.stderr` keeps the terminal (evolve's lines, the progress display, tracebacks).
    For a process that runs campaigns only (the CLI): child processes that inherit fd 2 write there too."""
    sys.stderr.flush()
    if not _terminal:
        _terminal.append(os.dup(2))
        sys.stderr = open(_terminal[0], "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",  # noqa: SIM115
                          errors="backslashreplace", closefd=False)  # (the process's stderr from now on)
    log = os.open(run_dir / "campaign.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.dup2(log, 2)
    finally:
        os.close(log)
