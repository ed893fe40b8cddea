"""Python source parsed to an AST in one place, one parse at a time.

CPython 3.11 keeps the AST converter's recursion depth in state shared by every thread, so two
`ast.parse` calls that interleave (evaluators on local slots' threads, the controller's pre-flight) can
fail with `SystemError: AST constructor recursion depth mismatch`. Every parse evolve makes (the
evaluators, the pre-flight, the problems) goes through `parse`, under one lock, so such an error never
comes from our own parsing; `tests/unit/test_parsing.py` checks that nothing calls `ast.parse` directly.
"""

from __future__ import annotations

import ast
import threading

__all__ = ["parse"]

_LOCK = threading.Lock()


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """Parse `source` as `ast.parse` does (raising SyntaxError), never while another thread parses here."""
    with _LOCK:
        return ast.parse(source, filename)
