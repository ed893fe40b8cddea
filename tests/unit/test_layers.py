"""The layers point one way, and no file imports itself back: checked on the import graph, not by habit.

    sandboxes/   the standard library and its own modules (plus the optional `docker` SDK and the
                 zygote's `pyseccomp`, both imported only where they are used)
    evaluators/  + sandboxes
    problems/    + evaluators, sandboxes and third-party libraries
    evolve/      + everything

Inside `evolve/` the parts are layered too (`EVOLVE_RANK`): the storage never imports the engine, the
engine never imports the web view, the report or the command line.

    evolve.{config,errors,program,problems,background,plugins}   the shared vocabulary
    evolve.storage                                                rows, run dirs, locks
    evolve.{population,proposals,evaluation,observe}              the steps of an iteration, and its telemetry
    evolve.engine                                                 the campaign, one iteration, the schedule
    evolve.ui                                                     the web view and report.html
    evolve.{cli,api,testing} and `evolve/__init__`                the entry points

Every import counts: at module level, inside functions, and under `TYPE_CHECKING`.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sandboxes", "evaluators", "problems", "evolve")
RANK = {name: n for n, name in enumerate(PACKAGES)}
THIRD_PARTY_ALLOWED = {"sandboxes": {"docker", "pyseccomp"}, "evaluators": set()}
EVOLVE_RANK = {
    **dict.fromkeys(["evolve.config", "evolve.errors", "evolve.program", "evolve.problems", "evolve.background",
                     "evolve.plugins"], 0),
    "evolve.storage": 1,
    **dict.fromkeys(["evolve.population", "evolve.proposals", "evolve.evaluation", "evolve.observe"], 2),
    "evolve.engine": 3,
    "evolve.ui": 4,
    **dict.fromkeys(["evolve.cli", "evolve.api", "evolve.testing", "evolve"], 5),
}


def evolve_rank(name: str) -> int | None:
    """The inner layer of an `evolve` module (its part's), None for a name outside `evolve`."""
    parts = name.split(".")
    if parts[0] != "evolve":
        return None
    part = ".".join(parts[:2])
    if part not in EVOLVE_RANK and len(parts) > 1 and not name.startswith("evolve.conf"):
        raise AssertionError(f"{name}: a new part of evolve; give it a rank in EVOLVE_RANK")
    return EVOLVE_RANK.get(part, EVOLVE_RANK["evolve"])


def modules(root: Path) -> dict[str, Path]:
    """Every module of the four packages by dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path, name: str, known: dict[str, Path]) -> list[tuple[int, str]]:
    """(line, module) for each import in `path`: a project module when it is one, else the top name."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            targets = [t for t in targets if t in known][:len(node.names)] or [base]
        else:
            continue
        for target in targets:
            sibling = f"{package}.{target}"  # `import _layers` beside the file (the zygote's own path)
            if "." not in target and sibling in known and importlib.util.find_spec(target) is None:
                target = sibling
            out.append((node.lineno, target))
    return out


def violations(root: Path) -> list[str]:
    """Every import that points up a layer, or out of the standard library where only it is allowed."""
    known = modules(root)
    found = []
    for name, path in known.items():
        layer = name.split(".")[0]
        for line, target in imports(path, name, known):
            top = target.split(".")[0]
            where = f"{path.relative_to(root)}:{line} imports {target}"
            if top in RANK and RANK[top] > RANK[layer]:
                found.append(f"{where} (a higher layer)")
            elif top == layer == "evolve" and evolve_rank(target) > evolve_rank(name):
                found.append(f"{where} (a higher part of evolve)")
            elif top not in RANK and layer in THIRD_PARTY_ALLOWED and top not in sys.stdlib_module_names \
                    and top not in THIRD_PARTY_ALLOWED[layer]:
                found.append(f"{where} (not the standard library)")
    return found


def cycles(root: Path) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), and modules importing themselves."""
    known = modules(root)
    def owner(target: str) -> str:  # `pkg.module.name` -> the module that defines it
        while target not in known and "." in target:
            target = target.rpartition(".")[0]
        return target

    graph = {name: sorted({owner(t) for _, t in imports(path, name, known) if owner(t) in known})
             for name, path in known.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph[v]:
                groups.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return groups


def test_lower_layers_never_import_higher_ones():
    assert violations(ROOT) == []


def test_no_import_circles_between_files():
    assert cycles(ROOT) == []


def test_the_checks_catch_what_they_look_for(tmp_path):
    """A tree with one upward import, one third-party import in sandboxes and one circle is flagged."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "sandboxes" / "bad.py").write_text("import json\ndef f():\n    from evolve.config import X\n")
    (tmp_path / "evaluators" / "numeric.py").write_text("import numpy\nfrom sandboxes import bad\n")
    (tmp_path / "evolve" / "config.py").write_text("from evolve import errors\n")
    (tmp_path / "evolve" / "errors.py").write_text("from . import config\n")
    for part in ("storage", "engine"):
        (tmp_path / "evolve" / part).mkdir()
        (tmp_path / "evolve" / part / "__init__.py").write_text("")
    (tmp_path / "evolve" / "storage" / "rows.py").write_text("from evolve.engine.loop import run\n")
    (tmp_path / "evolve" / "engine" / "loop.py").write_text("from evolve.storage import rows\nrun = 1\n")
    found = violations(tmp_path)
    assert any("sandboxes/bad.py:3 imports evolve.config" in v and "higher layer" in v for v in found)
    assert any("evaluators/numeric.py:1 imports numpy" in v for v in found)
    assert any("evolve/storage/rows.py:1 imports evolve.engine.loop" in v and "higher part" in v for v in found)
    assert len(found) == 3
    assert cycles(tmp_path) == [["evolve.config", "evolve.errors"], ["evolve.engine.loop", "evolve.storage.rows"]]
