"""Calls per second through one process-sandbox session: one round trip per call against `call_many`.

    .venv/bin/python benchmarks/call_many.py [CALLS]
"""

from __future__ import annotations

import sys
import time

from sandboxes import ProcessSandbox, SandboxLimits
from sandboxes.base import Session


def main(calls: int = 2000) -> None:
    sandbox = ProcessSandbox()
    with sandbox.session("def f(x):\n    return 2 * x\n", SandboxLimits(call_timeout=5, wall_seconds=300)) as s:
        args = [[k] for k in range(calls)]
        started = time.perf_counter()
        one_by_one = Session.call_many(s, "f", args, timeout=5)  # the default: one round trip per call
        before = time.perf_counter() - started
        started = time.perf_counter()
        batched = s.call_many("f", args, timeout=5)  # one round trip for the batch
        after = time.perf_counter() - started
    assert one_by_one == batched == [2 * k for k in range(calls)]
    print(f"{calls} calls of f(x) = 2x: one round trip each {calls / before:,.0f} calls/s; "
          f"call_many {calls / after:,.0f} calls/s ({before / after:.0f}x)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
