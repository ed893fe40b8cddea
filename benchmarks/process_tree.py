"""Run a command and watch its whole process tree: wall time, peak summed RSS, what it left running.

Every `interval` seconds the command's process and all its descendants (Ray's GCS, raylet, dashboard
and workers are children of a local driver) are listed and their resident set sizes summed; the
largest sum is the peak. Every fifth sample also sums their proportional set sizes (PSS: shared pages
counted once over the tree, where the RSS sum counts a library once per process that maps it). Processes seen
in the tree are remembered with their start time, so the ones still alive after the command exits can be
reported and ended (they were started by the command).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

__all__ = ["TreeRun", "run_tree"]


@dataclass
class TreeRun:
    """What one command did: its pid, wall-clock start and exit (`time.time()`), its exit code, the peak
    summed RSS of its tree, every process seen (pid -> (name, create_time)), and those left running."""

    pid: int
    started: float
    exited: float
    returncode: int | None
    peak_rss: int
    peak_processes: int
    peak_pss: int = 0
    seen: dict[int, tuple[str, float]] = field(default_factory=dict)
    left_running: list[str] = field(default_factory=list)
    timed_out: bool = False


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _pss(pid: int) -> int:
    """A process's proportional set size in bytes: its private pages, and its share of the pages it shares
    (a forked or exec'd Python's libraries counted once over the tree, not once per process as RSS is)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _sample(root: psutil.Process, run: TreeRun, stop: threading.Event, interval: float,
            pss_every: int = 5) -> None:
    rounds = 0
    while not stop.is_set():
        total, count, pss = 0, 0, 0
        proportional = rounds % pss_every == 0  # reading PSS costs more: every few samples
        for proc in _tree(root):
            try:
                total += proc.memory_info().rss
                count += 1
                if proportional:
                    pss += _pss(proc.pid)
                if proc.pid not in run.seen:
                    run.seen[proc.pid] = (proc.name(), proc.create_time())
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass
        if total > run.peak_rss:
            run.peak_rss, run.peak_processes = total, count
        run.peak_pss = max(run.peak_pss, pss)
        rounds += 1
        stop.wait(interval)


def _leftovers(run: TreeRun, root_pid: int) -> list[psutil.Process]:
    alive = []
    for pid, (_, created) in run.seen.items():
        if pid == root_pid:
            continue
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - created) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def run_tree(command: list[str], cwd: Path, output: Path, timeout: float, interval: float = 0.1,
             env: dict[str, str] | None = None) -> TreeRun:
    """Run `command` (stdout and stderr to `output`), sampling its tree; end what it leaves behind."""
    with open(output, "wb") as out:
        started = time.time()
        proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env or dict(os.environ),
                                start_new_session=True)
        run = TreeRun(pid=proc.pid, started=started, exited=started, returncode=None, peak_rss=0, peak_processes=0)
        stop = threading.Event()
        sampler = threading.Thread(target=_sample, args=(psutil.Process(proc.pid), run, stop, interval), daemon=True)
        sampler.start()
        try:
            run.returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            run.timed_out = True
            for child in _tree(psutil.Process(proc.pid)):
                child.kill()
            run.returncode = proc.wait()
        run.exited = time.time()
        stop.set()
        sampler.join()
    time.sleep(0.5)  # a daemon that outlives the command by a moment is not counted as left running
    left = _leftovers(run, proc.pid)
    run.left_running = [f"{p.pid} {run.seen[p.pid][0]}" for p in left]
    for p in left:
        p.terminate()
    psutil.wait_procs(left, timeout=5)
    for p in left:
        if p.is_running():
            p.kill()
    return run
