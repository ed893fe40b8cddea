"""Crossover between the parent and another program: whole statements and functions, or one constant blended.

The two programs' blocks are aligned statement by statement (on their syntax trees, so layout and comments
do not matter); where they differ, the parent takes the other's statements, all of them or one
(`statement`, or `function` when a whole definition moves), or, where two statements differ only in their
numbers, one number moves to the other's value or to a point on the line through both (`blend`).
Statements with the same header (a function's name, a loop's target and iterable, a condition) are
aligned again inside. A child that takes statements is checked for a name it reads before binding it
or never binds (`unbound_read`): such a child would fail at once.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import random
import re

from evolve.proposals.llm.offline.constants import format_number
from evolve.proposals.llm.offline.source import Change, Source

__all__ = ["aligned", "crossover", "same_blocks", "unbound_read"]

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def same_blocks(one: Source, other: Source) -> bool:
    """Whether the two programs' EVOLVE-BLOCKs hold the same code (layout and comments aside)."""
    return [one.dump(s) for k in range(len(one.blocks)) for s in _statements(one, k)] == \
        [other.dump(s) for k in range(len(other.blocks)) for s in _statements(other, k)]


def _statements(src: Source, k: int) -> list[ast.stmt]:
    """The outermost statements lying inside block k, in order."""
    s, e = src.blocks[k]
    found = []

    def visit(body: list[ast.stmt]) -> None:
        for stmt in body:
            a, b = src.span(stmt)
            if s <= a and b <= e:
                found.append(stmt)
            elif a < e and b > s:  # the block lies inside this statement
                for field in ("body", "orelse", "finalbody"):
                    visit(getattr(stmt, field, None) or [])
                for handler in getattr(stmt, "handlers", []):
                    visit(handler.body)

    visit(src.tree.body)
    return found


def _header(stmt: ast.stmt) -> tuple | None:
    if isinstance(stmt, _DEFS):
        return (type(stmt).__name__, stmt.name)
    if isinstance(stmt, (ast.For, ast.AsyncFor)):
        return ("for", ast.dump(stmt.target), ast.dump(stmt.iter))
    if isinstance(stmt, (ast.If, ast.While)):
        return (type(stmt).__name__, ast.dump(stmt.test))
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        return ("with", *(ast.dump(item) for item in stmt.items))
    if isinstance(stmt, ast.Try):
        return ("try",)
    return None


_NUMBER = re.compile(r"Constant\(value=-?[0-9][0-9.e+-]*\)")


def _masked(dump: str) -> str:
    """A statement's dump with its numbers zeroed: equal for two statements that differ only in numbers."""
    return _NUMBER.sub("Constant(value=0)", dump)


def _defined(stmts: list[ast.stmt]) -> list[str]:
    return sorted(s.name for s in stmts if isinstance(s, _DEFS))


def _assigned(stmt: ast.stmt) -> list[str]:
    """The names a plain assignment sets (none for other statements)."""
    if isinstance(stmt, ast.Assign):
        return [n.id for t in stmt.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) and isinstance(stmt.target, ast.Name):
        return [stmt.target.id]
    return []


def _overwrites(stmt: ast.stmt, assigned: set[str]) -> bool:
    """Whether the statement sets a name the parent already sets, without reading it (`x = x + 1` reads it)."""
    names = set(_assigned(stmt)) & assigned
    value = getattr(stmt, "value", None)
    read = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)} if value is not None else set()
    return bool(names) and not isinstance(stmt, ast.AugAssign) and not names & read


def _align(src: Source, donor: Source, ps: list[ast.stmt], ds: list[ast.stmt], regions: list, blends: list) -> None:
    """Collect the regions where the two bodies differ, and the statement pairs that differ only in numbers."""
    keys = [src.dump(s) for s in ps], [donor.dump(s) for s in ds]
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, *keys, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        candidates = [(i1, i2, j1, j2)]
        if j2 - j1 > 1 or (j2 > j1 and i2 > i1):  # one of the other's statements alone, added or in place
            candidates += [(i1, i1, j, j + 1) for j in range(j1, j2)]
            candidates += [(i1, i2, j, j + 1) for j in range(j1, j2) if i2 > i1 and j2 - j1 > 1]
        mine = set(_defined(ps))
        assigned = {name for s in ps for name in _assigned(s)}
        for a1, a2, b1, b2 in candidates:  # a definition is replaced only by one of the same name, never doubled
            theirs = _defined(ds[b1:b2])
            if a1 == a2 and _overwrites(ds[b1], assigned):
                continue  # a second `X = 1.5` beside the parent's: replace its statement rather than add one
            if _defined(ps[a1:a2]) == theirs or (a1 == a2 and not mine & set(theirs)):
                regions.append((ps, a1, a2, ds, b1, b2))
        if tag != "replace":
            continue
        for p, d in zip(ps[i1:i2], ds[j1:j2]):
            if type(p) is type(d) and _masked(src.dump(p)) == _masked(donor.dump(d)):
                blends.append((p, d))
            if _header(p) is not None and _header(p) == _header(d):
                for field in ("body", "orelse", "finalbody"):
                    pb, db = getattr(p, field, None), getattr(d, field, None)
                    if pb and db:
                        _align(src, donor, pb, db, regions, blends)


def _lines(src: Source, stmts: list[ast.stmt]) -> tuple[int, int, str] | None:
    """The whole-line span of consecutive statements (decorators included) and their indentation."""
    first, last = stmts[0], stmts[-1]
    line = min([first.lineno] + [d.lineno for d in getattr(first, "decorator_list", [])])
    lo = src.offset(line, 0)
    text = src.code[lo:].split("\n", 1)[0]
    indent = text[:len(text) - len(text.lstrip())]
    end = src.span(last)[1]
    hi = src.code.find("\n", end)
    hi = len(src.code) if hi < 0 else hi + 1
    tail = src.code[end:hi].strip()
    if (line == first.lineno and src.span(first)[0] != lo + len(indent)) or (tail and not tail.startswith("#")):
        return None
    return lo, hi, indent


def _reindent(text: str, old: str, new: str) -> str:
    return "".join(new + line[len(old):] if line.startswith(old) and line.strip() else line
                   for line in text.splitlines(keepends=True))


def _region(src: Source, donor: Source, region: tuple) -> Change | None:
    ps, i1, i2, ds, j1, j2 = region
    if j1 < j2:
        got = _lines(donor, ds[j1:j2])
        if got is None:
            return None
        lo, hi, donor_indent = got
        incoming = donor.code[lo:hi]
    else:
        incoming, donor_indent = "", ""
    if i1 < i2:
        got = _lines(src, ps[i1:i2])
        if got is None:
            return None
        start, end, indent = got
    elif i1 < len(ps):  # an insertion before statement i1
        got = _lines(src, ps[i1:i1 + 1])
        if got is None:
            return None
        start, _, indent = got
        end = start
    else:  # an insertion after the last statement
        got = _lines(src, ps[-1:])
        if got is None:
            return None
        _, end, indent = got
        start = end
    text = _reindent(incoming, donor_indent, indent)
    moved = ps[i1:i2] + ds[j1:j2]
    kind = "function" if any(isinstance(s, _DEFS) for s in moved) else "statement"
    what = ", ".join(sorted({type(s).__name__ for s in moved}))
    return Change(start, end, text, kind, f"{kind} crossover: {i2 - i1} statement(s) ({what}) replaced by "
                                          f"{j2 - j1} from the other program")


def _blend(src: Source, pair: tuple, rng: random.Random) -> Change | None:
    p, d = pair
    diffs = [(a, b) for a, b in zip(ast.walk(p), ast.walk(d))
             if isinstance(a, ast.Constant) and type(a.value) in (int, float) and a.value != b.value
             and hasattr(a, "lineno")]
    if not diffs:
        return None
    a, b = rng.choice(diffs)
    if (isinstance(a.value, int) and isinstance(b.value, int)) or rng.random() < 0.5:
        value = b.value
    else:
        value = a.value + rng.uniform(-0.25, 1.25) * (b.value - a.value)
    scale = abs(b.value - a.value) / max(abs(a.value), abs(b.value), 1e-12)
    text = format_number(value, max(scale / 10, 1e-9))
    start, end = src.span(a)
    if float(text) == a.value:
        return None
    if text.startswith("-") and isinstance(src.parent.get(id(a)), (ast.BinOp, ast.UnaryOp)):
        text = f"({text})"
    return Change(start, end, text, "blend", f"blend: {src.code[start:end]} -> {text} (the other has {b.value!r})")


def aligned(src: Source, donor: Source) -> tuple[list, list]:
    """Where the two programs' blocks differ (regions), and the statement pairs that differ only in numbers
    (blends); derived once per pair of programs."""
    key = ("aligned", donor.code)
    found = src.memo.get(key)
    if found is None:
        regions: list = []
        blends: list = []
        if len(src.blocks) == len(donor.blocks):
            for k in range(len(src.blocks)):
                _align(src, donor, _statements(src, k), _statements(donor, k), regions, blends)
        found = src.memo[key] = (regions, blends)
        if len(src.memo) > 64:  # a popular parent meets many donors: keep the most recent pairs
            del src.memo[next(k for k in src.memo if isinstance(k, tuple))]
    return found


def crossover(src: Source, donor: Source, rng: random.Random) -> Change | None:
    """One change bringing part of `donor` into the parent (None: the blocks do not differ or do not align)."""
    regions, blends = aligned(src, donor)
    options = ([("region", r) for r in regions] + [("blend", b) for b in blends])
    rng.shuffle(options)
    for what, option in options[:8]:
        change = _region(src, donor, option) if what == "region" else _blend(src, option, rng)
        if change is not None:
            return change
    return None


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp, ast.DictComp,
           ast.GeneratorExp)


def _own(node: ast.AST):
    """The nodes of a function's body, its nested functions, classes and comprehensions left out."""
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, _SCOPES):
            yield child
            yield from _own(child)


def unbound_read(tree: ast.Module) -> str | None:
    """A name the program reads but binds nowhere, or a function's local read on a line before any line
    binds it (None: no such name; loops and same-line reads are given the benefit of the doubt)."""
    everywhere = set(dir(builtins)) | {"__file__", "__name__"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            everywhere.add(node.id)
        elif isinstance(node, _DEFS):
            everywhere.add(node.name)
        elif isinstance(node, ast.arg):
            everywhere.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            everywhere |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ExceptHandler) and node.name:
            everywhere.add(node.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in everywhere:
            return node.id
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            early = _read_early(node)
            if early is not None:
                return early
    return None


def _read_early(function: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """A local of `function` read on a line before the first line that binds it."""
    args = function.args
    outside = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    outside |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    first: dict[str, int] = {}
    reads: list[ast.Name] = []
    for inner in _own(function):
        if isinstance(inner, (ast.Global, ast.Nonlocal)):
            outside |= set(inner.names)
        elif isinstance(inner, ast.Name):
            if isinstance(inner.ctx, ast.Load):
                reads.append(inner)
            else:
                first[inner.id] = min(first.get(inner.id, inner.lineno), inner.lineno)
        elif isinstance(inner, (ast.Import, ast.ImportFrom, *_DEFS)):
            return None  # local imports and definitions: not followed
    return next((r.id for r in reads if r.id in first and r.id not in outside and r.lineno < first[r.id]), None)
