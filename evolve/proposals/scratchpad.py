"""The scratchpad: a short note of what has worked so far, rewritten every few iterations for prompts.

It is built from the campaign's own records, with no extra model call: the largest gains over the best
program of the child's island until then (the initial program seeds every island; a repair of a weak
parent that stays below the island's best is no gain), with the proposer's own one-line explanation, and
the failures that keep coming back.
"""

from __future__ import annotations

import collections
import heapq
import re

from evolve.program import Program, ProgramStatus
from evolve.proposals.edits import is_structured, rationale
from evolve.storage.database import ProgramDatabase
from sandboxes import candidate_text

__all__ = ["Scratchpad", "explanation"]

_EDIT_START = re.compile(r"^(<{5,}\s*SEARCH|```)", re.MULTILINE)


def explanation(proposal: str, limit: int = 160) -> str:
    """The proposer's words before its first edit (a structured reply's rationales), on one line."""
    match = _EDIT_START.search(proposal)
    text = " ".join((rationale(proposal) if is_structured(proposal) else
                     proposal[: match.start()] if match else proposal).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Scratchpad:
    """Keeps the best gains and the common failures; `render` turns them into a few lines."""

    def __init__(self, gains: int = 6, failures: int = 3) -> None:
        self._gains: list[tuple[float, int, str]] = []  # a min-heap of (gain, program id, note)
        self._size, self._failure_lines = gains, failures
        self._failures: collections.Counter[str] = collections.Counter()
        self._island_best: dict[int, float] = {}
        self._initial: float | None = None
        self.text = ""

    def _gain(self, score: float, island: int, iteration: int) -> float | None:
        """How far a valid program's `score` beats its island's best so far (None: it does not); notes it."""
        if iteration == 0 and self._initial is None:
            self._initial = score
            return None
        best = self._island_best.get(island, self._initial)
        self._island_best[island] = score if best is None else max(best, score)
        return score - best if best is not None and score > best else None

    def observe(self, program: Program, parent: Program | None = None) -> None:
        """Take note of one committed program (`parent` is not needed: gains are against the island's best)."""
        if program.status is ProgramStatus.VALID and program.score is not None:
            gain = self._gain(program.score, program.island, program.iteration)
            if gain is not None:
                self._push((gain, program.id, explanation(program.proposal) or "(no explanation given)"))
        else:
            self._count_failure(program.status, program.error)

    def _push(self, item: tuple[float, int, str]) -> None:
        if len(self._gains) < self._size:
            heapq.heappush(self._gains, item)
        else:
            heapq.heappushpop(self._gains, item)

    def _count_failure(self, status: ProgramStatus, error: str) -> None:
        if status in (ProgramStatus.INVALID, ProgramStatus.EDIT_FAILED) and error:
            first = error.strip().splitlines()[-1] if status is ProgramStatus.INVALID else error
            self._failures[candidate_text(re.sub(r"\d+(\.\d+)?", "N", first)[:120], "prompt")] += 1

    def restore(self, database: ProgramDatabase, failures: int = 5000) -> None:
        """Observe a resumed campaign's history from small columns: every valid program's score against its
        island's best, the proposals of the largest gains only, and the reasons of the latest `failures`
        failures."""
        best: list[tuple[float, int]] = []  # a min-heap of (gain, program id)
        valid = ProgramStatus.VALID.value
        for pid, status, score, island, iteration in database.columns("id", "status", "score", "island", "iteration"):
            if status != valid or score is None:
                continue
            gain = self._gain(score, island, iteration)
            if gain is not None:
                item = (gain, pid)
                if len(best) < self._size:
                    heapq.heappush(best, item)
                else:
                    heapq.heappushpop(best, item)
        programs = {p.id: p for p in database.get_many([pid for _, pid in best])}
        for gain, pid in best:
            self._push((gain, pid, explanation(programs[pid].proposal) or "(no explanation given)"))
        for status, error in database.columns("status", "error", statuses=(ProgramStatus.INVALID,
                                                                            ProgramStatus.EDIT_FAILED), last=failures):
            self._count_failure(ProgramStatus(status), error)
        self.render()

    def render(self) -> str:
        """Rewrite the note from what has been observed; returns (and keeps) the new text."""
        lines = []
        if self._gains:
            lines.append("What has improved on the best program so far (the gain, and the idea):")
            lines += [f"- {gain:+.6g}: {note}" for gain, _, note in sorted(self._gains, reverse=True)]
        common = [(reason, n) for reason, n in self._failures.most_common(self._failure_lines) if n > 1]
        if common:
            lines.append("What keeps failing:")
            lines += [f"- {n}x {reason}" for reason, n in common]
        self.text = "\n".join(lines)
        return self.text
