"""A campaign's lessons as a fine-tuning data set: the prompts and replies that improved their parent.

Each example is one recorded proposer call (`llm_calls`: the messages sent, as the model saw them, and its
reply) whose reply applied and whose child was scored. The chat file holds only what OpenAI's chat
fine-tuning format takes, `{"messages": [system, user, assistant]}` per line; a sidecar of the same
length (`FILE.meta.jsonl`, line for line) says where each came from: iteration, model, program ids,
status and the training scores (as the problem states them) with `score_delta` (child minus parent,
positive when the child is better, whatever the problem's direction). Nothing here reads held-out data:
the prompts were built from training feedback only, and a program's `validation` record is never read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluators.direction import natural
from evolve.program import Program, ProgramStatus, beats
from evolve.storage.database import ProgramDatabase

__all__ = ["Example", "chat_examples", "write_chat_jsonl"]


@dataclass(frozen=True)
class Example:
    """One fine-tuning example: the chat record and its metadata."""

    messages: list[dict[str, str]]
    meta: dict[str, Any]


def chat_examples(db: ProgramDatabase, direction: str, everything: bool = False,
                  skip_models: frozenset[str] = frozenset()) -> Iterator[Example]:
    """The calls whose child beat its parent (with `everything`, every applied call whose child was scored),
    in iteration order; calls by `skip_models` (the offline engine) are left out."""
    children: dict[int, Program] = {}
    scores: dict[int, float | None] = {}
    for program in db.programs():
        scores[program.id] = program.score
        if program.iteration > 0 and program.status in (ProgramStatus.VALID, ProgramStatus.INVALID):
            children[program.iteration] = program
    answered: dict[int, dict[str, Any]] = {}
    for call in db.calls():  # the last answered call of an iteration made its program
        if call["response"] is not None and call["model"] not in skip_models:
            answered[call["iteration"]] = call
    for iteration, call in sorted(answered.items()):
        child = children.get(iteration)
        if child is None or child.proposer != call["model"] or child.parent_id is None:
            continue
        parent_score = scores.get(child.parent_id)
        improved = child.status is ProgramStatus.VALID and beats(child.score, parent_score)
        if not (improved or everything):
            continue
        delta = (child.score - parent_score) if child.score is not None and parent_score is not None else None
        messages = [{"role": m["role"], "content": m["content"]} for m in call["messages"]]
        yield Example(messages=[*messages, {"role": "assistant", "content": call["response"]}],
                      meta={"iteration": iteration, "model": call["model"], "program_id": child.id,
                            "parent_id": child.parent_id, "status": child.status.value, "improved": improved,
                            "parent_score": natural(parent_score, direction), "score": natural(child.score, direction),
                            "score_delta": delta})


def write_chat_jsonl(examples: Iterator[Example], out: Path) -> tuple[int, Path]:
    """Write `examples` to `out` (chat records) and its sidecar `out.meta.jsonl`; return the count and the
    sidecar's path."""
    sidecar = out.with_name(out.name.removesuffix(".jsonl") + ".meta.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with out.open("w", encoding="utf-8") as chat, sidecar.open("w", encoding="utf-8") as meta:
        for example in examples:
            chat.write(json.dumps({"messages": example.messages}, ensure_ascii=False) + "\n")
            meta.write(json.dumps(example.meta, ensure_ascii=False) + "\n")
            n += 1
    return n, sidecar
