"""The candidate as a file on the trusted side, for evaluators written against a `program_path`.

OpenEvolve and ShinkaEvolve evaluators take the path of the program and load it with `importlib`. The
adapters (`evaluators.openevolve`, `evaluators.shinka`) write the candidate to a fresh file whose name is
unique (`program_<hex>.py`) and register it for the stage that runs: while it is registered, loading
that file by any of the usual routes, from any module of the evaluator (its helpers, functions, the
`shinka` package),

    importlib.util.spec_from_file_location(name, program_path)   (+ module_from_spec + exec_module)
    importlib.import_module(stem) / __import__(stem) / import stem   (its folder on sys.path)

gives a module proxy whose functions call into the candidate's sandbox session (positional and keyword
arguments as JSON; numpy arrays go as lists and come back as arrays, tuples as tuples). The file's
first line (after a docstring and `from __future__` imports) is a guard: run any other way (a
subprocess, `runpy`, `exec` of its text, a loader of its own) it records that it fired and raises, so
the candidate never runs outside the sandbox and the adapter knows, whatever the evaluator then returns.

`unsupported_style(path)` reads an evaluator (and the modules of its own folder it imports) without
running it and returns the one line that says why its style cannot work here, or None.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import itertools
import os
import re
import shutil
import sys
import tempfile
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluators.parsing import parse
from sandboxes import Array, Session

__all__ = ["GUARD_REASON", "ProgramFile", "UnsupportedEvaluator", "load_evaluator_module", "program_file",
           "timing_names", "unsupported_style"]

GUARD_REASON = ("the evaluator ran the program outside the sandbox (a subprocess, runpy, exec of its text or "
                "a loader of its own); load it with importlib.util.spec_from_file_location + exec_module, "
                "importlib.import_module or __import__ so that its functions run in the sandbox")


class UnsupportedEvaluator(ValueError):
    """An evaluator whose style cannot run its candidates in the sandbox; the message names the style and fix."""


def _names(code: str) -> set[str]:
    """Names the program binds at top level (its callable surface, read without running it)."""
    try:
        tree = parse(code)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _outgoing(value: Any) -> Any:
    """Arguments as JSON data: numpy arrays and scalars as lists and numbers."""
    if isinstance(value, (list, tuple)):
        return [_outgoing(v) for v in value]
    if isinstance(value, dict):
        return {k: _outgoing(v) for k, v in value.items()}
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    return value


def _incoming(value: Any) -> Any:
    """A result with the candidate's numpy arrays as arrays again (lists where numpy is not loaded)."""
    if isinstance(value, Array):  # numpy is loaded wherever an evaluator uses arrays (this layer imports none)
        numpy = sys.modules.get("numpy")
        return numpy.asarray(value) if numpy is not None else list(value)
    if isinstance(value, tuple):
        return tuple(_incoming(v) for v in value)
    if isinstance(value, list):
        return [_incoming(v) for v in value]
    if isinstance(value, dict):
        return {k: _incoming(v) for k, v in value.items()}
    return value


class _Program(types.ModuleType):
    """The candidate as the evaluator sees it: each function a call into the sandbox session."""

    def __init__(self, name: str, path: str, session: Session, names: set[str]) -> None:
        super().__init__(name)
        self.__file__ = path
        session.keep_tuples = True  # `centers, radii, total = program.run_packing()`, as in OpenEvolve
        self._session, self._names = session, names

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("__") or name not in self.__dict__.get("_names", ()):
            raise AttributeError(f"the program defines no {name!r}")
        session = self.__dict__["_session"]

        def remote(*args: Any, **kwargs: Any) -> Any:
            return _incoming(session.call_kwargs(name, _outgoing(args), _outgoing(kwargs)))

        remote.__name__ = name
        return remote


@dataclass
class ProgramFile:
    """One registered candidate file: its path, the session its functions call, whether its guard fired."""

    path: str
    session: Session
    names: set[str]
    marker: str

    @property
    def stem(self) -> str:
        return Path(self.path).stem

    @property
    def fired(self) -> bool:
        """Whether the file was run outside the sandbox (its guard line ran)."""
        return os.path.exists(self.marker)

    def module(self, name: str) -> _Program:
        return _Program(name, self.path, self.session, self.names)


_active: dict[str, ProgramFile] = {}  # by real path
_stems: dict[str, ProgramFile] = {}
_lock = threading.Lock()
_original_spec = getattr(importlib.util.spec_from_file_location, "evolve_original",  # the hook, after a reload
                         importlib.util.spec_from_file_location)


class _Loader(importlib.abc.Loader):
    def __init__(self, program: ProgramFile) -> None:
        self.program = program

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self.program.module(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        pass  # the program was loaded into the session already


def _spec_from_file_location(name: str, location: Any = None, *args: Any,
                             **kwargs: Any) -> importlib.machinery.ModuleSpec | None:
    """`importlib.util.spec_from_file_location`, a registered candidate file's spec loading its proxy."""
    if location is not None and _active:
        program = _active.get(os.path.realpath(os.fspath(location)))
        if program is not None:
            return importlib.machinery.ModuleSpec(name, _Loader(program), origin=program.path)
    return _original_spec(name, location, *args, **kwargs)


class _Finder(importlib.abc.MetaPathFinder):
    """`import stem`, `__import__(stem)`, `importlib.import_module(stem)` of a registered candidate file."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        program = _stems.get(name) if path is None else None
        if program is None:
            return None
        return importlib.machinery.ModuleSpec(name, _Loader(program), origin=program.path)


_spec_from_file_location.evolve_original = _original_spec  # type: ignore[attr-defined]
_FINDER = _Finder()


def install() -> None:
    """Put the hooks in place (once per process; they pass everything but registered files through)."""
    with _lock:
        importlib.util.spec_from_file_location = _spec_from_file_location
        if _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)


def _guarded(code: str, marker: str) -> str:
    """`code` with the guard line first, after its docstring and `from __future__` imports (which must lead)."""
    guard = f"open({marker!r}, 'w').close(); raise RuntimeError({('evolve: ' + GUARD_REASON)!r})  # noqa\n"
    try:
        body = parse(code).body
    except SyntaxError:
        return guard + code
    lead = 0
    for index, node in enumerate(body):
        docstring = index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
            and isinstance(node.value.value, str)
        if not (docstring or (isinstance(node, ast.ImportFrom) and node.module == "__future__")):
            break
        lead = node.end_lineno or lead
    lines = code.splitlines(keepends=True)
    head = "".join(lines[:lead])
    return head + ("\n" if head and not head.endswith("\n") else "") + guard + "".join(lines[lead:])


@contextmanager
def program_file(session: Session, code: str) -> Iterator[ProgramFile]:
    """Write `code` (after the guard line) to a fresh file and register it while the block runs."""
    install()
    folder = tempfile.mkdtemp(prefix="evolve-program-")
    digest = hashlib.sha1(code.encode()).hexdigest()[:12]  # the same program, the same name (scores may show it)
    with _lock:
        stem = next(name for n in itertools.count() if (name := f"program_{digest}" + (f"_{n}" if n else ""))
                    not in _stems)
        path = os.path.join(folder, f"{stem}.py")
        program = ProgramFile(path, session, _names(code), os.path.join(folder, "guard-fired"))
        _active[os.path.realpath(path)] = program
        _stems[stem] = program
    with open(path, "w") as f:
        f.write(_guarded(code, program.marker))
    try:
        yield program
    finally:
        with _lock:
            _active.pop(os.path.realpath(path), None)
            _stems.pop(program.stem, None)
        for name, module in list(sys.modules.items()):
            if isinstance(module, _Program) and module.__file__ == path:
                del sys.modules[name]
        if folder in sys.path:
            sys.path.remove(folder)
        shutil.rmtree(folder, ignore_errors=True)


# -- styles that cannot work ------------------------------------------------------------------------

_LOAD_WITH = "load the program with importlib.util.spec_from_file_location(...) and call its functions"
_PROCESS = ("runs the program in a process of its own ({call}): evolve runs candidates only in its sandbox; "
            f"{_LOAD_WITH} instead (they run in the sandbox, under the problem's limits)")
_STYLES: dict[str, str] = {
    **{f"subprocess.{n}": _PROCESS for n in ("run", "Popen", "call", "check_call", "check_output", "getoutput",
                                             "getstatusoutput")},
    **{f"os.{n}": _PROCESS for n in ("system", "popen", "execv", "execve", "execl", "execlp", "execvp", "spawnv",
                                     "spawnl", "posix_spawn", "fork")},
    "asyncio.create_subprocess_exec": _PROCESS, "asyncio.create_subprocess_shell": _PROCESS,
    "multiprocessing.Process": _PROCESS, "multiprocessing.Pool": _PROCESS,
    "concurrent.futures.ProcessPoolExecutor": _PROCESS,
    "runpy.run_path": "runs the program with runpy ({call}): candidate code never runs in the evaluator; "
                      f"{_LOAD_WITH} instead",
    "runpy.run_module": "runs the program with runpy ({call}): candidate code never runs in the evaluator; "
                        f"{_LOAD_WITH} instead",
    "exec": "executes code it reads ({call}): candidate code never runs in the evaluator; "
            f"{_LOAD_WITH} instead",
    "compile": "compiles code it reads ({call}): candidate code never runs in the evaluator; "
               f"{_LOAD_WITH} instead",
    "signal.alarm": "times the program with {call}: evaluators run outside the main thread and the sandbox "
                    "times candidates; remove the alarm and set limits.call_timeout in config.yaml",
    "signal.setitimer": "times the program with {call}: evaluators run outside the main thread and the sandbox "
                        "times candidates; remove the timer and set limits.call_timeout in config.yaml",
}


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """`a.b.c` of a call's function, its first name resolved through the module's imports."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def _own_modules(tree: ast.Module, folder: Path) -> list[Path]:
    """The modules of the evaluator's own folder that it imports (its helpers)."""
    found = []
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
        for name in names:
            path = folder / (name.replace(".", "/") + ".py")
            if path.is_file():
                found.append(path)
    return found


_TIMING = re.compile(r"(^|_)(time|times|seconds|secs|duration|elapsed|runtime)(_|$)", re.IGNORECASE)


def _own_files(path: str | os.PathLike[str]) -> Iterator[tuple[Path, ast.Module]]:
    """The evaluator's file and the modules of its own folder it imports, parsed (unreadable ones left out)."""
    todo, seen = [Path(path)], set()
    while todo:
        file = todo.pop()
        if file.resolve() in seen:
            continue
        seen.add(file.resolve())
        try:
            tree = parse(file.read_text(), str(file))
        except (OSError, SyntaxError, ValueError):
            continue  # loading it says what is wrong
        yield file, tree
        todo += _own_modules(tree, Path(path).parent)


def timing_names(path: str | os.PathLike[str], stages: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The metric names in the evaluator's text that time the machine (`eval_time`, `execution_time_mean`,
    ...), each also as `stage.name` for `stages`: two scorings of one program may differ in these alone."""
    names = sorted({node.value for _, tree in _own_files(path) for node in ast.walk(tree)
                    if isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and len(node.value) < 60 and node.value.isidentifier() and _TIMING.search(node.value)})
    return tuple(names) + tuple(f"{stage}.{name}" for stage in stages for name in names)


def unsupported_style(path: str | os.PathLike[str]) -> str | None:
    """The one line that says why the evaluator at `path` cannot run its candidates in the sandbox, or None."""
    for file, tree in _own_files(path):
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                aliases.update({(a.asname or a.name).split(".")[0]: (a.name if a.asname else a.name.split(".")[0])
                                for a in node.names})
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _dotted(node.func, aliases)
            if name in ("exec", "compile") and node.args and isinstance(node.args[0], ast.Constant):
                continue  # a literal is the evaluator's own code
            style = _STYLES.get(name or "")
            if style is not None:
                return f"{file.name}:{node.lineno} {style.format(call=name)}"
    return None


def load_evaluator_module(path: Path, project: str) -> types.ModuleType:
    """Import another project's evaluator file as a module of its own (its folder on sys.path, for its
    helpers), after refusing an unsupported style in one line."""
    if not path.is_file():
        raise ValueError(f"{project} evaluator {path} does not exist")
    style = unsupported_style(path)
    if style is not None:
        raise UnsupportedEvaluator(style)
    folder = str(path.parent.resolve())
    if folder not in sys.path:
        sys.path.append(folder)
    name = f"_{project.lower()}_evaluator_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
