"""An estimation-of-distribution step on the numbers the parent shares with the elites shown beside it.

Where the parent and other programs differ only in their numbers (statements aligned as in `crossover`),
their numbers are points of one parameter space. With two or more such programs the step is differential
evolution's current-to-best: each number moves towards the best program's value plus a scaled difference
of two others' (`p + F (best - p) + F (a - b)`); with one, all the numbers move together along the line
through both programs (a line search). A random subset of the numbers moves (at least one); a number
whose values all share a sign keeps it; protected integers (indices, loop bounds) only take another
program's value.
"""

from __future__ import annotations

import ast
import random

from evolve.proposals.llm.offline.constants import format_number
from evolve.proposals.llm.offline.crossover import aligned
from evolve.proposals.llm.offline.source import Change, Source

__all__ = ["elites"]


def _shared(src: Source, donors: list[Source]) -> dict[int, tuple[ast.Constant, dict[int, int | float]]]:
    """Per parent number (by node id): the node and each donor's value for it, where a donor's differs."""
    found: dict[int, tuple[ast.Constant, dict[int, int | float]]] = {}
    for k, donor in enumerate(donors):
        for a, value in _differences(src, donor):
            found.setdefault(id(a), (a, {}))[1][k] = value
    return found


def _differences(src: Source, donor: Source) -> list[tuple[ast.Constant, int | float]]:
    """The parent's numbers whose aligned counterparts in `donor` differ, with the donor's values."""
    key = ("differences", donor.code)
    found = src.memo.get(key)
    if found is None:
        found = src.memo[key] = [
            (a, b.value) for p, d in aligned(src, donor)[1] for a, b in zip(ast.walk(p), ast.walk(d))
            if isinstance(a, ast.Constant) and type(a.value) in (int, float) and type(b.value) is type(a.value)
            and a.value != b.value and hasattr(a, "lineno")]
    return found


def elites(src: Source, donors: list[tuple[float, Source]], score: float, rng: random.Random) -> list[Change] | None:
    """Move a subset of the parent's numbers towards the elites' (None: no other program shares them)."""
    ranked = sorted(donors, key=lambda d: -d[0])
    shared = _shared(src, [d for _, d in ranked])
    if not shared:
        return None
    nodes = list(shared.values())
    rate = rng.uniform(0.3, 1.0)
    chosen = [n for n in nodes if rng.random() < rate] or [rng.choice(nodes)]
    factor = rng.uniform(0.4, 0.9)
    line = rng.uniform(-0.25, 1.25)
    many = len({k for _, values in chosen for k in values}) >= 2
    a, b = rng.sample(range(len(ranked)), 2) if len(ranked) >= 2 else (0, 0)
    changes: list[Change] = []
    for node, values in sorted(chosen, key=lambda n: (n[0].lineno, n[0].col_offset)):
        p = node.value
        if src.protected(node) or (isinstance(p, int) and abs(p) < 10):
            new: float = values[min(values)] if rng.random() < 0.5 else rng.choice(list(values.values()))
        elif many:
            best = values.get(0, p) if ranked[0][0] > score else p
            new = p + factor * (best - p) + factor * (values.get(a, p) - values.get(b, p))
        else:
            new = p + line * (next(iter(values.values())) - p)
        seen = [p, *values.values()]
        if (all(v > 0 for v in seen) and new <= 0) or (all(v < 0 for v in seen) and new >= 0):
            new = min(seen, key=abs) / 2
        if isinstance(p, int):
            new = round(new)
        spread = (max(seen) - min(seen)) / max(*(abs(v) for v in seen), 1e-12)
        text = format_number(new, max(spread / 10, 1e-9))
        if float(text) == p:
            continue
        if text.startswith("-") and isinstance(src.parent.get(id(node)), (ast.BinOp, ast.UnaryOp)):
            text = f"({text})"
        start, end = src.span(node)
        changes.append(Change(start, end, text, "elites", f"{src.code[start:end]} -> {text}"))
    return changes or None
