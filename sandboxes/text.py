"""The one gate for text that comes from a candidate: its output, its error messages, feedback built from
what it returned, anything it could have written.

Every such string passes `candidate_text` before it is used, with the use named: the use sets the size cap
(`TEXT_CAPS`), and at every use the text loses what a terminal would obey (escape sequences, control
characters, bidirectional overrides) and what would not encode (lone surrogates). The gate is idempotent,
so a string may pass it at each layer it crosses. HTML is escaped where HTML is built, not here: the same
text also goes to prompts and terminals, where entities would be noise.
"""

from __future__ import annotations

import re

__all__ = ["TEXT_CAPS", "candidate_text"]

TEXT_CAPS: dict[str, int] = {
    "result": 16_000,    # what a sandbox session's error or the cascade's result carries (feedback, output)
    "database": 16_000,  # one stored field (feedback, error, a held-out result's feedback)
    "prompt": 4_000,     # one piece of a prompt (the parent's feedback, a recent failure, a scratchpad line)
    "terminal": 2_000,   # one message printed on a terminal
    "web": 16_000,       # one field of the web view or report.html
}

# ECMA-48: CSI (ESC [ or 0x9b) parameters, intermediates, a final byte; the string controls OSC, DCS, SOS,
# PM and APC (ESC ] P X ^ _) up to their terminator or the line's end; any other escape (ESC c resets
# the terminal). Possessive: no backtracking, linear in the text whatever a candidate writes.
_SEQUENCES = re.compile(r"(?:\x1b\[|\x9b)[0-?]*+[ -/]*+[@-~]?"
                        r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c\n]*+(?:\x07|\x1b\\|\x9c)?"
                        r"|\x1b[ -/]*+[0-~]?")
# what is left of controls (C0 but tab and newline, DEL, C1) and the bidirectional embeddings, overrides
# and isolates that make a line read otherwise than it is
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NEWLINES = re.compile(r"\r\n?")


def candidate_text(text: object, use: str, limit: int | None = None) -> str:
    """Return `text` fit for `use` (a key of `TEXT_CAPS`): no controls, at most its cap (or `limit`, if
    lower) characters, the middle cut out of a longer one with a note of how much."""
    if use not in TEXT_CAPS:
        raise ValueError(f"use={use!r}: candidate text is gated for one of {', '.join(TEXT_CAPS)}")
    cap = TEXT_CAPS[use] if limit is None else max(0, min(limit, TEXT_CAPS[use]))
    text = text if isinstance(text, str) else str(text)
    total = len(text)
    if total > 2 * cap:  # only what can be kept is cleaned: a candidate's text may be megabytes
        text = text[:cap] + text[-cap:]
    text = _NEWLINES.sub("\n", text)
    text = _CONTROLS.sub("", _SEQUENCES.sub("", text))
    text = text.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate becomes "?"
    if len(text) <= cap:
        return text
    line = "\n" if "\n" in text else " "  # a one-line text stays one line
    note = f"{line}[... cut: {total} characters in all ...]{line}"
    room = cap - len(note)
    if room < 2:
        return text[:cap]
    head = room // 2
    return text[:head] + note + text[len(text) - (room - head):]
