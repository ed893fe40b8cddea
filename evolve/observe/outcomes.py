"""What became of each model's proposals: applied, edit failures by kind, transport failures.

Everything here is derived from the `programs` rows (their proposer, status and error), so `evolve
status`, the report and a running campaign read the same figures, and a campaign stopped for replies
that never apply can be recognised afterwards from its rows alone.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from evolve.errors import ConfigError
from evolve.program import Program, ProgramStatus

__all__ = ["EDIT_FAILURE_KINDS", "PROMPT_TOO_LARGE", "ModelOutcomes", "UnappliedWatch", "counted_outcomes",
           "edit_failure_kind", "model_outcomes", "outcome_kind", "top_reasons", "trailing_unapplied",
           "unapplied_message"]

_log = logging.getLogger("evolve.engine.campaign")

# (kind, fragments of EditError messages): the first kind with a matching fragment wins
EDIT_FAILURE_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cut off at max_tokens", ("cut off at max_tokens", "never closed")),
    ("no edit found", ("holds neither", "holds no SEARCH/REPLACE", "no SEARCH/REPLACE")),
    ("SEARCH not found", ("not found in the program", "already changed by an earlier edit")),
    ("outside EVOLVE-BLOCKs", ("outside the EVOLVE-BLOCK", "EVOLVE-BLOCK markers", "EVOLVE-BLOCK-")),
    ("ambiguous", ("occurs", "matches one place", "different full programs")),
    ("malformed edit", ("======= line", ">>>>>>> REPLACE", "<<<<<<< SEARCH", "SEARCH part is empty")),
    ("no change", ("leaves the program unchanged",)),
)


def edit_failure_kind(error: str) -> str:
    """The kind of an edit failure's reason (`SEARCH not found`, `no edit found`, ...; else `other`)."""
    for kind, fragments in EDIT_FAILURE_KINDS:
        if any(fragment in error for fragment in fragments):
            return kind
    return "other"


PROMPT_TOO_LARGE = "prompt too large"


def outcome_kind(status: ProgramStatus, error: str) -> str:
    """What `counted_outcomes` needs of a proposal's error: an edit failure's kind, `PROMPT_TOO_LARGE` for a
    prompt that was never sent, else ""."""
    if status is ProgramStatus.EDIT_FAILED:
        return edit_failure_kind(error)
    if status is ProgramStatus.PROPOSAL_FAILED and "context_tokens" in error and "prompt needs about" in error:
        return PROMPT_TOO_LARGE
    return ""


def top_reasons(reasons: collections.Counter, n: int = 3) -> str:
    """`SEARCH not found 14, no edit found 6` (the commonest first)."""
    return ", ".join(f"{kind} {count}" for kind, count in reasons.most_common(n)) or "none"


@dataclass
class ModelOutcomes:
    """One model's proposals (the initial program not counted)."""

    proposals: int = 0
    applied: int = 0  # the edit applied: evaluated, or dropped as a duplicate or near-duplicate
    edit_failed: int = 0
    edit_failures: collections.Counter = field(default_factory=collections.Counter)  # by kind
    transport_failed: int = 0  # no usable answer: network, HTTP errors, timeouts, empty replies
    prompt_too_large: int = 0  # never sent: the prompt did not fit the model's context
    evaluated: int = 0
    valid: int = 0

    def reasons(self, n: int = 3) -> str:
        """The commonest edit failure kinds, or `-`."""
        return top_reasons(self.edit_failures, n) if self.edit_failures else "-"


def model_outcomes(programs: Iterable[Program]) -> dict[str, ModelOutcomes]:
    """Per proposer: what became of its proposals, from the programs' status and error columns."""
    return counted_outcomes((p.proposer, p.status, outcome_kind(p.status, p.error), 1) for p in programs
                            if p.iteration > 0 and p.parent_id is not None)


def counted_outcomes(rows: Iterable[tuple[str, ProgramStatus, str, int]]) -> dict[str, ModelOutcomes]:
    """`model_outcomes` from (proposer, status, kind, how many) of proposals, where kind is the error's
    `outcome_kind` (`evolve status` tallies them from the rows)."""
    out: dict[str, ModelOutcomes] = collections.defaultdict(ModelOutcomes)
    for proposer, status, kind, n in rows:
        row = out[proposer]
        row.proposals += n
        if status is ProgramStatus.EDIT_FAILED:
            row.edit_failed += n
            row.edit_failures[kind] += n
        elif status is ProgramStatus.PROPOSAL_FAILED:
            if kind == PROMPT_TOO_LARGE:
                row.prompt_too_large += n
            else:
                row.transport_failed += n
        else:
            row.applied += n
            if status.is_evaluated():
                row.evaluated += n
                row.valid += n * (status is ProgramStatus.VALID)
    return dict(out)


def trailing_unapplied(programs: Iterable[Program]) -> tuple[int, collections.Counter, str]:
    """The run of answered proposals that did not apply at the end of the campaign (in commit order;
    transport failures neither count nor break it): its length, its reasons by kind, the last error."""
    run, reasons, last = 0, collections.Counter(), ""
    for p in programs:
        if p.iteration <= 0 or p.status is ProgramStatus.PROPOSAL_FAILED:
            continue
        if p.status is ProgramStatus.EDIT_FAILED:
            run += 1
            reasons[edit_failure_kind(p.error)] += 1
            last = p.error
        else:
            run, reasons, last = 0, collections.Counter(), ""
    return run, reasons, " ".join(last.split())[:300]


def unapplied_message(n: int, reasons: collections.Counter, last: str) -> str:
    """The one line that says why a run of proposals did not apply."""
    return (f"{n} proposals in a row could not be applied; top reasons: {top_reasons(reasons)}; last: {last}. "
            "The model may not follow the SEARCH/REPLACE format (try a larger model, or prompt.full=1 for whole "
            "programs), or its replies are cut off (raise max_tokens)")


class UnappliedWatch:
    """Counts, in commit order, answered proposals in a row whose edit could not be applied.

    Every `limit` of them in a row it acts: `stop` sets `stopped` (the campaign ends with `message`),
    `warn` logs the same line as a warning and carries on.
    """

    def __init__(self, limit: int | None, action: str = "stop") -> None:
        if action not in ("stop", "warn"):
            raise ConfigError(f"llm.on_unapplied={action!r}: use stop or warn")
        self.limit, self.action = limit, action
        self.in_a_row = 0
        self.reasons: collections.Counter = collections.Counter()
        self.last_error = ""
        self.warnings = 0
        self.message = ""
        self.stopped = False

    def observe(self, program: Program) -> None:
        """Book one committed iteration."""
        if program.status is ProgramStatus.PROPOSAL_FAILED:
            return
        if program.status is not ProgramStatus.EDIT_FAILED:
            self.in_a_row, self.reasons, self.last_error = 0, collections.Counter(), ""
            return
        self.in_a_row += 1
        self.reasons[edit_failure_kind(program.error)] += 1
        self.last_error = " ".join(program.error.split())[:300]
        if not self.limit or self.in_a_row % self.limit:
            return
        self.message = unapplied_message(self.in_a_row, self.reasons, self.last_error)
        if self.action == "stop":
            self.stopped = True
            return
        self.warnings += 1
        _log.warning("%s; going on (llm.on_unapplied=warn, llm.max_unapplied_in_a_row=%d)", self.message,
                     self.limit)
