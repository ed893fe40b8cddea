"""The isolation attacks inside a campaign, on both backends: a model (the fake server) proposes children that
each run one of them at import (leave System V and POSIX IPC, /dev/shm and /tmp files for later children and
look for what earlier ones left, look for the fork server in /proc, signal other sessions, call a syscall
outside the allow-list), two evaluations at a time. Every child is held: valid, and no child's text holds
what another left. (A child keeps its parent's attacks in its text; the newest one is the one that runs.)"""

from __future__ import annotations

import sqlite3

import pytest

import evolve
from evolve.cli.scaffold import new_problem
from evolve.testing.attacks import ATTACKS
from tests.sandbox.docker_engine import docker_sandbox

pytestmark = pytest.mark.e2e

NAMES = ("ipc_leftovers", "visible_fork_server", "signal_other_sessions", "syscall_outside_allow_list")
SOURCES = [next(a for a in ATTACKS if a.name == name).source for name in NAMES]


@pytest.mark.parametrize("kind", ["process", "docker"])
def test_isolation_attacks_are_held_in_a_campaign(kind, tmp_path):
    from evolve.api import compose
    from evolve.config import LLMConfig, ModelConfig
    from evolve.testing import FakeOpenAIServer

    if kind == "docker":
        docker_sandbox().close()  # skips without an engine (CI fails), builds the image when missing
    folder = new_problem(f"isolation_{kind}", tmp_path)
    counter = iter(range(1000))

    def responder(request):  # the newest attack's source wins; each session runs it once, at its first call
        n = next(counter)
        source = SOURCES[n % len(SOURCES)]
        return (f"Try variant {n}.\n<<<<<<< SEARCH\ndef predict(x):\n=======\n_ATTACK = {source!r}\n_N = {n}\n\n\n"
                "def _run():\n    if '_VERDICT' not in globals():\n        ns = {}\n        exec(_ATTACK, ns)\n"
                "        globals()['_VERDICT'] = ns['solve'](1)\n    if _VERDICT != 2:\n"
                "        raise ValueError(f'ESCAPED {_VERDICT}')\n\n\ndef predict(x):\n    _run()\n>>>>>>> REPLACE\n")

    run_dir = tmp_path / "run"
    with FakeOpenAIServer(responder) as server:
        config = compose(folder, ["budget.iterations=12", "progress=off", "ray.start_after=100000", "prompt.full=0",
                                  "prompt.crossover=0", f"sandbox.kind={kind}", "ray.num_workers=2"])
        config.llm = LLMConfig(kind="ensemble", models=[ModelConfig(model="fake-model", base_url=server.base_url,
                                                                    max_retries=0)], concurrency=2)
        evolve.run(folder, run_dir=run_dir, config=config).close()
    with sqlite3.connect(f"file:{run_dir / 'programs.db'}?mode=ro", uri=True) as conn:
        rows = conn.execute("select status, feedback, error, code from programs where iteration > 0").fetchall()
    children = [row for row in rows if "_ATTACK" in row[3]]
    assert len(children) >= 8, [row[:3] for row in rows]
    escaped = [f"{status}: {feedback} {error}"[:300] for status, feedback, error, _ in children
               if "ESCAPED" in f"{feedback} {error}" or status != "valid"]
    assert escaped == [], "\n".join(f"{s}: {f} {e}" for s, f, e, _ in children)


def test_evolve_doctor_lists_the_seccomp_allow_list(evolve_bin, cli_env):
    import subprocess

    from sandboxes import seccomp_allow_list

    out = subprocess.run([evolve_bin, "doctor"], capture_output=True, text=True, env=cli_env, timeout=300, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    shown = " ".join(out.stdout.split())
    allowed = seccomp_allow_list()
    assert f"seccomp allow-list: {len(allowed)} syscalls; every other one fails with EPERM" in shown
    listed = shown.split("fails with EPERM: ", 1)[1]
    assert all(f" {name}," in f" {listed}" for name in sorted(allowed)[:-1]) and "ptrace," not in listed
