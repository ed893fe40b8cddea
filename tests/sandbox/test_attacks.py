"""The attack suite: every hostile candidate of evolve.testing.attacks against every sandbox backend.

For each attack: no score it did not earn, the worker survives, nothing outside the scratch dir
changes, no secret leaks, no process outlives the evaluation, and the next evaluation is unaffected.
"""

from __future__ import annotations

import glob
import json
import os
import site
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from evaluators import evaluate_program
from evolve.config import SandboxConfig
from evolve.evaluation.sandboxing import make_sandbox
from evolve.testing.attacks import ATTACKS, HELD_IF_VALID, PROBE, SECRET, ContractEvaluator
from sandboxes import SandboxLimits
from tests.sandbox.docker_engine import docker_sandbox

LIMITS = SandboxLimits(wall_seconds=20, call_timeout=5, cpu_seconds=10, memory_mb=512, max_processes=32,
                       file_size_mb=8, open_files=64, max_result_bytes=1_000_000)
BACKENDS = ["process", "docker", "docker-image"]  # docker-image: sandbox.interpreter=image


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """Canaries on the host: a key in the environment and in a home file, an answer file among the
    problems, a world-readable answer in /srv, a live run's database in the checkout, a world-writable
    sentinel in /tmp. Removed afterwards."""
    import problems

    old_env = os.environ.get("OPENAI_API_KEY")
    os.environ["OPENAI_API_KEY"] = SECRET
    tag = uuid.uuid4().hex[:8]
    run_dir = Path(problems.__file__).parents[1] / "runs" / f"evolve-attack-{tag}"
    files = {Path.home() / f".evolve-attack-secret-{tag}": (SECRET, 0o600),
             Path(problems.__file__).parent / f".evolve-attack-answer-{tag}": (SECRET, 0o644),
             Path(f"/srv/evolve-attack-answer-{tag}"): (SECRET, 0o644),
             run_dir / "programs.db": (f"SQLite format 3 validation {SECRET}", 0o644),
             Path(f"/tmp/evolve-sentinel-{tag}"): ("intact", 0o666)}
    for path, (text, mode) in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.chmod(path, mode)
    yield {"sentinel": Path(f"/tmp/evolve-sentinel-{tag}")}
    for path in files:
        path.unlink(missing_ok=True)
    run_dir.rmdir()
    if old_env is None:
        os.environ.pop("OPENAI_API_KEY", None)
    else:
        os.environ["OPENAI_API_KEY"] = old_env


@pytest.fixture(scope="module", params=BACKENDS)
def sandbox(request, host):
    if request.param == "process":
        sb = make_sandbox(SandboxConfig())
    else:
        sb = docker_sandbox("image" if request.param == "docker-image" else "host")
    yield sb
    sb.close()


def _pwned() -> list[str]:
    """Files an attack may have left outside its scratch dir."""
    found = glob.glob("/tmp/evolve-attack-*") + glob.glob("/var/tmp/evolve-attack-*") + \
        glob.glob("/dev/shm/evolve-attack-*") + glob.glob("/etc/evolve-attack-*")
    for d in site.getsitepackages():
        found += glob.glob(os.path.join(d, "evolve_attack*"))
    return found


def _session_processes(sandbox) -> list[str]:
    """Live processes below this sandbox's fork server: only this test's sessions, never another user's,
    and not the idle session set up ahead for the next program (no candidate has run in it)."""
    spare = sandbox.spare_leader()
    server = sandbox.server_pid
    out = subprocess.run(["ps", "-eo", "pid,ppid,stat,comm", "--no-headers"], capture_output=True, text=True).stdout
    rows = [line.split(None, 3) for line in out.splitlines()]
    parent = {int(pid): int(ppid) for pid, ppid, _, _ in rows}
    below = []
    for pid, _, stat, comm in rows:
        ancestor = parent.get(int(pid))
        chain = {int(pid)}
        while ancestor not in (None, 0, 1, server):
            chain.add(ancestor)
            ancestor = parent.get(ancestor)
        if server is not None and ancestor == server and "Z" not in stat and spare not in chain:
            below.append(f"{pid} {stat} {comm}")
    return below


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_is_contained(attack, sandbox, host):
    evaluator = ContractEvaluator()
    started = time.monotonic()
    result = evaluate_program(evaluator, sandbox, attack.source, LIMITS)  # the worker survives: no raise
    assert time.monotonic() - started < LIMITS.wall_seconds + 5

    if attack.name in HELD_IF_VALID:
        assert result.valid, f"{attack.name} got through: {result.feedback[:300]}"
    else:
        assert not result.valid and result.score is None, f"{attack.name} earned a score it should not have"
    assert not result.evaluator_error, f"{attack.name} made the trusted side fail: {result.feedback[:300]}"
    assert attack.refusal in result.feedback, f"{attack.name} refused for another reason: {result.feedback[:300]}"
    leaked = json.dumps([repr(a) for a in evaluator.seen]) + json.dumps(result.to_dict())
    assert SECRET not in leaked, f"{attack.name} saw a secret"
    assert host["sentinel"].read_text() == "intact" and _pwned() == []

    deadline = time.monotonic() + 3
    while _session_processes(sandbox) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _session_processes(sandbox) == [], f"{attack.name} left processes behind"

    after = evaluate_program(ContractEvaluator(), sandbox, PROBE, LIMITS)
    assert after.valid and after.score == 1.0, f"the run after {attack.name} was affected: {after.feedback[:300]}"


def test_the_suite_covers_every_category_in_the_notes():
    categories = {a.category.split(" (")[0] for a in ATTACKS}
    required = {"endless loop", "endless sleep", "memory bomb", "fork bomb", "thread bomb", "disk bomb", "network",
                "reading API keys from the environment", "reading other processes' /proc/*/environ",
                "writing outside its directory", "finding hidden answer files", "signalling the parent",
                "ptracing the parent", "huge stdout", "NaN/inf results", "objects with lying __eq__/__float__",
                "patching time, builtins or the evaluator", "sys.exit/os._exit before the work",
                "forging result lines or files", "pickle payloads in results", "ctypes segfaults",
                "daemons that outlive the run", "ignoring SIGALRM/SIGTERM", "poisoning the next run",
                "import-time side effects", "oversized results"}
    assert required <= categories and len(ATTACKS) >= 25
