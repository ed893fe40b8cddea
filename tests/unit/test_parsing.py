"""Our own parsing never fails for another thread's: every parse goes through `evaluators.parsing.parse`,
one at a time (CPython 3.11's AST converter shares its recursion depth between threads)."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest

from evaluators import parsing

ROOT = Path(__file__).resolve().parents[2]
PARSERS = {("ast", "parse"), ("ast", "literal_eval")}  # literal_eval parses a string with ast.parse


def _direct_parses(path: Path) -> list[str]:
    """`file:line` of each call of the ast module's parsers in `path`."""
    tree = ast.parse(path.read_text(), str(path))  # the test's own thread: nothing parses beside it
    aliases = {a.asname or a.name: ("ast", a.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               and node.module == "ast" for a in node.names}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = (f.value.id, f.attr) if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else \
            aliases.get(f.id) if isinstance(f, ast.Name) else None
        only_ast = any(isinstance(k.value, ast.Attribute) and k.value.attr == "PyCF_ONLY_AST"
                       for k in node.keywords) or any(isinstance(a, ast.Attribute) and a.attr == "PyCF_ONLY_AST"
                                                      for a in node.args)
        if name in PARSERS or (isinstance(f, ast.Name) and f.id == "compile" and only_ast):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_nothing_but_the_one_helper_calls_the_parser():
    files = [p for package in ("evaluators", "evolve", "problems") for p in sorted((ROOT / package).rglob("*.py"))]
    assert len(files) > 50
    direct = [hit for p in files if p != ROOT / "evaluators" / "parsing.py" for hit in _direct_parses(p)]
    assert direct == [], f"parse with evaluators.parsing.parse instead: {direct}"


def test_a_parse_waits_while_another_holds_the_parser():
    done: list[ast.Module] = []
    with parsing._LOCK:  # as another thread's parse would
        thread = threading.Thread(target=lambda: done.append(parsing.parse("def f():\n    return 1\n")))
        thread.start()
        thread.join(0.5)
        assert thread.is_alive() and not done  # it cannot finish while the parser is held
    thread.join()
    assert isinstance(done[0].body[0], ast.FunctionDef)


def test_it_parses_as_ast_parse_does():
    assert ast.dump(parsing.parse("x = (1, 2)\n")) == ast.dump(ast.parse("x = (1, 2)\n"))
    with pytest.raises(SyntaxError) as caught:
        parsing.parse("def (:\n", "prog.py")
    assert caught.value.filename == "prog.py"
