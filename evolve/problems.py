"""Problem discovery: built-in folders under `problems/` and plugins from the `evolve.problems` group.

A problem is a folder with `config.yaml` (its Hydra group file, validated against `ProblemConfig`),
`initial.py` (with EVOLVE-BLOCK markers), `evaluator.py` and `README.md`. A plugin package declares

    [project.entry-points."evolve.problems"]
    my_problem = "my_package.my_problem"

where `my_package.my_problem` is the package whose folder holds those files. Set
`EVOLVE_DISABLE_PLUGINS=1` to load only the built-in problems.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import logging
import os
import traceback
from pathlib import Path

from omegaconf import OmegaConf

from evolve.config import ProblemConfig
from evolve.errors import ConfigError, ProblemNotFound

__all__ = ["discover", "get_problem", "evaluator_class", "load_evaluator", "read_initial_program", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "evolve.problems"
_log = logging.getLogger(__name__)


def _load_folder(folder: Path, name: str | None = None) -> ProblemConfig:
    """Read one problem folder's config.yaml into a validated ProblemConfig."""
    raw = OmegaConf.load(folder / "config.yaml")
    node = OmegaConf.merge(OmegaConf.structured(ProblemConfig), raw)
    node.directory = str(folder.resolve())
    if name is not None and node.name != name:
        raise ConfigError(f"problem folder {folder} declares name={node.name!r} but is registered as {name!r}")
    return OmegaConf.to_object(node)  # type: ignore[return-value]


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
    if os.environ.get("EVOLVE_DISABLE_PLUGINS", "") not in ("", "0"):
        return found
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            module = ep.load()
            problem = _load_folder(Path(module.__file__).parent, ep.name)
        except Exception as exc:  # a broken plugin must not hide the others
            _log.warning("problem plugin %s could not be loaded: %s", ep.name, exc)
            continue
        _add(found, problem)
    return found


def get_problem(name: str) -> ProblemConfig:
    """Return the problem called `name`, or raise ProblemNotFound listing the available ones."""
    problems = discover()
    if name not in problems:
        raise ProblemNotFound(
            f"unknown problem {name!r}; available: {', '.join(sorted(problems)) or 'none'} "
            "(see `evolve problems`)"
        )
    return problems[name]


def evaluator_class(problem: ProblemConfig) -> type:
    """Import the problem's evaluator class (without building it)."""
    from evaluators import Evaluator

    module_name, _, attr = problem.evaluator.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
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


def load_evaluator(problem: ProblemConfig, **overrides: object):
    """Build the problem's evaluator with the problem's params, `overrides` replacing some of them."""
    cls = evaluator_class(problem)
    try:
        return cls(**{**dict(problem.params), **overrides})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"problem.params for {problem.name!r} do not fit {cls.__name__}: {exc}") from exc
    except Exception as exc:  # anything else the constructor raises: one line, not a worker's traceback
        raise ConfigError(f"problem {problem.name!r}: its evaluator {cls.__name__}() raised {_cause(exc)}; "
                          "fix the evaluator or its problem.params") from exc


def _cause(exc: BaseException) -> str:
    """`Type: message (file:line)` of an exception, where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    message = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {message}{where}" if message else f"{type(exc).__name__}{where}"


def read_initial_program(problem: ProblemConfig) -> str:
    """Return the source of the problem's initial program."""
    path = Path(problem.directory) / problem.initial
    if not path.is_file():
        raise ConfigError(f"problem {problem.name!r}: initial program {path} does not exist (problem.initial)")
    return path.read_text()
