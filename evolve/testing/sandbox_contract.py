"""The sandbox contract: the attack suite every backend must pass, as a pytest class its author subclasses.

    # test_my_sandbox.py
    from evolve.testing import SandboxContract

    class TestMySandbox(SandboxContract):
        def make_sandbox(self):                  # one sandbox for the whole class, closed afterwards
            return MySandbox(allow=...)

What it checks, for each hostile candidate of `evolve.testing.attacks` in a real session of the backend:
no score it did not earn, the trusted side never raises, nothing outside the scratch dir changes, no
secret of the host leaks (canaries in the environment, the home dir, the problems, /srv and a run's
database), no process outlives the evaluation, and the next evaluation (`probe`, which imports numpy)
is unaffected. Besides, `layers()` reports the backend's protections. The process and Docker backends
run it in evolve's own tests (tests/sandbox/test_attacks.py).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import site
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from evaluators import evaluate_program
from evolve.testing.attacks import ATTACKS, HELD_IF_VALID, PROBE, SECRET, Attack, ContractEvaluator
from sandboxes import Sandbox, SandboxLimits

__all__ = ["LIMITS", "SandboxContract"]

LIMITS = SandboxLimits(wall_seconds=200, call_timeout=5, cpu_seconds=10, memory_mb=512, max_processes=32,
                       file_size_mb=8, open_files=64, max_result_bytes=1_000_000)


def _pwned() -> list[str]:
    """Files an attack may have left outside its scratch dir."""
    found = glob.glob("/tmp/evolve-attack-*") + glob.glob("/var/tmp/evolve-attack-*") + \
        glob.glob("/dev/shm/evolve-attack-*") + glob.glob("/etc/evolve-attack-*")
    for d in site.getsitepackages():
        found += glob.glob(os.path.join(d, "evolve_attack*"))
    return found


class SandboxContract:
    """Subclass it as `Test...` in a test file and override `make_sandbox`; pytest runs the attack suite.

    `limits` are the sessions' limits; `probe` is the honest program scored after each attack (it checks
    that the attack left nothing behind). `processes_left` finds processes a session left running: it
    knows the fork-server backends (process, docker); another backend overrides it, or the check is
    skipped for it.
    """

    limits: ClassVar[SandboxLimits] = LIMITS
    probe: ClassVar[str] = PROBE

    def make_sandbox(self) -> Sandbox:
        """The sandbox under test (call `pytest.skip(reason)` when it cannot run on this machine)."""
        raise NotImplementedError(f"{type(self).__name__}.make_sandbox: return the sandbox backend to test")

    def processes_left(self, sandbox: Sandbox) -> list[str] | None:
        """Live processes started by this sandbox's sessions, but not an idle session set up ahead for the
        next program (no candidate ran in it); None when the backend cannot tell."""
        from sandboxes.forkserver import ForkServerSandbox

        if not isinstance(sandbox, ForkServerSandbox):
            return None
        spare = sandbox.spare_leader()
        server = sandbox.server_pid
        out = subprocess.run(["ps", "-eo", "pid,ppid,stat,comm", "--no-headers"], capture_output=True,
                             text=True, check=False).stdout
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

    # -- set-up -----------------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def host(cls) -> Iterator[dict[str, Path]]:
        """Canaries on the host: a key in the environment and in a home file, an answer file among the
        problems, a world-readable answer in /srv, a live run's database beside the problems, a
        world-writable sentinel in /tmp. Those that cannot be written here (no root) are left out.
        Removed afterwards."""
        import problems

        old_env = os.environ.get("OPENAI_API_KEY")
        os.environ["OPENAI_API_KEY"] = SECRET
        tag = uuid.uuid4().hex[:8]
        run_dir = Path(problems.__file__).parents[1] / "runs" / f"evolve-attack-{tag}"
        sentinel = Path(f"/tmp/evolve-sentinel-{tag}")
        files = {Path.home() / f".evolve-attack-secret-{tag}": (SECRET, 0o600),
                 Path(problems.__file__).parent / f".evolve-attack-answer-{tag}": (SECRET, 0o644),
                 Path(f"/srv/evolve-attack-answer-{tag}"): (SECRET, 0o644),
                 run_dir / "programs.db": (f"SQLite format 3 validation {SECRET}", 0o644),
                 sentinel: ("intact", 0o666)}
        written = []
        for path, (text, mode) in files.items():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            except OSError:
                if path in (sentinel, Path.home() / f".evolve-attack-secret-{tag}"):
                    raise
                continue
            os.chmod(path, mode)
            written.append(path)
        yield {"sentinel": sentinel}
        for path in written:
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            run_dir.rmdir()
        if old_env is None:
            os.environ.pop("OPENAI_API_KEY", None)
        else:
            os.environ["OPENAI_API_KEY"] = old_env

    @pytest.fixture(scope="class")
    @classmethod
    def sandbox(cls, host: dict[str, Path]) -> Iterator[Sandbox]:
        """The backend under test, built once for the class (after the canaries) and closed afterwards."""
        sandbox = cls().make_sandbox()
        assert isinstance(sandbox, Sandbox), f"make_sandbox gave a {type(sandbox).__name__}, not a Sandbox"
        try:
            yield sandbox
        finally:
            sandbox.close()

    # -- the contract -----------------------------------------------------------------------------
    def test_layers_are_reported(self) -> None:
        sandbox = self.make_sandbox()  # its own: a session with other limits may leave an idle spare behind
        try:
            layers = sandbox.layers()
        finally:
            sandbox.close()
        assert layers and all(isinstance(k, str) and isinstance(v, str) for k, v in layers.items()), \
            f"layers() should name each protection with its state; got {layers!r}"

    @pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
    def test_attack_is_contained(self, attack: Attack, sandbox: Sandbox, host: dict[str, Path]) -> None:
        evaluator = ContractEvaluator()
        started = time.monotonic()
        result = evaluate_program(evaluator, sandbox, attack.source, self.limits)  # the worker survives: no raise
        assert time.monotonic() - started < self.limits.wall_seconds + 5

        if attack.name in HELD_IF_VALID:
            assert result.valid, f"{attack.name} got through: {result.feedback[:300]}"
        else:
            assert not result.valid and result.score is None, f"{attack.name} earned a score it should not have"
        assert not result.evaluator_error, f"{attack.name} made the trusted side fail: {result.feedback[:300]}"
        assert attack.refusal in result.feedback, f"{attack.name} refused for another reason: {result.feedback[:300]}"
        leaked = json.dumps([repr(a) for a in evaluator.seen]) + json.dumps(result.to_dict())
        assert SECRET not in leaked, f"{attack.name} saw a secret"
        assert host["sentinel"].read_text() == "intact" and _pwned() == []

        if self.processes_left(sandbox) is not None:
            deadline = time.monotonic() + 3
            while self.processes_left(sandbox) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert self.processes_left(sandbox) == [], f"{attack.name} left processes behind"

        after = evaluate_program(ContractEvaluator(), sandbox, self.probe, self.limits)
        assert after.valid and after.score == 1.0, f"the run after {attack.name} was affected: {after.feedback[:300]}"
