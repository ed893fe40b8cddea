"""Structured edits: a JSON schema that can only express edits of the parent, and its replies as edits.

With `llm.edit_format=structured` the model is asked, through the server's constrained decoding, for

    {"edits": [{"block": 1, "first_line": "...", "last_line": "...", "replacement": "...", "rationale": "..."}]}

`block` is an EVOLVE-BLOCK's number (1 for the first); `first_line` and `last_line` are anchors: lines of
that block, written without their indentation, each an enum of the block's lines that occur there once
(a 135M model copies a line it was shown more reliably than it counts lines); the lines from the first
anchor to the last, both included, are replaced by `replacement`, re-indented to where they stood. A reply
becomes the same `SearchReplace` edits that a text diff gives (`evolve.proposals.edits.structured_edits`),
so everything downstream is unchanged. What the schema cannot say (anchors in the wrong order) is read
the one way it can mean; what does not apply is an `EditError` with its reason.
"""

from __future__ import annotations

from typing import Any

from evolve.proposals.edits import anchors, evolve_blocks

__all__ = ["MAX_EDITS", "PROBE_SCHEMA", "PROBE_WORD", "RESPONSE_FORMATS", "edit_schema", "response_format"]

MAX_EDITS = 3  # edits per reply by default (`llm.structured_edits`): a short reply ends before max_tokens
_FIELDS = ("block", "first_line", "last_line", "replacement", "rationale")


def _block_lines(code: str) -> list[list[str]]:
    """Each EVOLVE-BLOCK's lines, with their newlines."""
    return [code[start:end].splitlines(keepends=True) for start, end in evolve_blocks(code)]


def _edit_schema(block: int, names: list[str]) -> dict[str, Any]:
    line = {"type": "string", "enum": names}
    return {"type": "object",
            "properties": {"block": {"type": "integer", "enum": [block]}, "first_line": line, "last_line": line,
                           "replacement": {"type": "string"}, "rationale": {"type": "string"}},
            "required": list(_FIELDS), "additionalProperties": False}


def edit_schema(code: str, max_edits: int = MAX_EDITS) -> dict[str, Any] | None:
    """The JSON schema of a reply of at most `max_edits` edits to `code`; None when no block has a line to name."""
    options = [_edit_schema(n, names) for n, lines in enumerate(_block_lines(code), 1) if (names := anchors(lines))]
    if not options:
        return None
    items = options[0] if len(options) == 1 else {"anyOf": options}
    return {"type": "object",
            "properties": {"edits": {"type": "array", "minItems": 1, "maxItems": max(1, max_edits), "items": items}},
            "required": ["edits"], "additionalProperties": False}


# the pre-flight question of `llm.edit_format=auto`: a server that honours the schema can only answer the word
PROBE_WORD = "evolve-probe-7f3a"
PROBE_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"word": {"type": "string", "enum": [PROBE_WORD]}},
                                "required": ["word"], "additionalProperties": False}

# the shapes of `response_format` that carry a schema, in the order tried: OpenAI's structured outputs (also
# vLLM, llama.cpp's own server, Ollama's OpenAI API), then llama-cpp-python's server, which takes only this one
RESPONSE_FORMATS = ("json_schema", "json_object")


def response_format(kind: str, schema: dict[str, Any], name: str = "edits") -> dict[str, Any]:
    """The request's `response_format` that asks for `schema` in the shape `kind` (`RESPONSE_FORMATS`)."""
    if kind == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}
    return {"type": "json_object", "schema": schema}
