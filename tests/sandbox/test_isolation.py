"""What keeps sessions apart on both backends: a uid of its own per session (so no per-uid limit crosses),
the seccomp allow-list, nothing of the host writable from a container, and an engine that cannot give each
session its own namespaces refused at start in one line."""

from __future__ import annotations

import os

import pytest

from evaluators import evaluate_program
from evolve.testing.attacks import HONEST, ContractEvaluator
from sandboxes import ProcessSandbox, SandboxLimits, SandboxUnavailable, seccomp_allow_list
from sandboxes.docker import DockerSandbox
from tests.sandbox.docker_engine import docker_sandbox

LIMITS = SandboxLimits(wall_seconds=20, call_timeout=10, cpu_seconds=10, memory_mb=512, max_processes=8,
                       file_size_mb=8, open_files=64)
PROGRAM = """
import os, time
def uid():
    return os.getuid()
def hold(n):
    for _ in range(n):
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
    return n
def spawn(n):
    made = 0
    for _ in range(n):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        made += 1
    return made
"""
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="switching uids needs root")


@root_only
def test_concurrent_sessions_run_under_their_own_uids_and_per_uid_limits_do_not_cross():
    """Without cgroups the processes are capped by RLIMIT_NPROC, which counts a uid's processes: a session
    holding all it may have leaves its neighbour's count untouched."""
    sandbox = ProcessSandbox(cgroups=False)
    try:
        with sandbox.session(PROGRAM, LIMITS) as first, sandbox.session(PROGRAM, LIMITS) as second:
            assert first.call("uid") != second.call("uid")
            assert first.call("hold", LIMITS.max_processes - 1) == LIMITS.max_processes - 1
            assert first.call("spawn", 1) == 0  # its own limit holds
            assert second.call("spawn", 3) == 3
    finally:
        sandbox.close()


@root_only
def test_two_containers_never_share_a_uid():
    one, other = docker_sandbox(), docker_sandbox()
    try:
        with one.session(PROGRAM, LIMITS) as a, other.session(PROGRAM, LIMITS) as b:
            uids = {a.call("uid"), b.call("uid")}
        with one.session(PROGRAM, LIMITS) as again:
            uids.add(again.call("uid"))
        assert len(uids) == 3 and all(uid >= 1 << 20 for uid in uids)
    finally:
        one.close()
        other.close()


def test_the_allow_list_lets_a_candidate_compute_but_not_reach_the_kernel():
    allowed = set(seccomp_allow_list())
    assert {"read", "write", "mmap", "futex", "clone", "execve"} <= allowed
    assert not allowed & {"ptrace", "mount", "unshare", "setns", "bpf", "keyctl", "io_uring_setup", "personality",
                          "process_vm_readv", "perf_event_open", "init_module", "setuid", "chroot", "clone3"}


def test_nothing_of_the_host_is_writable_from_the_container():
    sandbox = docker_sandbox()
    try:
        assert evaluate_program(ContractEvaluator(), sandbox, HONEST, SandboxLimits()).valid
        mounts = sandbox._container.attrs["Mounts"]
        assert mounts and [m["Destination"] for m in mounts if m["RW"]] == []
        assert sandbox._container.attrs["HostConfig"]["ReadonlyRootfs"]
    finally:
        sandbox.close()


class _NoSysAdmin(DockerSandbox):
    _capabilities = ("SETUID", "SETGID", "KILL")


def test_an_engine_that_cannot_namespace_sessions_is_refused_in_one_line():
    client = docker_sandbox()._docker()
    sandbox = _NoSysAdmin(client=client)
    try:
        with pytest.raises(SandboxUnavailable) as refused, sandbox.session(HONEST, SandboxLimits()):
            pass
    finally:
        sandbox.close()
    said = str(refused.value)
    assert "\n" not in said and "unshare" in said and "sandbox=process" in said, said
    assert sandbox._container is None
