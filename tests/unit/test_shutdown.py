"""`evolve.evaluation.shutdown`: what the command kills at its end, and whether it then waits for a cluster."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from evolve.evaluation.shutdown import _dead

# In a process of its own: `_end_processes` kills every descendant of the process that calls it.
PROBE = textwrap.dedent("""
    import json, subprocess, sys, types
    import psutil
    sys.modules["ray"] = types.SimpleNamespace(is_initialized=lambda: True)  # says so; no Ray is started
    from evolve.evaluation import shutdown

    child = subprocess.Popen([sys.argv[1], "60"])
    name = psutil.Process(child.pid).name()
    joined = shutdown._end_processes()
    print(json.dumps({"name": name, "joined": joined, "ended": child.poll() is not None}))
""")


@pytest.mark.parametrize("name, joined", [("raylet", False), ("sleep", True)])
def test_children_are_killed_and_only_a_driver_without_its_own_raylet_waits_for_a_cluster(tmp_path, name, joined):
    program = tmp_path / name  # a child process called `name`: a copy of sleep
    shutil.copy(shutil.which("sleep"), program)
    out = subprocess.run([sys.executable, "-c", PROBE, str(program)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # its own raylet (a private instance): no wait; no raylet of its own (joined to a cluster): wait
    assert json.loads(out.stdout) == {"name": name, "joined": joined, "ended": True}


def test_a_zombie_counts_as_dead_and_a_running_process_does_not():
    exited = subprocess.Popen([sys.executable, "-c", "pass"])  # not waited for: a zombie once it exits
    running = subprocess.Popen([shutil.which("sleep"), "60"])
    try:
        zombie = psutil.Process(exited.pid)
        for _ in range(600):  # until it has exited (a verdict that does not depend on how long that takes)
            if zombie.status() == psutil.STATUS_ZOMBIE:
                break
            time.sleep(0.05)
        assert _dead(zombie) and not _dead(psutil.Process(running.pid))
    finally:
        running.kill()
        running.wait()
        exited.wait()
    assert _dead(zombie)  # reaped: gone
