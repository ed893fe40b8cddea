"""Structural moves on a parsed block, each returning a `Change` (or None when it finds nothing to change).

- operator: `+`/`-`, `*`/`/`, `<`/`<=`, `>`/`>=`, `min`/`max` swapped, outside indexing and loop bounds
- swap: the arms of a comparison (`a < b` -> `b < a`), of a conditional expression, of a string concatenation
- reorder: two adjacent statements that neither read nor write what the other writes, swapped
- term: `expr` -> `(expr + w * name)`, `name` an operand the same function already computes with
- literal: a string literal edited (a character swapped, dropped, doubled or replaced) or a bool flipped
- sequence: two like elements of a list (or a tuple of strings) swapped, one doubled or one dropped
"""

from __future__ import annotations

import ast
import builtins
import itertools
import random

from evolve.proposals.llm.offline.source import Change, Source, docstrings

__all__ = ["MOVES", "literal", "operator", "reorder", "sequence", "swap", "term"]

_ARITHMETIC = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "/"), ast.Div: ("/", "*")}
_ORDER = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">")}
_EXTREMA = {"min": "max", "max": "min", "minimum": "maximum", "maximum": "minimum", "argmin": "argmax",
            "argmax": "argmin", "fmin": "fmax", "fmax": "fmin", "nanmin": "nanmax", "nanmax": "nanmin"}
_PURE = {"abs", "all", "any", "bool", "dict", "divmod", "enumerate", "float", "frozenset", "hash", "int", "isinstance",
         "len", "list", "max", "min", "pow", "range", "reversed", "round", "set", "sorted", "str", "sum", "tuple",
         "zip"}
_BUILTINS = set(dir(builtins))


def _is_text(node: ast.AST) -> bool:
    """Whether the expression builds a string: a string literal, or a sum with one among its terms."""
    if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))):
        return True
    return isinstance(node, ast.BinOp) and (_is_text(node.left) or _is_text(node.right))


def _between(src: Source, left: ast.AST, right: ast.AST, symbol: str, new: str) -> Change | None:
    """The text between two operands with its one operator `symbol` replaced by `new`."""
    a, b = src.span(left)[1], src.span(right)[0]
    text = src.code[a:b]
    core = text.replace("(", " ").replace(")", " ").strip()
    if core != symbol:
        return None
    return Change(a, b, text.replace(symbol, new, 1), "operator", f"{symbol} -> {new}")


def operator(src: Source, rng: random.Random) -> Change | None:
    """Swap an arithmetic or ordering operator, or min for max."""
    sites = list(_memo(src, "operator", _operator_sites))
    rng.shuffle(sites)
    for left, right, symbol, new in sites:
        if right is None:
            _, b = src.span(left)
            return Change(b - len(symbol), b, new, "operator", f"{symbol} -> {new}")
        change = _between(src, left, right, symbol, new)
        if change is not None:
            return change
    return None


def _memo(src: Source, key: str, derive):
    """What `derive(src)` finds, derived once per program."""
    found = src.memo.get(key)
    if found is None:
        found = src.memo[key] = derive(src)
    return found


def _operator_sites(src: Source) -> list[tuple]:
    sites = []
    for node in src.nodes:
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC and not src.protected(node):
            if _is_text(node):
                continue
            if isinstance(node.op, (ast.Add, ast.Sub)) and any(
                    isinstance(side, ast.Constant) and type(side.value) is int for side in (node.left, node.right)):
                continue  # index arithmetic
            if isinstance(node.op, ast.Mult) and not (isinstance(node.right, ast.Constant) and node.right.value):
                continue  # a division by a variable may divide by zero
            sites.append((node.left, node.right, *_ARITHMETIC[type(node.op)]))
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _ORDER:
            if not src.protected(node):
                sites.append((node.left, node.comparators[0], *_ORDER[type(node.ops[0])]))
        elif isinstance(node, ast.Call) and not src.protected(node):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in _EXTREMA:
                sites.append((func, None, name, _EXTREMA[name]))
    return sites


def swap(src: Source, rng: random.Random) -> Change | None:
    """Swap the arms of an ordering comparison, a conditional expression or a string concatenation."""
    sites = []
    for node in src.nodes:
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _ORDER:
            sites.append((node.left, node.comparators[0], "comparison"))
        elif isinstance(node, ast.IfExp):
            sites.append((node.body, node.orelse, "conditional"))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and _is_text(node):
            sites.append((node.left, node.right, "concatenation"))
    sites = [s for s in sites if not src.protected(s[0]) and src.text(s[0]) != src.text(s[1])]
    if not sites:
        return None
    first, second, what = rng.choice(sites)
    (a, b), (c, d) = src.span(first), src.span(second)
    code = src.code
    text = code[c:d] + code[b:c] + code[a:b]
    return Change(a, d, text, "swap", f"the arms of a {what} swapped: {code[a:d].strip()[:60]!r}")


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


def _root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _effects(stmt: ast.stmt, modules: set[str]) -> tuple[set[str], set[str]] | None:
    """(names read, names written) by a simple statement; None for one that must keep its place."""
    reads, writes = set(), set()
    for node in ast.walk(stmt):
        if isinstance(node, (ast.Return, ast.Yield, ast.YieldFrom, ast.Await, ast.Raise, ast.Global, ast.Nonlocal,
                             ast.Break, ast.Continue, ast.Delete, ast.Assert)):
            return None
        if isinstance(node, ast.Name):
            (reads if isinstance(node.ctx, ast.Load) else writes).add(node.id)
        elif isinstance(node, (ast.Attribute, ast.Subscript)) and not isinstance(node.ctx, ast.Load):
            root = _root(node)
            if root:
                writes.add(root)
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                root = _root(node.func.value)
                if root and root not in modules:
                    writes.add(root)  # a method may change its object
                elif root in modules:
                    reads.add("*state*")  # a module function may read global state (a random generator, say)
            elif not (isinstance(node.func, ast.Name) and node.func.id in _PURE):
                reads.add("*state*")
                writes.add("*state*")
    return reads, writes


def _whole_lines(src: Source, node: ast.stmt) -> tuple[int, int] | None:
    """The span of the full lines a statement occupies, when it has them to itself."""
    a, b = src.span(node)
    lo = src.code.rfind("\n", 0, a) + 1
    hi = src.code.find("\n", b)
    hi = len(src.code) if hi < 0 else hi + 1
    tail = src.code[b:hi].strip()
    if src.code[lo:a].strip() or (tail and not tail.startswith("#")):
        return None
    return lo, hi


def reorder(src: Source, rng: random.Random) -> Change | None:
    """Swap two adjacent statements that do not depend on each other."""
    pairs = list(_memo(src, "reorder", _independent_pairs))
    rng.shuffle(pairs)
    for first, second in pairs:
        one, two = _whole_lines(src, first), _whole_lines(src, second)
        if one is None or two is None:
            continue
        code = src.code
        text = code[two[0]:two[1]] + code[one[1]:two[0]] + code[one[0]:one[1]]
        return Change(one[0], two[1], text, "reorder",
                      f"independent statements swapped: {code[one[0]:one[1]].strip()[:40]!r} and "
                      f"{code[two[0]:two[1]].strip()[:40]!r}")
    return None


def _independent_pairs(src: Source) -> list[tuple[ast.stmt, ast.stmt]]:
    """Adjacent simple statements inside a block that neither read nor write what the other writes."""
    modules = _imports(src.tree)
    simple = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr)
    pairs = []
    for node in ast.walk(src.tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if not isinstance(body, list):
                continue
            for first, second in itertools.pairwise(body):
                if not (isinstance(first, simple) and isinstance(second, simple)):
                    continue
                if ast.dump(first) == ast.dump(second):
                    continue
                one, two = _effects(first, modules), _effects(second, modules)
                if one is None or two is None or one[1] & (two[0] | two[1]) or two[1] & one[0]:
                    continue
                pairs.append((first, second))
    return [p for p in pairs if src.block_of(src.span(p[0])[0], src.span(p[1])[1]) is not None]


def _function_of(src: Source, node: ast.AST) -> ast.AST:
    return next((a for a in src.ancestors(node) if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef))), src.tree)


def _bound(src: Source, target: ast.AST) -> set[str]:
    """Names surely bound where `target` runs: the module's, builtins, and each enclosing function's
    parameters and the names it binds on earlier lines (outside comprehensions)."""
    names = set(_BUILTINS)
    for stmt in src.tree.body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and not _in_comprehension(src, node):
                if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.With, ast.Import,
                                     ast.ImportFrom)):
                    names.add(node.id)
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(stmt.name)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in stmt.names}
    for function in src.ancestors(target):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        args = function.args
        names |= {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        names |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        for node in ast.walk(function):
            line = getattr(node, "lineno", None)
            if line is None or line >= target.lineno or _function_of(src, node) is not function:
                continue
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and not _in_comprehension(src, node):
                names.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(node.name)
    return names


def _in_comprehension(src: Source, node: ast.AST) -> bool:
    for above in src.ancestors(node):
        if isinstance(above, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda)):
            return True
        if isinstance(above, ast.stmt):
            return False
    return False


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def term(src: Source, rng: random.Random) -> Change | None:
    """Add a weighted term, built from an operand the same function computes with, to an arithmetic expression."""
    targets = _memo(src, "term", lambda src: [
        n for n in src.nodes if isinstance(n, ast.BinOp) and type(n.op) in _ARITHMETIC
        and not isinstance(src.parent.get(id(n)), ast.BinOp) and not src.protected(n) and not _is_text(n)])
    if not targets:
        return None
    target = rng.choice(targets)
    texts = _memo(src, f"term:{id(target)}", lambda src: _operands(src, target))
    if not texts:
        return None
    own = src.text(target)
    name = rng.choice(texts)
    weight = 10 ** rng.uniform(-2.0, 0.0)
    sign = rng.choice("+-")
    text = f"({own} {sign} {weight:.3g} * {name})"
    a, b = src.span(target)
    return Change(a, b, text, "term", f"term {sign} {weight:.3g} * {name} added to {own.strip()[:50]!r}")


def _operands(src: Source, target: ast.AST) -> list[str]:
    """The operands a term added to `target` may use: those its function computes with, bound there."""
    scope = _function_of(src, target)
    operands = []
    for node in ast.walk(scope):
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC and not _is_text(node):
            operands += [side for side in (node.left, node.right)
                         if isinstance(side, (ast.Name, ast.Subscript, ast.Attribute))
                         and isinstance(getattr(side, "ctx", None), ast.Load)]
    bound = _bound(src, target)
    own = src.text(target)
    texts = sorted({src.text(o) for o in operands if _names(o) <= bound and _names(o) - _BUILTINS})
    return [t for t in texts if t != own]


def literal(src: Source, rng: random.Random) -> Change | None:
    """Edit a string literal (a character swapped, dropped, doubled or replaced) or flip a bool."""
    docs = docstrings(src.tree)
    strings = [n for n in src.nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)
               and id(n) not in docs and not src.protected(n)]
    flags = [n for n in src.nodes if isinstance(n, ast.Constant) and isinstance(n.value, bool)
             and not src.protected(n)]
    if not strings and not flags:
        return None
    node = rng.choice(strings + flags)
    a, b = src.span(node)
    if isinstance(node.value, bool):
        return Change(a, b, str(not node.value), "literal", f"{node.value} -> {not node.value}")
    alphabet = sorted({c for s in strings for c in s.value}) or list("abcdefghijklmnopqrstuvwxyz")
    value = node.value
    others = sorted({s.value for s in strings} - {value})
    moves = ["insert"] + (["drop", "double", "replace"] if value else []) + (["swap"] if len(value) > 1 else [])
    moves += ["other"] if others else []
    move = rng.choice(moves)
    i = rng.randrange(len(value)) if value else 0
    if move == "insert":
        new = value[:i] + rng.choice(alphabet) + value[i:]
    elif move == "drop":
        new = value[:i] + value[i + 1:]
    elif move == "double":
        new = value[:i] + value[i] + value[i:]
    elif move == "replace":
        new = value[:i] + rng.choice(alphabet) + value[i + 1:]
    elif move == "swap":
        i = min(i, len(value) - 2)
        new = value[:i] + value[i + 1] + value[i] + value[i + 2:]
    else:
        new = rng.choice(others)
    if new == value:
        return None
    return Change(a, b, repr(new), "literal", f"string {value[:30]!r} -> {new[:30]!r}")


def _kind(node: ast.AST) -> tuple:
    if isinstance(node, ast.Constant):
        return (type(node).__name__, type(node.value).__name__)
    return (type(node).__name__,)


def sequence(src: Source, rng: random.Random) -> Change | None:
    """Swap two like elements of a list (or a tuple of strings), or double or drop one of a uniform list.

    Other tuples are left alone: they are usually records (`return x, r`), whose order means something.
    """
    displays = [n for n in src.nodes if (isinstance(n, (ast.List, ast.Set)) or (isinstance(n, ast.Tuple) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in n.elts)))
                and isinstance(getattr(n, "ctx", ast.Load()), ast.Load) and len(n.elts) >= 2
                and not src.protected(n) and not any(isinstance(e, ast.Starred) for e in n.elts)]
    if not displays:
        return None
    node = rng.choice(displays)
    elts = node.elts
    code = src.code
    uniform = len({_kind(e) for e in elts}) == 1
    choices = ["swap"] + (["double", "drop"] if uniform and not isinstance(node, ast.Set) else [])
    move = rng.choice(choices)
    if move == "swap":
        pairs = [(i, j) for i in range(len(elts)) for j in range(i + 1, len(elts))
                 if _kind(elts[i]) == _kind(elts[j]) and src.text(elts[i]) != src.text(elts[j])]
        if not pairs:
            return None
        i, j = rng.choice(pairs)
        (a, b), (c, d) = src.span(elts[i]), src.span(elts[j])
        return Change(a, d, code[c:d] + code[b:c] + code[a:b], "sequence",
                      f"elements {code[a:b][:30]!r} and {code[c:d][:30]!r} swapped")
    i = rng.randrange(len(elts))
    a, b = src.span(elts[i])
    if move == "double":
        return Change(b, b, ", " + code[a:b], "sequence", f"element {code[a:b][:30]!r} doubled")
    if len(elts) < 3:
        return None
    if i + 1 < len(elts):
        return Change(a, src.span(elts[i + 1])[0], "", "sequence", f"element {code[a:b][:30]!r} dropped")
    return Change(src.span(elts[i - 1])[1], b, "", "sequence", f"element {code[a:b][:30]!r} dropped")


MOVES = {"operator": operator, "swap": swap, "reorder": reorder, "term": term, "literal": literal,
         "sequence": sequence}
