"""Isolation layers applied inside a sandbox child before any candidate code runs (standard library,
plus pyseccomp when installed). Each function returns a line for the layer report; a layer the
kernel refuses is reported, never skipped in silence.
"""

import contextlib
import ctypes
import os
import resource

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC = 1, 2, 4, 8, 32, 4096, 16384
MS_PRIVATE = 1 << 18
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
_MNT_DETACH = 2
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine, 155)
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags):
    """unshare(2)."""
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def become_subreaper():
    """Orphaned descendants are reparented to this process (which reaps them) instead of PID 1."""
    _check(_libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(CHILD_SUBREAPER)")


def mount(source, target, fstype, flags, data=None):
    """mount(2)."""
    args = [a.encode() if isinstance(a, str) else None for a in (source, target, fstype)]
    _check(_libc.mount(args[0], args[1], args[2], ctypes.c_ulong(flags), data.encode() if data else None),
           f"mount {target}")


def _bind(fd, target, writable=False):
    """Bind what `fd` names at `target`, read-only unless `writable`, no setuid."""
    mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
    mount(None, target, None, MS_BIND | MS_REMOUNT | MS_NOSUID | (0 if writable else MS_RDONLY))


def build_root(allowed, devices, mount_points):
    """In a private mount namespace (the zygote's, once): make a new root that holds only the `allowed`
    paths, bound read-only at their own names (a symlink among them is copied as a link, so /lib64 ->
    usr/lib64 still resolves), the `devices`, and empty `mount_points`; switch to it and drop the old
    root, so nothing else of the host stays reachable. Returns what is in view, for the layer report."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    links, real = {}, set()
    for path in {os.path.abspath(p) for p in allowed if p}:
        if os.path.islink(path):
            links[path] = os.readlink(path)
        if os.path.exists(path):
            real.add(os.path.realpath(path))
    sources = []
    for path in sorted(real):  # a parent sorts before its children: bind the parent only
        if not any(path.startswith(q + "/") for q, _ in sources):
            sources.append((path, os.open(path, os.O_PATH)))  # opened now: /tmp is covered next
    nodes = [(d, os.open(d, os.O_PATH)) for d in devices if os.path.exists(d)]
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=700,size=1m")  # a private staging place
    root = "/tmp/root"
    os.mkdir(root)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m,nr_inodes=4096")
    for path, fd in sources + nodes:
        target = root + path
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "w").close()
        _bind(fd, target, writable=path in ("/dev/null", "/dev/zero", "/dev/full"))
        os.close(fd)
    for link, destination in links.items():
        if not os.path.lexists(root + link):
            os.makedirs(os.path.dirname(root + link), exist_ok=True)
            os.symlink(destination, root + link)
    for point in mount_points:
        os.makedirs(root + point, mode=0o755, exist_ok=True)
    os.chdir(root)
    _check(_libc.syscall(_SYS_PIVOT_ROOT, b".", b"."), "pivot_root")  # the old root now lies beneath
    _check(_libc.umount2(b".", _MNT_DETACH), "umount old root")
    os.chdir("/")
    mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return [p for p, _ in sources] + [f"{link} -> {dest}" for link, dest in links.items()] + [d for d, _ in nodes]


def session_mounts(scratch, scratch_mb, uid, gid, inodes=4096, shared=(), hidden=()):
    """In the session's own mount and PID namespaces: a fresh /proc, a new size-capped tmpfs on the scratch
    mount point (the same path for every session, empty every time), a fresh one on each `shared` path
    that exists (/dev/mqueue gets the session's own message queues), and the `hidden` mounts removed."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    owner = f",uid={uid},gid={gid}" if uid is not None else ""
    mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=700,size={scratch_mb}m,nr_inodes={inodes}{owner}")
    fresh = []
    for path in shared:
        if not os.path.isdir(path):
            continue
        if path == "/dev/mqueue":
            mount("mqueue", path, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        else:
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  f"mode=700,size={scratch_mb}m,nr_inodes={inodes}{owner}")
        fresh.append(path)
    for path in hidden:
        if os.path.ismount(path):
            _check(_libc.umount2(path.encode(), _MNT_DETACH), f"umount {path}")
    also = f"; fresh {', '.join(fresh)}" if fresh else ""
    return f"own /proc; scratch a fresh {scratch_mb} MiB tmpfs of at most {inodes} files{also}"


def rlimits(limits, per_user_processes=True):
    """CPU, address space, file size, open files, no core dumps; and the processes of the sandbox user,
    unless the session's processes are capped another way (a cgroup's or a container's pids limit):
    RLIMIT_NPROC counts every process of that user, so one session's fork bomb would starve the others."""
    mb = 1024 * 1024
    caps = [("RLIMIT_CPU", limits["cpu_seconds"]), ("RLIMIT_AS", limits["memory_mb"] * mb),
            ("RLIMIT_FSIZE", limits["file_size_mb"] * mb), ("RLIMIT_NOFILE", limits["open_files"]), ("RLIMIT_CORE", 0)]
    if per_user_processes:
        caps.append(("RLIMIT_NPROC", limits["max_processes"]))
    for name, value in caps:
        resource.setrlimit(getattr(resource, name), (value, value))
    processes = f"{limits['max_processes']} processes of the sandbox user" if per_user_processes else \
        f"{limits['max_processes']} processes in the session (pids limit)"
    return (f"cpu {limits['cpu_seconds']} s, address space {limits['memory_mb']} MiB per process, {processes}, "
            f"files {limits['file_size_mb']} MiB, {limits['open_files']} fds, no core dumps")


def drop_privileges(uid, gid):
    """Become `uid` with no supplementary groups, and forbid gaining privileges again."""
    if uid is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        note = f"unprivileged uid {uid}"
    elif os.geteuid() == 0:
        note = "NOT dropped: running as root (sandbox.user=null)"
    else:
        note = f"the invoking user (uid {os.getuid()}); no privileges to drop"
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    return note + "; no_new_privs"


# Landlock (syscalls 444-446 on every architecture that has them)
_LL_CREATE, _LL_ADD_RULE, _LL_RESTRICT = 444, 445, 446
_FS_ALL = (1 << 16) - 1  # every filesystem right up to ABI 5
_FS_READ = 1 | 4 | 8  # execute, read file, read dir
_NET_ALL = 1 | 2  # bind and connect TCP
_SCOPE_ALL = 1 | 2  # abstract unix sockets, signals


class _Ruleset(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]


def landlock(writable):
    """Reads and execution anywhere, writes only beneath `writable`, no TCP, no signals or abstract
    sockets outside the sandbox. Uses what the kernel's Landlock ABI offers."""
    abi = _libc.syscall(_LL_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return "NOT active: this kernel has no Landlock"
    fs = _FS_ALL if abi >= 5 else (1 << 13) - 1 if abi < 2 else (1 << 14) - 1 if abi < 3 else (1 << 15) - 1
    net = _NET_ALL if abi >= 4 else 0
    scoped = _SCOPE_ALL if abi >= 6 else 0
    attr = _Ruleset(fs, net, scoped)
    size = ctypes.sizeof(_Ruleset) if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = _libc.syscall(_LL_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return f"NOT active: landlock_create_ruleset failed ({os.strerror(ctypes.get_errno())})"
    try:
        for path, rights in (("/", _FS_READ), (writable, fs), ("/dev/null", 2 | 4)):  # 2: write file
            fd = os.open(path, os.O_PATH)
            rule = _PathBeneath(rights & fs, fd)
            _check(_libc.syscall(_LL_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0), f"landlock rule {path}")
            os.close(fd)
        _check(_libc.syscall(_LL_RESTRICT, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    extra = (", no TCP" if net else "") + (", no signals or abstract sockets outside" if scoped else "")
    return f"Landlock ABI {abi}: writes only in the scratch dir{extra}"


# What a candidate may call: everything else fails with EPERM (clone3 with ENOSYS, so that the C library
# falls back to clone, whose flags a filter can read). Python, numpy and the problems' packages need these;
# nothing here changes the system, another user's processes (but by signals, which the namespaces and a uid
# per session confine), mounts, namespaces, keys, the kernel's state or another process's memory.
ALLOWED_SYSCALLS = (
    # files and descriptors
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
    "open", "openat", "openat2", "creat", "close", "close_range", "lseek", "_llseek", "stat", "fstat", "lstat",
    "newfstatat", "fstatat64", "statx", "statfs", "fstatfs", "access", "faccessat", "faccessat2", "readlink",
    "readlinkat", "getdents", "getdents64", "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "rmdir", "unlink",
    "unlinkat", "rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat", "chmod", "fchmod",
    "fchmodat", "fchmodat2", "truncate", "ftruncate", "fallocate", "fsync", "fdatasync", "flock", "fcntl", "dup",
    "dup2", "dup3", "pipe", "pipe2", "ioctl", "utime", "utimes", "utimensat", "umask", "sendfile",
    "copy_file_range", "splice", "tee", "fadvise64", "getxattr", "lgetxattr", "fgetxattr", "listxattr",
    "llistxattr", "flistxattr", "memfd_create",
    # memory
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "msync", "mincore", "membarrier", "get_mempolicy",
    "mlock", "munlock",
    # processes and threads (clone only without namespace flags, below)
    "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "getpid", "getppid", "gettid",
    "getuid", "geteuid", "getgid", "getegid", "getgroups", "getresuid", "getresgid", "getpgid", "getpgrp",
    "getsid", "setsid", "setpgid", "set_tid_address", "set_robust_list", "get_robust_list", "rseq", "futex",
    "futex_waitv", "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam",
    "sched_getscheduler", "sched_get_priority_max", "sched_get_priority_min", "getpriority", "setpriority",
    "prctl", "arch_prctl", "getrlimit", "setrlimit", "prlimit64", "getrusage", "times", "uname", "sysinfo",
    "capget", "getcpu", "ioprio_get", "restart_syscall",
    # signals and timers
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigpending", "rt_sigtimedwait",
    "sigaltstack", "kill", "tkill", "tgkill", "pause", "alarm", "setitimer", "getitimer", "timer_create",
    "timer_settime", "timer_gettime", "timer_delete", "timer_getoverrun", "signalfd", "signalfd4", "pidfd_open",
    "pidfd_send_signal", "clock_gettime", "clock_getres", "clock_nanosleep", "gettimeofday", "time", "nanosleep",
    "timerfd_create", "timerfd_settime", "timerfd_gettime",
    # waiting on descriptors
    "select", "pselect6", "poll", "ppoll", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
    "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2",
    # sockets (the network namespace is empty)
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "sendto", "recvfrom", "sendmsg",
    "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "getsockname", "getpeername", "setsockopt", "getsockopt",
    # System V and POSIX IPC (the IPC namespace is the session's own)
    "shmget", "shmat", "shmdt", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop",
    "semctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
    "getrandom",
)
# clone(2) with any of these makes namespaces (a user namespace brings full capabilities inside it)
_NAMESPACE_FLAGS = 0x00000080 | 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | \
    0x40000000  # TIME, NS, CGROUP, UTS, IPC, USER, PID, NET


def seccomp_filter():
    """Build (once, in the zygote: compiling costs ~15 ms) the allow-list filter `seccomp` loads in each child.

    Returns (filter, names allowed on this architecture), or (None, why) when pyseccomp is missing."""
    try:
        import pyseccomp
    except ImportError:
        return None, "pyseccomp is not installed"
    except Exception as exc:  # noqa: BLE001 (e.g. it cannot find libseccomp)
        return None, f"pyseccomp unusable: {exc}"
    import errno

    flt = pyseccomp.SyscallFilter(defaction=pyseccomp.ERRNO(errno.EPERM))
    with contextlib.suppress(RuntimeError, ValueError, OSError, AttributeError):
        flt.set_attr(pyseccomp.Attr.CTL_OPTIMIZE, 2)  # a binary tree: a syscall costs ~8 checks, not ~225
    allowed = []
    for name in ALLOWED_SYSCALLS:
        try:
            if pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) < 0:
                continue  # not a syscall on this architecture (a negative number is a name libseccomp knows)
            flt.add_rule(pyseccomp.ALLOW, name)
            allowed.append(name)
        except (RuntimeError, ValueError, OSError):
            pass  # not a syscall on this architecture
    # clone's flags are its first argument on x86-64 and arm64 alike; clone3 passes them in memory a
    # filter cannot read, so it answers ENOSYS and the C library falls back to clone
    flt.add_rule(pyseccomp.ALLOW, "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, _NAMESPACE_FLAGS, 0))
    allowed.append("clone")
    with contextlib.suppress(RuntimeError, ValueError, OSError):
        flt.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    return flt, allowed


def seccomp(prepared=None):
    """Allow only the syscalls a candidate needs (`ALLOWED_SYSCALLS`); every other one fails with EPERM."""
    flt, allowed = prepared or seccomp_filter()
    if flt is None:
        return f"NOT active: {allowed}"
    flt.load()
    return (f"allow-list of {len(allowed)} syscalls, every other refused (EPERM): no ptrace, mount, unshare, "
            "clone with namespace flags, bpf, keyctl, io_uring, ... (`evolve doctor` lists them)")


def hide_command_line(name=b"evolve-sandbox"):
    """Overwrite this process's argv in place (what /proc/PID/cmdline shows, inherited by every fork), so
    that no session sees the fork server's paths or configuration in its own or any process's command line."""
    with open("/proc/self/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    start, end = int(fields[45]), int(fields[46])  # arg_start and arg_end (fields 48 and 49 of proc(5))
    if 0 < start < end:
        ctypes.memset(start, 0, end - start)
        ctypes.memmove(start, name, min(len(name), end - start - 1))


def close_inherited(keep):
    """Close every descriptor but `keep`: nothing the candidate did not need may reach it (a kill pipe,
    a socket, another session's pipe)."""
    keep = sorted(set(keep))
    start = 0
    for fd in keep + [resource.getrlimit(resource.RLIMIT_NOFILE)[0]]:
        if start < fd:  # closerange(0, 0) closes everything on CPython 3.11 (close_range(0, -1))
            os.closerange(start, fd)
        start = fd + 1


def oom_first():
    """Make the candidate's processes the out-of-memory killer's first choice, before the fork server
    and the session's leader (raising one's own score needs no privilege)."""
    with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as f:
        f.write("1000")
