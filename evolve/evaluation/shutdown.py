"""Ending the `evolve` process at once after a campaign, instead of waiting seconds for Ray's teardown.

By then every program is committed, the report written, the run lock released and the database closed;
what is left are processes this one started: a private Ray instance (its GCS, raylet, agents and
workers) and sandbox fork servers. Ray's own atexit teardown stops them gracefully one by one (3-4 s);
they hold nothing of the campaign's, so they are killed together and the process exits. A driver
joined to a cluster that outlives it first waits for the cluster to get its last task events: until
0.25 s after its last task ended (`evolve.evaluation.ray_pool.connect` has its core worker send them every 0.05 s;
1.2 s on a `ray://` connection, whose driver is the cluster's).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from typing import NoReturn

from evolve.evaluation.pool import TASK_EVENTS_ENV, ray_connected

__all__ = ["exit_now", "ray_task_ended"]

_TASK_EVENTS_MARGIN = 0.2  # seconds, after a report interval of Ray's core worker, for the last events to arrive
_last_ray_task = 0.0  # time.monotonic() when this process last saw one of its Ray tasks end


def ray_task_ended() -> None:
    """Note that a Ray task this process submitted has just ended: the cluster has its events one report
    interval later, which `exit_now` waits for only as far as it has not passed yet."""
    global _last_ray_task  # noqa: PLW0603 (one moment per process, read when it exits)
    _last_ray_task = time.monotonic()
_KILL_SECONDS = 0.3  # at most, for the killed processes to be dead


def _end_processes() -> bool:
    """Kill every process descended from this one; True when this process is a driver joined to a Ray
    cluster that outlives it."""
    import psutil

    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        children = []
    own_raylet = any(_name(c) == "raylet" for c in children)  # named before they are killed: not after
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.kill()
    # dead, so nothing outlives the command; a killed grandchild stays a zombie until its (killed) parent is
    # gone and init reaps it: dead already, not worth waiting for
    deadline = time.monotonic() + _KILL_SECONDS
    while not all(_dead(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.005)
    return ray_connected() and not own_raylet


def exit_now(code: int) -> NoReturn:
    """Flush the logs and the terminal, end what this process started, and exit with `code` at once (a
    driver joined to a cluster after its task events' report interval, so that the cluster has the last)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if _end_processes():
        # a cluster outlives us: Ray's core worker sends its task events every interval, so wait that long
        # for the last ones (a `ray.shutdown()` here races Ray's own threads and can end us with code 1)
        time.sleep(max(0.0, _last_ray_task + _task_events_interval() + _TASK_EVENTS_MARGIN - time.monotonic()))
    os._exit(code)


def _task_events_interval() -> float:
    """Seconds between two reports of this process's task events to Ray (its default: one)."""
    try:
        return max(0.0, float(os.environ.get(TASK_EVENTS_ENV, "1000")) / 1000)
    except ValueError:
        return 1.0


def _dead(process) -> bool:
    import psutil

    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:  # gone (reaped)
        return True


def _name(process) -> str:
    import psutil

    try:
        return process.name()
    except psutil.Error:
        return ""
