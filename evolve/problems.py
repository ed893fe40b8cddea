"""Problem discovery: built-in folders under `problems/` and plugins from the `evolve.problems` group.

A problem is a folder with `config.yaml` (its Hydra group file, validated against `ProblemConfig`),
`initial.py` (with EVOLVE-BLOCK markers), `evaluator.py` and `README.md`. A plugin package declares

    [project.entry-points."evolve.problems"]
    my_problem = "my_package.my_problem"

where `my_package.my_problem` is the package whose folder holds those files. Set
`EVOLVE_DISABLE_PLUGINS=1` to load only the built-in problems (and those on the search path): see
`evolve.plugins`, which finds the plugins of every group.

Besides, `EVOLVE_PROBLEM_PATH` (folders separated by `:`) names folders that are problems or hold
problem folders, and `problem=path/to/folder` (`resolve`) names one folder directly. An evaluator
whose `module` in `module:Class` is a file of the problem folder (`evaluator.py`) is loaded from that
file, so a folder need not be an importable package.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
import logging
import os
import sys
import traceback
from pathlib import Path

from omegaconf import OmegaConf

from evolve import plugins
from evolve.config import ProblemConfig
from evolve.errors import ConfigError, ProblemNotFound

__all__ = [
    "ENTRY_POINT_GROUP",
    "PATH_VARIABLE",
    "discover",
    "entrypoint_of",
    "evaluator_class",
    "get_problem",
    "load_evaluator",
    "pickle_evaluator",
    "read_initial_program",
    "resolve",
    "search_path",
]

ENTRY_POINT_GROUP = plugins.PROBLEMS
PATH_VARIABLE = "EVOLVE_PROBLEM_PATH"
OPENEVOLVE = "openevolve:"  # `evaluator: "openevolve:evaluator.py"`: an OpenEvolve evaluator file
SHINKA = "shinka:"  # `evaluator: "shinka:evaluate.py"`: a ShinkaEvolve evaluate.py
_ADAPTERS = (OPENEVOLVE, SHINKA)
_log = logging.getLogger(__name__)
_folders: dict[str, ProblemConfig] = {}  # problems named by folder (`problem=path/to/folder`)


def _load_folder(folder: Path, name: str | None = None) -> ProblemConfig:
    """Read one problem folder's config.yaml into a validated ProblemConfig."""
    raw = OmegaConf.load(folder / "config.yaml")
    node = OmegaConf.merge(OmegaConf.structured(ProblemConfig), raw)
    node.directory = str(folder.resolve())
    if node.direction not in ("maximize", "minimize"):
        raise ConfigError(f"problem folder {folder}: direction={node.direction!r}; use maximize or minimize")
    if node.repeats < 1:
        raise ConfigError(f"problem folder {folder}: repeats={node.repeats}; use 1 (a deterministic evaluator) "
                          "or more (scorings of each would-be best, for a problem noisy by nature)")
    if node.metric and not str(node.evaluator).startswith(_ADAPTERS):
        raise ConfigError(f"problem folder {folder}: metric={node.metric!r} names the score of an OpenEvolve or "
                          "ShinkaEvolve evaluator (evaluator: \"openevolve:...\" or \"shinka:...\"); a native "
                          "evaluator returns Score.value: remove metric")
    if name is not None and node.name != name:
        raise ConfigError(f"problem folder {folder} declares name={node.name!r} but is registered as {name!r}")
    return OmegaConf.to_object(node)  # type: ignore[return-value]


def _foreign_folder(folder: Path) -> ProblemConfig | None:
    """An OpenEvolve example folder (evaluator.py, initial_program.py and OpenEvolve's own config.yaml or
    none) or a ShinkaEvolve one (evaluate.py, initial.py, no config.yaml) as a problem named
    `openevolve_<folder>` or `shinka_<folder>`, so it runs from its project's checkout; None for others."""
    raw = OmegaConf.load(folder / "config.yaml") if (folder / "config.yaml").is_file() else None
    if raw is not None and ("name" in raw or isinstance(raw.get("evaluator"), str)):
        return None  # evolve's own config.yaml (OpenEvolve's names no problem and nests `evaluator:`)
    settings = raw.get("evaluator") if raw is not None else None
    params: dict = {}
    if raw is None and (folder / "evaluate.py").is_file() and (folder / "initial.py").is_file():
        kind, evaluator, initial = "shinka", "shinka:evaluate.py", "initial.py"
    elif (folder / "evaluator.py").is_file() and (folder / "initial_program.py").is_file():
        kind, evaluator, initial = "openevolve", "openevolve:evaluator.py", "initial_program.py"
        if settings is not None and settings.get("cascade_evaluation", True) and settings.get("cascade_thresholds"):
            params["cascade_thresholds"] = list(settings.cascade_thresholds)
    else:
        return None
    prompt = raw.get("prompt") if raw is not None else None
    node = OmegaConf.merge(OmegaConf.structured(ProblemConfig), {
        "name": f"{kind}_{folder.resolve().name}", "evaluator": evaluator, "initial": initial, "params": params,
        "description": str(prompt.get("system_message") or "")[:2000] if prompt is not None else "",
        "packages": _imported_packages(folder / initial)})
    node.directory = str(folder.resolve())
    return OmegaConf.to_object(node)  # type: ignore[return-value]


def _imported_packages(program: Path) -> list[str]:
    """numpy and the installed third-party packages the program imports at its top level."""
    from evaluators.parsing import parse

    try:
        tree = parse(program.read_text(), str(program))
    except (OSError, SyntaxError, ValueError):
        return ["numpy"]
    names = {a.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for a in node.names}
    names |= {node.module.split(".")[0] for node in tree.body
              if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    return ["numpy"] + sorted(n for n in names - {"numpy"} if n not in sys.stdlib_module_names
                              and importlib.util.find_spec(n) is not None)


def _add(found: dict[str, ProblemConfig], problem: ProblemConfig) -> None:
    """Add `problem`; a name already taken is an error naming both folders (never a silent replacement)."""
    other = found.get(problem.name)
    if other is not None and other.directory != problem.directory:
        raise ConfigError(f"two problems are named {problem.name!r}: {other.directory} and {problem.directory}; "
                          "rename one (the `name:` in its config.yaml, or its entry point)")
    found[problem.name] = problem


@functools.cache
def discover() -> dict[str, ProblemConfig]:
    """Return every available problem by name: built-ins first, then entry-point plugins.

    Names are unique: two folders or plugins declaring the same name raise `ConfigError`.
    """
    import problems as builtin

    found: dict[str, ProblemConfig] = {}
    for folder in sorted(Path(builtin.__file__).parent.iterdir()):
        if (folder / "config.yaml").is_file():
            _add(found, _load_folder(folder))
    for entry in search_path():
        folders = [entry] if (entry / "config.yaml").is_file() else sorted(entry.iterdir()) if entry.is_dir() else []
        for folder in folders:
            if (folder / "config.yaml").is_file():
                _add(found, _load_folder(folder))
    for problem in _folders.values():
        _add(found, problem)
    for ep in plugins.entry_points(ENTRY_POINT_GROUP):
        try:
            module = ep.load()
            problem = _load_folder(Path(module.__file__).parent, ep.name)
        except Exception as exc:  # noqa: BLE001 (a broken plugin must not hide the others)
            _log.warning("problem plugin %s could not be loaded: %s", ep.name, exc)
            continue
        _add(found, problem)
    return found


def search_path() -> list[Path]:
    """The folders named by `EVOLVE_PROBLEM_PATH` (separated by `:`), in order."""
    return [Path(p).expanduser() for p in os.environ.get(PATH_VARIABLE, "").split(os.pathsep) if p]


def is_folder_spec(spec: str) -> bool:
    """Whether `problem=spec` names a folder rather than a problem's name."""
    return "/" in spec or spec.startswith(".") or (Path(spec) / "config.yaml").is_file()


def resolve(spec: str | os.PathLike) -> ProblemConfig:
    """The problem `spec` names: a folder holding config.yaml (registered so Hydra and `get_problem` see
    it under its name), or a problem's name."""
    if isinstance(spec, os.PathLike) or is_folder_spec(str(spec)):
        folder = Path(spec).expanduser()
        problem = _foreign_folder(folder)
        if problem is None and not (folder / "config.yaml").is_file():
            raise ProblemNotFound(f"problem={spec}: {folder} holds no config.yaml (a problem folder holds "
                                  "config.yaml, initial.py, evaluator.py and README.md; an OpenEvolve example "
                                  "evaluator.py and initial_program.py, a ShinkaEvolve one evaluate.py and initial.py)")
        problem = problem or _load_folder(folder)
        known = discover().get(problem.name)
        if known is None or known.directory != problem.directory:
            _add(discover(), problem)  # into the cached problems; one of the same name is an error naming both
            _folders[problem.name] = problem  # for the next discover() after its cache is cleared
        return problem
    return get_problem(str(spec))


def get_problem(name: str) -> ProblemConfig:
    """Return the problem called `name`, or raise ProblemNotFound listing the available ones."""
    problems = discover()
    if name not in problems:
        import difflib

        close = difflib.get_close_matches(name, problems, n=1)
        raise ProblemNotFound(
            f"unknown problem {name!r}{f' (did you mean {close[0]}?)' if close else ''}; available: "
            f"{', '.join(sorted(problems)) or 'none'} (see `evolve problems`), or a problem folder: "
            "problem=./path/to/folder (`evolve new-problem NAME` writes one)"
        )
    return problems[name]


def pickle_evaluator(evaluator: object) -> str:
    """An evaluator class or instance as text for `problem.evaluator_object`, pickled by value when its
    module cannot be imported elsewhere (`__main__`, a notebook), so it reaches Ray's workers."""
    import base64

    from ray import cloudpickle

    module = sys.modules.get(getattr(evaluator if isinstance(evaluator, type) else type(evaluator), "__module__", ""))
    by_value = module is not None and module.__name__ != "__main__" and not _importable(module)
    if by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        return base64.b64encode(cloudpickle.dumps(evaluator)).decode()
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)


def _importable(module) -> bool:
    spec = getattr(module, "__spec__", None)
    return spec is not None and spec.origin is not None and not spec.origin.startswith("<") \
        and not module.__name__.startswith("_evolve_problem_")  # loaded from a folder's file: not importable by name


def _unpickle(text: str) -> object:
    import base64

    from ray import cloudpickle

    return cloudpickle.loads(base64.b64decode(text))


def _import_module(problem: ProblemConfig, module_name: str):
    """`module_name` from the problem folder's own file when it has one (`evaluator:Class` beside
    config.yaml), else by import (`package.module:Class` of a built-in problem or a plugin)."""
    folder = Path(problem.directory) if problem.directory else None
    path = folder / (module_name.replace(".", "/") + ".py") if folder else None
    if path is None or not path.is_file():
        return importlib.import_module(module_name)
    import hashlib

    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    unique = f"_evolve_problem_{problem.name}_{module_name.replace('.', '_')}_{digest}"
    if unique in sys.modules:
        return sys.modules[unique]
    if str(folder) not in sys.path:
        sys.path.append(str(folder))  # its own helper modules, imported by name beside it
    spec = importlib.util.spec_from_file_location(unique, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[unique]
        raise
    return module


def evaluator_class(problem: ProblemConfig) -> type:
    """Import the problem's evaluator class (without building it)."""
    from evaluators import Evaluator

    if problem.evaluator_object:
        obj = _unpickle(problem.evaluator_object)
        cls = obj if isinstance(obj, type) else type(obj)
        if not (isinstance(cls, type) and issubclass(cls, Evaluator)):
            raise ConfigError(f"the evaluator given for {problem.name!r} is not an evaluators.Evaluator subclass")
        return cls
    if problem.evaluator.startswith(OPENEVOLVE):
        from evaluators.openevolve import OpenEvolveEvaluator

        return OpenEvolveEvaluator
    if problem.evaluator.startswith(SHINKA):
        from evaluators.shinka import ShinkaEvaluator

        return ShinkaEvaluator
    module_name, _, attr = problem.evaluator.partition(":")
    try:
        cls = getattr(_import_module(problem, module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"problem.evaluator={problem.evaluator!r} cannot be imported ({exc}); "
            "use the form 'package.module:ClassName'"
        ) from exc
    except Exception as exc:  # the module itself raised on import
        raise ConfigError(f"problem {problem.name!r}: importing {module_name} raised {_cause(exc)}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Evaluator)):
        raise ConfigError(f"problem.evaluator={problem.evaluator!r} is not an evaluators.Evaluator subclass")
    return cls


def shown_metrics_of(problem: ProblemConfig) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """Return the evaluator's `prompt_metrics` (None: its default) and its `timing_metrics`."""
    found: object = None
    if problem.evaluator_object:
        found = _unpickle(problem.evaluator_object)
    source = found if found is not None else evaluator_class(problem)
    patterns = getattr(source, "prompt_metrics", None)
    return (tuple(patterns) if patterns is not None else None), tuple(getattr(source, "timing_metrics", ()) or ())


def entrypoint_of(problem: ProblemConfig) -> str | None:
    """Return the function a candidate of `problem` must define, or None where its evaluator names none."""
    if problem.evaluator_object:
        obj = _unpickle(problem.evaluator_object)
        if not isinstance(obj, type):
            return getattr(obj, "entrypoint", None) or None
    cls = evaluator_class(problem)
    if problem.evaluator.startswith(_ADAPTERS):  # the adapter is told its entrypoint by the problem's params
        return problem.params.get("entrypoint") or None
    return getattr(cls, "entrypoint", None) or None


def load_evaluator(problem: ProblemConfig, *, run_seed: int = 0, **overrides: object):
    """Build the problem's evaluator with the problem's params, `overrides` replacing some of them, for
    the run seeded `run_seed` (`Evaluator.run_seed`); a minimised problem's evaluator comes with its
    values negated (the engine maximises)."""
    evaluator = build_evaluator(problem, run_seed=run_seed, **overrides)
    if problem.direction == "minimize":
        from evaluators.direction import negated

        return negated(evaluator)
    return evaluator


def build_evaluator(problem: ProblemConfig, *, run_seed: int = 0, **overrides: object):
    """The problem's evaluator as its author wrote it (natural values), built with the problem's params,
    its `run_seed` set (the campaign's `seed`: its random views are fixed per run)."""
    evaluator = _construct(problem, **overrides)
    evaluator.run_seed = int(run_seed)
    return evaluator


def _construct(problem: ProblemConfig, **overrides: object):
    from evaluators.program_file import UnsupportedEvaluator

    cls = evaluator_class(problem)
    if problem.evaluator_object:
        obj = _unpickle(problem.evaluator_object)
        if not isinstance(obj, type):
            return obj  # an instance: built by the caller already
    for prefix in _ADAPTERS:  # an OpenEvolve or ShinkaEvolve evaluator file of the problem folder
        if problem.evaluator.startswith(prefix):
            overrides = {"path": str(Path(problem.directory) / problem.evaluator[len(prefix):]),
                         **({"metric": problem.metric} if problem.metric else {}), **overrides}
    params = {**dict(problem.params), **overrides}
    try:
        inspect.signature(cls).bind(**params)
    except TypeError as exc:  # a param it does not take, or one it needs and was not given
        raise ConfigError(f"problem.params for {problem.name!r} do not fit {cls.__name__}: {exc}") from exc
    except ValueError:  # no signature to read: the constructor's own error says it
        pass
    try:
        return cls(**params)
    except UnsupportedEvaluator as exc:  # one line naming the style and the fix
        raise ConfigError(f"problem {problem.name!r}: {exc}") from exc
    except Exception as exc:  # whatever the constructor raises: one line, not a worker's traceback
        raise ConfigError(f"problem {problem.name!r}: its evaluator {cls.__name__}() raised "
                          f"{_cause(exc, _source_folder(cls))}; fix the evaluator or its problem.params") from exc


def _source_folder(cls: type) -> Path | None:
    """The folder of the file that defines `cls`, if there is one."""
    try:
        return Path(inspect.getfile(cls)).resolve().parent
    except (TypeError, OSError):
        return None


def _cause(exc: BaseException, folder: Path | None = None) -> str:
    """`Type: message (file:line)` of an exception: where it was raised, or its last frame in a file of
    `folder` (the evaluator's own code, rather than the library it called)."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if folder is not None and Path(f.filename).resolve().parent == folder]
    frames = own or frames
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    message = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {message}{where}" if message else f"{type(exc).__name__}{where}"


def read_initial_program(problem: ProblemConfig) -> str:
    """Return the source of the problem's initial program."""
    path = Path(problem.directory) / problem.initial
    if not path.is_file():
        raise ConfigError(f"problem {problem.name!r}: initial program {path} does not exist (problem.initial)")
    return path.read_text()
