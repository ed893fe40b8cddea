"""Structured edits: a JSON schema that can only express edits of the parent, and its replies as edits.

With `llm.edit_format=structured` the model is asked, through the server's constrained decoding, for

    {"edits": [{"block": 1, "first_line": "...", "last_line": "...", "replacement": "...", "rationale": "..."}]}

`block` is an EVOLVE-BLOCK's number (1 for the first); `first_line` and `last_line` are anchors: lines of
that block, written without their indentation, each an enum of the block's lines that occur there once
(a 135M model copies a line it was shown more reliably than it counts lines); the lines from the first
anchor to the last, both included, are replaced by `replacement`, re-indented to where they stood. A reply
becomes the same `SearchReplace` edits that a text diff gives, so everything downstream is unchanged.
What the schema cannot say (anchors in the wrong order) is read the one way it can mean; what does not
apply is an `EditError` with its reason.
"""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

from evolve.errors import EditError
from evolve.proposals.edits import SearchReplace, evolve_blocks

__all__ = ["MAX_EDITS", "RESPONSE_FORMATS", "anchors", "edit_schema", "is_structured", "read_reply", "response_format",
           "to_edits"]

MAX_EDITS = 3  # edits per reply: a short reply is finished before max_tokens, even by a small model
_FIELDS = ("block", "first_line", "last_line", "replacement", "rationale")
_JSON_FENCE = re.compile(r"\A\s*(`{3,}|~{3,})[ \t]*(?:json)?[ \t]*\n(?P<body>.*?)\n[ \t]*\1[ \t]*\Z",
                         re.DOTALL | re.IGNORECASE)


def _block_lines(code: str) -> list[list[str]]:
    """Each EVOLVE-BLOCK's lines, with their newlines."""
    return [code[start:end].splitlines(keepends=True) for start, end in evolve_blocks(code)]


def anchors(lines: list[str]) -> list[str]:
    """The lines an edit may name in this block: non-blank, stripped, found there once, and free of quotes
    and backslashes (llama-cpp-python's schema-to-grammar converter mis-escapes them in an enum, and its
    server then fails; a span can still cover such lines)."""
    stripped = [line.strip() for line in lines]
    return [text for text in dict.fromkeys(stripped)
            if text and stripped.count(text) == 1 and '"' not in text and "\\" not in text]


def _edit_schema(block: int, names: list[str]) -> dict[str, Any]:
    line = {"type": "string", "enum": names}
    return {"type": "object",
            "properties": {"block": {"type": "integer", "enum": [block]}, "first_line": line, "last_line": line,
                           "replacement": {"type": "string"}, "rationale": {"type": "string"}},
            "required": list(_FIELDS), "additionalProperties": False}


def edit_schema(code: str) -> dict[str, Any] | None:
    """The JSON schema of a reply of edits to `code`; None when no block has a line to name."""
    options = [_edit_schema(n, names) for n, lines in enumerate(_block_lines(code), 1) if (names := anchors(lines))]
    if not options:
        return None
    items = options[0] if len(options) == 1 else {"anyOf": options}
    return {"type": "object",
            "properties": {"edits": {"type": "array", "minItems": 1, "maxItems": MAX_EDITS, "items": items}},
            "required": ["edits"], "additionalProperties": False}


def is_structured(text: str) -> bool:
    """Whether a reply is a JSON object (bare or in a json fence) rather than text edits."""
    match = _JSON_FENCE.match(text)
    return (match["body"] if match else text).lstrip().startswith("{")


def read_reply(text: str) -> dict[str, Any]:
    """The reply's JSON object; EditError when it does not parse. A reply cut off inside the last edit's
    rationale (the only free text after the code) still counts: its edits are whole."""
    match = _JSON_FENCE.match(text)
    body = (match["body"] if match else text).strip()
    try:
        reply = json.loads(body)
    except ValueError as exc:
        try:
            reply = json.loads(body + '"}]}')
            if not isinstance(reply, dict) or "rationale" not in reply["edits"][-1]:
                raise ValueError
        except (ValueError, KeyError, IndexError, TypeError):
            raise EditError(f"the JSON reply does not parse ({exc}); reply with one JSON object of edits, "
                            "short enough to finish") from None
    if not isinstance(reply, dict):
        raise EditError(f"the JSON reply is a {type(reply).__name__}, not an object with an `edits` list")
    return reply


def _indent(lines: list[str]) -> str:
    """The indentation that every non-blank line shares."""
    prefixes = [line[:len(line) - len(line.lstrip(" \t"))] for line in lines if line.strip()]
    common = prefixes[0] if prefixes else ""
    for prefix in prefixes[1:]:
        while not prefix.startswith(common):
            common = common[:-1]
    return common


def _replacement(text: str, indent: str) -> str:
    """The replacement code, re-indented so its least indented lines stand where the replaced ones did."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    if not text.strip():
        return ""
    return textwrap.indent(textwrap.dedent(text), indent) + "\n"


def _field(edit: dict[str, Any], key: str, kind: type, n: int) -> Any:
    value = edit.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise EditError(f"structured edit {n}: `{key}` is {'missing' if value is None else repr(value)[:60]}; "
                        f"give it as a JSON {'integer' if kind is int else 'string'}")
    return value


def _span(block: list[str], code: str, first: int, last: int) -> tuple[int, int]:
    """Lines first..last of the block, widened within it until their text occurs once in `code`."""
    while code.count("".join(block[first:last + 1])) > 1:
        if first > 0:
            first -= 1
        elif last < len(block) - 1:
            last += 1
        else:
            break
    return first, last


def to_edits(code: str, reply: dict[str, Any]) -> list[SearchReplace]:
    """The SEARCH/REPLACE edits of `code` that a structured reply describes; EditError naming what is wrong."""
    edits = reply.get("edits")
    if not isinstance(edits, list) or not edits:
        raise EditError("the JSON reply has no `edits` list; give at least one edit")
    blocks = _block_lines(code)
    out: list[SearchReplace] = []
    for n, edit in enumerate(edits, 1):
        if not isinstance(edit, dict):
            raise EditError(f"structured edit {n} is not an object with block, first_line, last_line and replacement")
        number = _field(edit, "block", int, n)
        if not 1 <= number <= len(blocks):
            raise EditError(f"structured edit {n}: block={number}, but the program has {len(blocks)} EVOLVE-BLOCK"
                            f"{'s' if len(blocks) != 1 else ''}; number them from 1")
        lines = blocks[number - 1]
        stripped = [line.strip() for line in lines]
        names = anchors(lines)
        found = []
        for key in ("first_line", "last_line"):
            text = _field(edit, key, str, n).strip()
            if text not in names:
                why = "occurs more than once in" if text and stripped.count(text) > 1 else "is not a line of"
                raise EditError(f"structured edit {n}: {key} {text[:80]!r} {why} EVOLVE-BLOCK {number}; "
                                "name a line that occurs there once, as written")
            found.append(stripped.index(text))
        first, last = sorted(found)  # two anchors name one span, whichever comes first
        replacement = _replacement(_field(edit, "replacement", str, n), _indent(lines[first:last + 1]))
        start, end = _span(lines, code, first, last)
        new = "".join(lines[start:first]) + replacement + "".join(lines[last + 1:end + 1])
        out.append(SearchReplace("".join(lines[start:end + 1]), new))
    return out


# the shapes of `response_format` that carry a schema, in the order tried: OpenAI's structured outputs (also
# vLLM, llama.cpp's own server, Ollama's OpenAI API), then llama-cpp-python's server, which takes only this one
RESPONSE_FORMATS = ("json_schema", "json_object")


def response_format(kind: str, schema: dict[str, Any], name: str = "edits") -> dict[str, Any]:
    """The request's `response_format` that asks for `schema` in the shape `kind` (`RESPONSE_FORMATS`)."""
    if kind == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}
    return {"type": "json_object", "schema": schema}
