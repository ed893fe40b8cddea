"""The process sandbox keeps the promises of issue 2: clean interpreter, empty env, limits, JSON only."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sandboxes import (
    Array,
    CandidateCrash,
    CandidateError,
    CandidateTimeout,
    ProcessSandbox,
    SandboxLimits,
    default_view,
)

LIMITS = SandboxLimits(wall_seconds=20, call_timeout=5, cpu_seconds=10, memory_mb=1024)


@pytest.fixture(scope="module")
def sandbox() -> ProcessSandbox:
    return ProcessSandbox()


def run(sandbox, source, fn="f", *args, limits=LIMITS, timeout=None):
    with sandbox.session(source, limits) as s:
        return s.call(fn, *args, timeout=timeout)


def test_plain_values_round_trip_and_numpy_is_converted(sandbox):
    src = "import numpy as np\ndef f(x):\n    return {'a': x, 'b': np.arange(3) * 1.5, 'c': np.float64(2.5)}\n"
    assert run(sandbox, src, "f", [1, "two", None, True]) == {"a": [1, "two", None, True], "b": [0.0, 1.5, 3.0],
                                                               "c": 2.5}


def test_keyword_arguments_and_numpy_arrays_kept_apart(sandbox):
    """`call_kwargs` passes keyword arguments; with `keep_tuples` numpy arrays come back as `Array` lists."""
    src = "import numpy as np\ndef f(a, b=1, *, c=2):\n    return (np.arange(a) * b, [c], (a,))\n"
    with sandbox.session(src, LIMITS) as s:
        assert s.call_kwargs("f", [3], {"c": 5, "b": 2}) == [[0, 2, 4], [5], [3]]  # plain JSON: all lists
        s.keep_tuples = True
        array, listed, pair = s.call_kwargs("f", [2], {})
        assert type(array) is Array and array == [0, 1] and type(listed) is list and pair == (2,)
        with pytest.raises(CandidateError, match="unexpected keyword argument 'd'"):
            s.call_kwargs("f", [1], {"d": 0})


def test_runs_in_a_separate_clean_process_with_an_empty_environment(sandbox, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-should-not-leak")
    src = "import os, sys\ndef f():\n    return [os.getpid(), dict(os.environ), sys.flags.isolated]\n"
    pid, env, isolated = run(sandbox, src)
    assert pid != os.getpid()
    assert "OPENAI_API_KEY" not in env and not any("sk-secret" in v for v in env.values())
    assert set(env) <= {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "HOME", "TMPDIR",
                        "PATH", "LANG"}
    assert isolated == 1


def test_non_finite_and_non_plain_results_are_rejected(sandbox):
    with pytest.raises(CandidateError, match="non-finite"):
        run(sandbox, "def f():\n    return [1.0, float('nan')]\n")
    with pytest.raises(CandidateError, match="non-finite"):
        run(sandbox, "def f():\n    return float('inf')\n")
    with pytest.raises(CandidateError, match="type"):
        run(sandbox, "class Liar(float):\n    def __eq__(self, o):\n        return True\n"
                     "def f():\n    return Liar(1)\n")
    with pytest.raises(CandidateError, match="keys must be str"):
        run(sandbox, "def f():\n    return {1: 2}\n")


def test_a_hang_is_killed_with_its_process_group(sandbox, tmp_path):
    src = ("import subprocess, time\n"
           "def f():\n"
           "    subprocess.Popen(['sleep', '1000'])\n"
           "    while True:\n"
           "        time.sleep(0.1)\n")
    with sandbox.session(src, LIMITS) as s:
        started = time.monotonic()
        with pytest.raises(CandidateTimeout, match="timed out"):
            s.call("f", timeout=1.0)
        assert time.monotonic() - started < 4
        pgid = s._proc.pid
        with pytest.raises(CandidateError, match="session is over"):
            s.call("f")
    deadline = time.monotonic() + 5
    while _live_group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _live_group_members(pgid) == []  # the sleeping grandchild is gone too


def _live_group_members(pgid: int) -> list[int]:
    """Pids of the process group that are still running (zombies awaiting their reaper excluded)."""
    alive = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(int(entry))
    return alive


def test_session_wall_clock_limit_covers_many_calls(sandbox):
    limits = SandboxLimits(wall_seconds=1.5, call_timeout=5)
    with sandbox.session("import time\ndef f():\n    time.sleep(0.4)\n    return 1\n", limits) as s:
        with pytest.raises(CandidateTimeout, match="wall_seconds"):
            for _ in range(10):
                s.call("f")


def test_exceptions_and_exits_are_candidate_errors(sandbox):
    with pytest.raises(CandidateError, match="ZeroDivisionError"):
        run(sandbox, "def f():\n    return 1 / 0\n")
    with pytest.raises(CandidateError, match="SystemExit"):
        run(sandbox, "def f():\n    raise SystemExit(0)\n")
    with pytest.raises(CandidateCrash, match="exited with code 0"):
        run(sandbox, "import os\ndef f():\n    os._exit(0)\n")
    with pytest.raises(CandidateError, match="failed to load"):
        run(sandbox, "import sys\nsys.exit(0)\n")
    with pytest.raises(CandidateError, match="defines no function"):
        run(sandbox, "x = 1\n")


def test_a_segfault_is_a_crash(sandbox):
    with pytest.raises(CandidateCrash, match="SIGSEGV"):
        run(sandbox, "import ctypes\ndef f():\n    return ctypes.string_at(0)\n")


def test_cpu_and_memory_limits(sandbox):
    with pytest.raises(CandidateCrash, match=r"SIGXCPU|SIGKILL"):
        run(sandbox, "def f():\n    while True:\n        pass\n", limits=SandboxLimits(cpu_seconds=1, call_timeout=10))
    with pytest.raises(CandidateError, match="MemoryError"):
        run(sandbox, "def f():\n    return len(bytearray(3 * 1024 ** 3))\n", limits=SandboxLimits(memory_mb=512))


def test_oversized_results_and_output_are_capped(sandbox):
    with pytest.raises(CandidateError, match="max_result_bytes"):
        run(sandbox, "def f():\n    return 'x' * 100000\n", limits=SandboxLimits(max_result_bytes=1000))
    with pytest.raises(CandidateError, match="File too large"):
        run(sandbox, "def f():\n    while True:\n        print('spam' * 1000)\n", limits=SandboxLimits(file_size_mb=1))


@pytest.mark.skipif(os.geteuid() != 0, reason="network and mount namespaces and the user switch need root")
def test_no_network_no_home_no_privileges(sandbox):
    src = ("import os, socket\n"
           "def f():\n"
           "    out = {'uid': os.getuid(), 'root': sorted(os.listdir('/root'))}\n"
           "    try:\n"
           "        socket.create_connection(('127.0.0.1', 22), timeout=1)\n"
           "        out['net'] = 'connected'\n"
           "    except OSError as exc:\n"
           "        out['net'] = type(exc).__name__\n"
           "    try:\n"
           "        open('/etc/evolve-sandbox-probe', 'w')\n"
           "        out['write'] = 'wrote'\n"
           "    except OSError as exc:\n"
           "        out['write'] = type(exc).__name__\n"
           "    return out\n")
    out = run(sandbox, src)
    assert out["uid"] != 0
    assert out["net"] != "connected"
    assert out["write"] in ("PermissionError", "OSError") and not os.path.exists("/etc/evolve-sandbox-probe")
    assert set(out["root"]) <= {".pyenv", ".local"}  # only the interpreter is bound back into /root
    layers = sandbox.layers()
    assert layers["network"].startswith("isolated") and layers["user"].startswith("unprivileged")


def test_scratch_dir_is_private_and_gone_afterwards(sandbox):
    src = "import os\ndef f():\n    open('note.txt', 'w').write('x')\n    return [os.getcwd(), os.environ['HOME']]\n"
    cwd, home = run(sandbox, src)
    assert home == cwd and not os.path.exists(os.path.join(cwd, "note.txt"))  # never on the host
    assert run(sandbox, "import os\ndef f():\n    return os.listdir('.')\n") == []  # the next one starts empty


def test_each_session_starts_clean(sandbox):
    src = ("import builtins\ndef f():\n    seen = getattr(builtins, 'poison', False)\n"
           "    builtins.poison = True\n    return seen\n")
    assert run(sandbox, src) is False
    assert run(sandbox, src) is False


@pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root")
def test_the_view_is_an_allow_list(tmp_path):
    data, secret = tmp_path / "data", tmp_path / "secret"
    (data / "nested").mkdir(parents=True)
    secret.mkdir()
    (data / "table.txt").write_text("42")
    (secret / "answer.txt").write_text("41")
    checkout = Path(__file__).resolve().parents[2]
    sandbox = ProcessSandbox(allow=default_view(["numpy"]) + [str(data), str(data / "nested")])
    try:
        assert sandbox.layers()["filesystem"].startswith("a new root holding only")
        src = f"""
import os
def f():
    seen = {{p: os.path.exists(p) for p in ({str(data / 'table.txt')!r}, {str(secret / 'answer.txt')!r},
                                             {str(checkout / 'README.md')!r}, {str(checkout / 'runs')!r},
                                             "/srv", "/home", "/var", "/run", "/etc/passwd")}}
    try:
        open({str(data / 'new.txt')!r}, "w")
        seen["wrote"] = True
    except OSError:
        seen["wrote"] = False
    return [open({str(data / 'table.txt')!r}).read(), seen]
"""
        text, seen = run(sandbox, src)
        assert text == "42" and seen.pop(str(data / "table.txt")) is True
        assert not any(seen.values()), seen  # nothing else: no sibling, checkout, /srv, homes; no writes
    finally:
        sandbox.close()
