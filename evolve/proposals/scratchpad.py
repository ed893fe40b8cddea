"""The scratchpad: a short note of what has worked so far, rewritten every few iterations for prompts.

It is built from the campaign's own records, with no extra model call: the largest gains over a parent
with the proposer's own one-line explanation, and the failures that keep coming back.
"""

from __future__ import annotations

import collections
import heapq
import re

from evolve.program import Program, ProgramStatus

__all__ = ["Scratchpad", "explanation"]

_EDIT_START = re.compile(r"^(<{5,}\s*SEARCH|```)", re.MULTILINE)


def explanation(proposal: str, limit: int = 160) -> str:
    """The proposer's words before its first edit, on one line."""
    match = _EDIT_START.search(proposal)
    text = " ".join((proposal[: match.start()] if match else proposal).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Scratchpad:
    """Keeps the best gains and the common failures; `render` turns them into a few lines."""

    def __init__(self, gains: int = 6, failures: int = 3) -> None:
        self._gains: list[tuple[float, int, str]] = []  # a min-heap of (gain, program id, note)
        self._size, self._failure_lines = gains, failures
        self._failures: collections.Counter[str] = collections.Counter()
        self.text = ""

    def observe(self, program: Program, parent: Program | None) -> None:
        """Take note of one committed program."""
        if program.status is ProgramStatus.VALID and parent is not None and parent.score is not None \
                and program.score > parent.score:
            note = explanation(program.proposal) or "(no explanation given)"
            item = (program.score - parent.score, program.id, note)
            if len(self._gains) < self._size:
                heapq.heappush(self._gains, item)
            else:
                heapq.heappushpop(self._gains, item)
        elif program.status in (ProgramStatus.INVALID, ProgramStatus.EDIT_FAILED) and program.error:
            first = program.error.strip().splitlines()[-1] if program.status is ProgramStatus.INVALID \
                else program.error
            self._failures[re.sub(r"\d+(\.\d+)?", "N", first)[:120]] += 1

    def render(self) -> str:
        """Rewrite the note from what has been observed; returns (and keeps) the new text."""
        lines = []
        if self._gains:
            lines.append("What has improved programs so far (gain over the parent, and the idea):")
            lines += [f"- {gain:+.6g}: {note}" for gain, _, note in sorted(self._gains, reverse=True)]
        common = [(reason, n) for reason, n in self._failures.most_common(self._failure_lines) if n > 1]
        if common:
            lines.append("What keeps failing:")
            lines += [f"- {n}x {reason}" for reason, n in common]
        self.text = "\n".join(lines)
        return self.text
