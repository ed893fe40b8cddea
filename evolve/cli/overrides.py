"""Check `evolve run`, `check` and `resume` overrides against the config schema before Hydra sees them.

Each override is parsed with Hydra's own parser, its dotted key walked through the dataclasses of
`evolve.config` (a dict-typed field such as `problem.params` takes any sub-key; lists are not checked),
its value checked with OmegaConf's own conversions, and a group choice (`problem=`, `llm=`, ...) checked
against the available options. Whatever is wrong becomes one `ConfigError` line: the closest keys for a
misspelled one, the options for an unknown choice, the expected type for a wrong value.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from collections.abc import Iterator
from importlib import resources
from typing import Any

from evolve.config import Config
from evolve.errors import ConfigError

__all__ = ["check_overrides", "hydra_overrides"]

GROUPS = ("problem", "llm", "sandbox", "database", "ray")  # config groups: `GROUP=OPTION` picks a file
_CUSTOM_SEARCH = ("config_path", "config_dir", "config_name")  # flags that may bring groups of a user's own
_KEYS_HINT = "`evolve run --cfg job` prints every key"
_ANY = object()  # a type that accepts anything below it (Any, a list)


def hydra_overrides(argv: list[str]) -> list[str] | None:
    """The overrides among `argv`, Hydra's flags left out (as Hydra's own argument parser reads them); None
    when a flag makes the schema or the groups another config's (`--config-dir` and the like)."""
    from hydra._internal.utils import get_args_parser

    try:
        args, _ = get_args_parser().parse_known_args(argv)
    except SystemExit:  # a malformed flag: Hydra says so itself
        return None
    if any(getattr(args, flag, None) for flag in _CUSTOM_SEARCH) or \
            any(o.lstrip("+~").startswith("hydra.searchpath") for o in args.overrides):
        return None
    return list(args.overrides)


def check_overrides(overrides: list[str], *, groups: bool = True) -> None:
    """Raise `ConfigError` (one line) for the first override that does not fit the schema.

    `groups`: whether `GROUP=OPTION` picks a group option (`evolve run`, `check`), or is refused (`resume`
    changes the keys of a stored config; it cannot pick another group file).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            parsed.append((text, parser.parse_override(text)))
        except HydraException as exc:
            raise ConfigError(f"cannot read the override {text!r}: {' '.join(str(exc).split())[:200]}; "
                              "the form is KEY=VALUE, e.g. budget.iterations=200") from None
    problem = _chosen_problem([o for _, o in parsed]) if groups else None
    for text, override in parsed:
        key = override.key_or_group
        if key == "hydra" or key.startswith(("hydra.", "hydra/")) or override.package is not None:
            continue  # Hydra's own settings, and package moves, are Hydra's to check
        if not groups and (override.type is not OverrideType.CHANGE or override.is_sweep_override()):
            raise ConfigError(f"{text}: `evolve resume` takes KEY=VALUE changes of the stored config only")
        if key in GROUPS and override.type is not OverrideType.DEL:
            if not groups:
                raise ConfigError(f"{text}: `evolve resume` cannot pick another {key} group file; change its keys "
                                  f"instead ({key}.KEY=VALUE), or start a new campaign with `evolve run {text}`")
            for value in _values(override):
                _check_choice(key, value)
            continue
        kind = _walk(key, text)
        if override.type is OverrideType.DEL:
            continue
        if problem is not None and override.type is OverrideType.CHANGE:
            _check_problem_key(problem, key, text)
        for value in _values(override):
            _check_value(key, kind, value, text)


def _values(override) -> Iterator[Any]:
    """The override's value, or each value of a discrete sweep (`-m seed=0,1,2`); none for an interval."""
    if not override.is_sweep_override():
        yield override.value()
    elif override.is_discrete_sweep():
        yield from override.sweep_iterator()


# -- keys -------------------------------------------------------------------------------------------------
def _walk(key: str, text: str) -> Any:
    """The schema type of `key`; `ConfigError` naming the closest valid keys when there is none."""
    kind: Any = Config
    parts = key.split(".")
    for at, part in enumerate(parts):
        kind = _unwrap(kind)
        if kind is _ANY:
            return _ANY
        origin = typing.get_origin(kind)
        if origin is dict:
            kind = typing.get_args(kind)[1] if typing.get_args(kind) else _ANY  # any sub-key
            continue
        if origin is list:
            return _ANY
        if not dataclasses.is_dataclass(kind):
            raise ConfigError(f"{text}: {'.'.join(parts[:at])} is a value, not a group of keys; "
                              f"{_did_you_mean(key)}")
        fields = _fields(kind)
        if part not in fields:
            near = [".".join([*parts[:at], name]) for name in difflib.get_close_matches(part, fields, n=3, cutoff=0.7)]
            raise ConfigError(f"{text}: no such key; {_did_you_mean(key, near)}")
        kind = fields[part]
    return _unwrap(kind)


def _unwrap(kind: Any) -> Any:
    """`Optional[X]` or `X | None` as X (None is checked by the value's node); Any and lists as anything."""
    if kind is Any:
        return _ANY
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        return args[0] if len(args) == 1 else _ANY
    return kind


@functools.cache
def _fields(cls: type) -> dict[str, Any]:
    """A dataclass's fields and their resolved types."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


@functools.cache
def _all_keys() -> tuple[str, ...]:
    """Every dotted key of the schema (a dict or list field is one key)."""
    out: list[str] = []

    def walk(cls: type, prefix: str) -> None:
        for name, kind in _fields(cls).items():
            kind = _unwrap(kind)
            out.append(prefix + name)
            if dataclasses.is_dataclass(kind):
                walk(kind, f"{prefix}{name}.")

    walk(Config, "")
    return tuple(out)


def _did_you_mean(key: str, near: list[str] | None = None) -> str:
    """`did you mean a.b or a.c?`: the keys `near` (beside it), else the valid keys closest to `key`, by the
    whole key or by its last part."""
    if near:
        return f"did you mean {' or '.join(near)}? ({_KEYS_HINT})"
    keys = _all_keys()
    by_last: dict[str, list[str]] = {}
    for known in keys:
        by_last.setdefault(known.rsplit(".", 1)[-1], []).append(known)
    close = difflib.get_close_matches(key, keys, n=3, cutoff=0.8)
    for name in difflib.get_close_matches(key.rsplit(".", 1)[-1], list(by_last), n=3, cutoff=0.8):
        close += by_last[name]
    suggestions = list(dict.fromkeys(close))[:3]
    if not suggestions:
        return _KEYS_HINT
    return f"did you mean {' or '.join(suggestions)}? ({_KEYS_HINT})"


def _chosen_problem(overrides: list) -> Any:
    """The `ProblemConfig` the overrides pick (`problem=NAME`, else the default); None for a sweep over
    problems or an unknown one (that choice is checked on its own)."""
    from hydra.core.override_parser.types import OverrideType
    from omegaconf import OmegaConf

    from evolve.problems import discover

    name = None
    for override in overrides:
        if override.key_or_group == "problem" and override.package is None and override.type is not OverrideType.DEL:
            if override.is_sweep_override():
                return None
            name = str(override.value())
    if name is None:
        defaults = OmegaConf.to_container(OmegaConf.load(str(resources.files("evolve.conf") / "config.yaml"))).get(
            "defaults", [])
        name = next((d["problem"] for d in defaults if isinstance(d, dict) and "problem" in d), None)
    return discover().get(name) if name is not None else None


def _check_problem_key(problem: Any, key: str, text: str) -> None:
    """`ConfigError` when `key` changes a key of a problem's dict (`problem.params.x`) that the problem
    does not have: Hydra adds a new one only with `+`."""
    parts = key.split(".")
    if len(parts) < 3 or parts[0] != "problem":
        return
    held = getattr(problem, parts[1], None)
    if isinstance(held, dict) and parts[2] not in held:
        has = f"it has {', '.join(sorted(held))}" if held else "it has none"
        raise ConfigError(f"{text}: problem {problem.name!r} has no {parts[1]} key {parts[2]!r} ({has}); "
                          f"add one with +{text}")


# -- values -----------------------------------------------------------------------------------------------
_NODES = {int: ("IntegerNode", "an integer"), float: ("FloatNode", "a number"), bool: ("BooleanNode", "true or false"),
          str: ("StringNode", "a string")}


def _check_value(key: str, kind: Any, value: Any, text: str) -> None:
    """`ConfigError` when `value` cannot be `kind` (as OmegaConf converts it); interpolations are not checked."""
    if kind is _ANY or (isinstance(value, str) and "${" in value):
        return
    if dataclasses.is_dataclass(kind):
        if isinstance(value, dict):
            return
        example = next(iter(_fields(kind)))
        raise ConfigError(f"{text}: {key} is a group of keys, not a value; set one of them, e.g. "
                          f"{key}.{example}=... ({_KEYS_HINT})")
    if kind not in _NODES:
        return
    import omegaconf.nodes
    from omegaconf.errors import ValidationError

    node, expected = _NODES[kind]
    optional = _optional(key)
    try:
        getattr(omegaconf.nodes, node)(value=value, is_optional=optional)
    except ValidationError:
        shown = repr(value) if isinstance(value, str) else _yaml(value)
        default = _default(key)
        raise ConfigError(f"{key}={shown}: expected {expected}{' or null' if optional else ''}"
                          + (f" (the default is {_yaml(default)})" if default is not None else "")) from None


def _yaml(value: object) -> str:
    """A value as it is written in an override: true, null, 0.5."""
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _field_of(key: str) -> tuple[type, str] | None:
    """The dataclass and field name that `key` ends in, when it ends in a dataclass field."""
    kind: Any = Config
    parts = key.split(".")
    for part in parts[:-1]:
        kind = _unwrap(kind)
        if not dataclasses.is_dataclass(kind):
            return None
        kind = _fields(kind).get(part)
    kind = _unwrap(kind)
    return (kind, parts[-1]) if dataclasses.is_dataclass(kind) and parts[-1] in _fields(kind) else None


def _optional(key: str) -> bool:
    found = _field_of(key)
    if found is None:
        return True  # a dict's value: null is fine
    kind = _fields(found[0])[found[1]]
    return typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in typing.get_args(kind)


def _default(key: str) -> object | None:
    found = _field_of(key)
    if found is None or key.startswith("problem."):  # a problem's own config.yaml sets its values
        return None
    field = next(f for f in dataclasses.fields(found[0]) if f.name == found[1])
    return field.default if field.default is not dataclasses.MISSING and field.default is not None else None


# -- group choices ----------------------------------------------------------------------------------------
def _check_choice(group: str, value: Any) -> None:
    """`ConfigError` when `value` is not an option of `group`: its files, or for `problem` the problems."""
    if group == "problem":
        from evolve.problems import resolve

        resolve(str(value))  # ProblemNotFound lists the problems and the folder form
        return
    options = _options(group)
    if str(value) not in options:
        close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.7)
        hint = f"did you mean {group}={close[0]}? " if close else ""
        raise ConfigError(f"{group}={value}: no such {group} config; {hint}the options are "
                          f"{', '.join(options)} (files in evolve/conf/{group}/)")


@functools.cache
def _options(group: str) -> list[str]:
    """The option names of a group: evolve's files evolve/conf/<group>/*.yaml."""
    folder = resources.files("evolve.conf") / group
    return sorted(entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".yaml"))
