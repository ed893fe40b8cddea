"""Numeric constants and their step sizes: one per constant, adapted to success as an evolution strategy does.

A constant's key names it as stably as the code allows (`refine.lr` for a default argument, `WEIGHT` for a
module-level assignment, `solve#3` for the fourth anonymous number in `solve`), so what the engine learns
about it follows it from parent to child. A step that improved its parent widens the step size; one that
did not narrows it, so that about one step in five succeeds, and one that left the score exactly as it was
widens it (too short to change a decision). Constants whose steps improved are drawn more often than those
whose steps never did, and those whose steps change nothing (dead code, a flat stretch) less; half the
steps on a constant follow the direction of its last step that improved (a momentum, as a line search has).
The last step that improved (`streak`) can be repeated on the best program, longer each time, until a step
as long fails (a pattern search).
"""

from __future__ import annotations

import ast
import math
import random
from collections import Counter
from dataclasses import dataclass

from evolve.proposals.llm.offline.source import Change, Source

__all__ = ["Number", "StepSizes", "format_number", "numbers", "perturb"]


@dataclass(frozen=True)
class Number:
    """A numeric literal the engine may tune: where it lies, its value and its key."""

    start: int
    end: int
    value: int | float
    key: str
    negated_in_expression: bool  # its text sits right after a binary or unary operator


def _is_number(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def numbers(src: Source) -> list[Number]:
    """The block's tunable numeric literals, in source order (protected ones left out)."""
    cached = src.memo.get("numbers")
    if cached is None:
        cached = src.memo["numbers"] = _numbers(src)
    return cached


def _numbers(src: Source) -> list[Number]:
    found: list[Number] = []
    seen_keys: Counter[str] = Counter()
    anonymous: Counter[str] = Counter()
    inner: set[int] = set()
    for node in src.nodes:
        if id(node) in inner:
            continue
        if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
                and isinstance(node.operand, ast.Constant) and _is_number(node.operand.value)):
            inner.add(id(node.operand))
            value = -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
        elif isinstance(node, ast.Constant) and _is_number(node.value):
            value = node.value
        else:
            continue
        if src.protected(node):
            continue
        scope = src.scope(node)
        base = _name(src, node)
        if base is None:
            base = f"{scope or '<module>'}#{anonymous[scope]}"
            anonymous[scope] += 1
        else:
            base = f"{scope}.{base}" if scope else base
        key = base if not seen_keys[base] else f"{base}#{seen_keys[base]}"
        seen_keys[base] += 1
        up = src.parent.get(id(node))
        found.append(Number(*src.span(node), value, key, isinstance(up, (ast.BinOp, ast.UnaryOp))))
    return found


def _name(src: Source, node: ast.AST) -> str | None:
    """The name a literal is bound to, where it has one: an assignment's target, a keyword, a default."""
    up = src.parent.get(id(node))
    if isinstance(up, ast.Assign) and len(up.targets) == 1 and isinstance(up.targets[0], ast.Name):
        return up.targets[0].id
    if isinstance(up, (ast.AnnAssign, ast.AugAssign)) and isinstance(up.target, ast.Name):
        return up.target.id
    if isinstance(up, ast.keyword) and up.arg:
        return up.arg
    if isinstance(up, ast.arguments):
        positional = up.posonlyargs + up.args
        for arg, default in zip(positional[len(positional) - len(up.defaults):], up.defaults):
            if default is node:
                return arg.arg
        for arg, default in zip(up.kwonlyargs, up.kw_defaults):
            if default is node:
                return arg.arg
    return None


class StepSizes:
    """A step size per constant key, on a log scale (a zero moves to a magnitude drawn from 0.01 to 10).

    Each trial draws its own step around the key's size, and one trial in ten a wide one (0.5 or more)
    so that a constant whose size has shrunk can still jump; a success sets the size to 1.25 times the
    step that succeeded, a failure shrinks it by 0.95 (balanced at a success rate of about one in five), and
    a step that changed nothing (`unchanged`) sets it to 1.25 times the longer of the two. Each key also keeps
    its tries, successes and steps that changed nothing (`weight`) and the direction of its last success;
    `streak` is the last step that improved (key, direction, step size), dropped when a step on that key at
    least as long fails (and taken up again when that step only changed nothing).
    """

    def __init__(self, initial: float = 0.2, low: float = 0.005, high: float = 2.0) -> None:
        self.initial, self.low, self.high = initial, low, high
        self._sizes: dict[str, float] = {}
        self._record: dict[str, list[int]] = {}  # tries, improvements
        self._direction: dict[str, int] = {}
        self._idle: dict[str, int] = {}  # steps that left the score exactly as it was
        self.streak: tuple[str, int, float] | None = None  # the last step that improved: key, direction, sigma
        self._dropped: tuple[str, int, float] | None = None  # the streak the last failed step ended

    def size(self, key: str) -> float:
        return self._sizes.get(key, self.initial)

    def weight(self, key: str) -> float:
        """How much to favour `key` when drawing a constant: its success rate, as if it began 1 in 3, times the
        share of its steps that changed the score at all (as if the first had): a number in code that never
        runs, or on a flat stretch, is drawn less and less."""
        tries, wins = self._record.get(key, (0, 0))
        return (wins + 1) / (tries + 3) * (tries - self._idle.get(key, 0) + 1) / (tries + 1)

    def direction(self, key: str) -> int:
        """The sign of the last step on `key` that improved its parent (0: none yet)."""
        return self._direction.get(key, 0)

    def draw(self, key: str, rng: random.Random) -> float:
        """A trial step size for `key`, spread around its current size."""
        size = self.size(key) if rng.random() >= 0.1 else max(self.size(key), 0.5)
        return min(self.high, max(self.low, size * math.exp(0.3 * rng.gauss(0.0, 1.0))))

    def unchanged(self, key: str, sigma: float) -> None:
        """Learn that a step of `sigma` on `key` left the score exactly as it was: the step was too short to
        change a decision (or the number never runs), so the next is longer."""
        self._idle[key] = self._idle.get(key, 0) + 1
        if self._dropped is not None and self._dropped[0] == key:  # it did not overshoot: the line search goes on
            self.streak, self._dropped = self._dropped, None
        self._sizes[key] = min(self.high, max(self.size(key), sigma) * 1.25)

    def update(self, key: str, sigma: float, improved: bool, direction: int = 0) -> None:
        """Learn from a child whose step on `key` used `sigma` in `direction`."""
        size = min(self.high, sigma * 1.25) if improved else max(self.low, self.size(key) * 0.95)
        self._sizes[key] = size
        record = self._record.setdefault(key, [0, 0])
        record[0] += 1
        record[1] += improved
        if improved and direction:
            self._direction[key] = direction
            self.streak, self._dropped = (key, direction, sigma), None
        elif not improved and self.streak is not None and self.streak[0] == key and sigma >= self.streak[2]:
            self._dropped, self.streak = self.streak, None  # the line search overshot: back to steps by weight


def format_number(value: float, sigma: float) -> str:
    """The literal for `value`, with enough significant digits for a step of relative size `sigma`."""
    if isinstance(value, int):
        return str(value)
    digits = min(12, max(3, math.ceil(-math.log10(max(sigma, 1e-12))) + 2))
    text = f"{value:.{digits}g}"
    return text if any(c in text for c in ".en") else text + ".0"


def perturb(number: Number, sigma: float, rng: random.Random, direction: int = 0) -> str | None:
    """A new literal for the number, a step of size `sigma` away (None: the step rounds back to it); a
    `direction` (+1, -1) gives the step's sign."""
    value = number.value
    step = rng.gauss(0.0, 1.0)
    if direction:
        step = direction * abs(step)
    if isinstance(value, int):
        if abs(value) < 10:
            jump = rng.choice((1, 1, 2))
            new: int | float = value + (direction or rng.choice((-1, 1))) * jump
            if value >= 0:
                new = max(0, new)
        else:
            new = round(value * math.exp(sigma * step))
            if new == value:
                new = value + (1 if step > 0 else -1)
    elif value == 0:  # a weight switched off: its scale is unknown, so any from 0.01 to 10 is tried
        new = (1 if step > 0 else -1) * 10 ** rng.uniform(-2.0, 1.0)
        sigma = 0.1
    else:  # the sign is kept: a step size, a rate or a bound rarely makes sense negated
        new = value * math.exp(sigma * step)
    text = format_number(new, sigma)
    if float(text) == value:
        return None
    if text.startswith("-") and number.negated_in_expression:
        text = f"({text})"
    return text


def constant_change(src: Source, steps: StepSizes, rng: random.Random, follow: bool = False) -> Change | None:
    """A step on one of the block's numbers, drawn by `steps.weight`, with the step size its key has learnt
    and, half the time, in the direction of its last success. `follow`: where the last step that improved
    was on one of the block's numbers, step that number again in the same direction, with a step up to
    twice as long (a pattern search's expanding line search)."""
    found = numbers(src)
    if not found:
        return None
    streak = steps.streak if follow else None
    chosen = [n for n in found if streak is not None and n.key == streak[0]]
    if streak is not None and chosen:
        number, direction = chosen[0], streak[1]
        sigma = min(steps.high, max(steps.low, streak[2] * 2.0 ** rng.uniform(-0.5, 1.0)))
    else:
        number = rng.choices(found, weights=[steps.weight(n.key) for n in found])[0]
        sigma = steps.draw(number.key, rng)
        direction = steps.direction(number.key) if rng.random() < 0.5 else 0
    text = perturb(number, sigma, rng, direction)
    if text is None:
        return None
    old = src.code[number.start:number.end]
    moved = 1 if float(text.strip("()")) > number.value else -1
    return Change(number.start, number.end, text, "constant", f"{number.key}: {old} -> {text}",
                  key=number.key, sigma=sigma, direction=moved)
