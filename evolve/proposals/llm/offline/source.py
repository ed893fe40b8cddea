"""A program as the offline engine reads it: its syntax tree, where each node lies, and which nodes to leave alone."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cached_property

from evaluators.parsing import parse
from evolve.proposals.edits import SearchReplace, evolve_blocks

__all__ = ["Change", "Source", "Unreadable", "docstrings", "text_edit"]


class Unreadable(Exception):
    """The program cannot be parsed, or its EVOLVE-BLOCK markers are unbalanced; the message says which."""


@dataclass(frozen=True)
class Change:
    """Replace `code[start:end]` by `text`: one move, named by `kind` and described by `note`.

    `key` names the constant a `constant` move changed, `sigma` the step size it used and `direction` the
    sign of its step (+1 up, -1 down), so that the constant's step size, selection weight and preferred
    direction can learn from the child's fate.
    """

    start: int
    end: int
    text: str
    kind: str
    note: str
    key: str = ""
    sigma: float = 0.0
    direction: int = 0


class Source:
    """The parsed program: nodes inside the EVOLVE-BLOCKs, their character spans, their parents.

    Raises Unreadable when the program does not parse.
    """

    def __init__(self, code: str) -> None:
        self.code = code
        try:
            self.tree = parse(code)
            self.blocks = evolve_blocks(code)
        except SyntaxError as exc:
            raise Unreadable(f"the parent does not parse (line {exc.lineno}: {exc.msg})") from None
        except Exception as exc:  # noqa: BLE001 (EditError: unbalanced markers)
            raise Unreadable(str(exc)) from None
        self._lines = code.splitlines(keepends=True)
        self._starts = [0]
        for line in self._lines:
            self._starts.append(self._starts[-1] + len(line))
        self._indices: dict[int, set[str]] = {}
        self._dumps: dict[int, str] = {}
        self.memo: dict[object, object] = {}  # what the moves derive from this program, derived once

    @cached_property
    def parent(self) -> dict[int, ast.AST]:
        """Each node's parent, by the node's id."""
        parents: dict[int, ast.AST] = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                parents[id(child)] = node
        return parents

    def dump(self, node: ast.AST) -> str:
        """`ast.dump(node)`, computed once per node."""
        text = self._dumps.get(id(node))
        if text is None:
            text = self._dumps[id(node)] = ast.dump(node)
        return text

    def offset(self, line: int, col: int) -> int:
        """The character offset of an ast position (1-based line, UTF-8 byte column)."""
        text = self._lines[line - 1] if line - 1 < len(self._lines) else ""
        return self._starts[line - 1] + len(text.encode()[:col].decode(errors="ignore"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        """The node's (start, end) character offsets."""
        return (self.offset(node.lineno, node.col_offset), self.offset(node.end_lineno, node.end_col_offset))

    def text(self, node: ast.AST) -> str:
        a, b = self.span(node)
        return self.code[a:b]

    def block_of(self, a: int, b: int) -> int | None:
        """Which block holds code[a:b] (None: none does)."""
        return next((k for k, (s, e) in enumerate(self.blocks) if s <= a and b <= e), None)

    @cached_property
    def nodes(self) -> list[ast.AST]:
        """Every expression or statement node lying inside a block, in source order."""
        found = [node for node in ast.walk(self.tree)
                 if hasattr(node, "end_col_offset") and self.block_of(*self.span(node)) is not None]
        return sorted(found, key=lambda n: (n.lineno, n.col_offset))

    def ancestors(self, node: ast.AST):
        """The node's parents, innermost first."""
        while id(node) in self.parent:
            node = self.parent[id(node)]
            yield node

    def scope(self, node: ast.AST) -> str:
        """The dotted names of the functions and classes around the node ('' at module level)."""
        names = [a.name for a in self.ancestors(node) if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                        ast.ClassDef))]
        return ".".join(reversed(names))

    def protected(self, node: ast.AST) -> bool:
        """Whether changing the node would likely break indexing or iteration rather than tune behaviour.

        Subscripts and slices, `range(...)` arguments, integers later used as indices, integer offsets
        (`i + 1`), small integers passed to calls (axes, positions), zeros passed to calls (floors such as
        `max(0.0, x)`), integer exponents, and strings used as keys or keyword values are left alone.
        """
        child = node
        for above in self.ancestors(node):
            if isinstance(above, ast.Subscript) and child is above.slice:
                return True
            if isinstance(above, ast.Slice):
                return True
            if isinstance(above, ast.Call) and isinstance(above.func, ast.Name) and above.func.id in (
                    "range", "enumerate", "zip", "reversed", "islice", "isinstance", "getattr", "setattr"):
                return True
            if isinstance(above, ast.keyword) and above.arg in ("axis", "axes", "dtype", "key", "ord", "ddof"):
                return True
            if isinstance(above, ast.Dict) and any(child is k for k in above.keys):
                return True
            if isinstance(above, (ast.stmt, ast.Lambda, ast.comprehension)):
                break
            child = above
        literal = node.operand if isinstance(node, ast.UnaryOp) else node
        value = literal.value if isinstance(literal, ast.Constant) else None
        up = self.parent.get(id(node))
        if isinstance(value, str):
            return isinstance(up, (ast.keyword, ast.JoinedStr))
        if type(value) in (int, float) and value == 0 and isinstance(up, (ast.Call, ast.keyword)):
            return True  # a zero passed to a function: a floor, an origin, a default
        if type(value) is int:
            bound = self._bound_name(node)
            if bound is not None and bound in self._index_names(self._function(node)):
                return True  # a value that is later used as an index
            if isinstance(up, ast.BinOp) and isinstance(up.op, (ast.Add, ast.Sub)):
                return True  # index arithmetic
            if isinstance(up, ast.BinOp) and isinstance(up.op, ast.Pow) and node is up.right:
                return True
            if isinstance(up, ast.Call) and abs(value) <= 2 and any(node is arg for arg in up.args):
                return True
            if isinstance(up, ast.UnaryOp):
                return self.protected(up)
        return False

    def _function(self, node: ast.AST) -> ast.AST:
        return next((a for a in self.ancestors(node) if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef))),
                    self.tree)

    def _index_names(self, scope: ast.AST) -> set[str]:
        """Names used as indices or loop bounds inside `scope`."""
        cached = self._indices.get(id(scope))
        if cached is None:
            cached = set()
            for node in ast.walk(scope):
                if isinstance(node, ast.Subscript):
                    parts = [node.slice]
                elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
                    parts = node.args
                else:
                    continue
                cached |= {n.id for part in parts for n in ast.walk(part) if isinstance(n, ast.Name)}
            self._indices[id(scope)] = cached
        return cached

    def _bound_name(self, node: ast.AST) -> str | None:
        """The name a literal is assigned to, directly or by position in a tuple assignment."""
        up = self.parent.get(id(node))
        if isinstance(up, (ast.Tuple, ast.List)):
            above = self.parent.get(id(up))
            if isinstance(above, ast.Assign) and above.value is up and len(above.targets) == 1:
                target = above.targets[0]
                if isinstance(target, (ast.Tuple, ast.List)) and len(target.elts) == len(up.elts):
                    element = target.elts[[id(e) for e in up.elts].index(id(node))]
                    return element.id if isinstance(element, ast.Name) else None
            return None
        if isinstance(up, ast.Assign) and len(up.targets) == 1 and isinstance(up.targets[0], ast.Name):
            return up.targets[0].id
        if isinstance(up, ast.AugAssign) and isinstance(up.target, ast.Name):
            return up.target.id
        return None

    def edit(self, start: int, end: int, text: str) -> SearchReplace | None:
        """A SEARCH/REPLACE edit for `code[start:end] -> text` (`text_edit`)."""
        return text_edit(self.code, self.blocks, start, end, text)


def text_edit(code: str, blocks: list[tuple[int, int]], start: int, end: int, text: str) -> SearchReplace | None:
    """A SEARCH/REPLACE edit for `code[start:end] -> text`, its SEARCH whole lines grown until unique
    within the block (None: it cannot be made unique there, or the span lies outside every block)."""
    k = next((k for k, (s, e) in enumerate(blocks) if s <= start and end <= e), None)
    if k is None:
        return None
    s, e = blocks[k]
    lo = code.rfind("\n", 0, start) + 1
    if (end > lo and code[end - 1] == "\n") or end == e:  # the change ends a line (or the block)
        hi = end
    else:
        hi = code.find("\n", end)
        hi = len(code) if hi < 0 else hi + 1
    while code.count(code[lo:hi]) > 1 or not code[lo:hi].strip():
        if lo > s:
            lo = code.rfind("\n", 0, lo - 1) + 1
        elif hi < e:
            nxt = code.find("\n", hi)
            hi = len(code) if nxt < 0 else nxt + 1
        else:
            return None
    if lo < s or hi > e:
        return None
    search = code[lo:hi]
    return SearchReplace(search, search[: start - lo] + text + search[end - lo:])


def docstrings(tree: ast.AST) -> set[int]:
    """The ids of the constant nodes that are docstrings (left alone: they change no behaviour)."""
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value,
                                                                                              ast.Constant):
            if isinstance(body[0].value.value, str):
                found.add(id(body[0].value))
    return found
