"""Builds the chat messages for a proposal from the problem, the parent and its inspirations."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from string import Template

from evolve.config import PromptConfig
from evolve.errors import ConfigError
from evolve.program import NODE_METRIC, Program
from evolve.proposals.llm.base import Prompt, PromptTooLarge
from sandboxes import candidate_text

__all__ = ["PromptBuilder", "estimate_tokens"]

_MESSAGE_OVERHEAD = 4  # the chat template's tokens around each message (role, separators)


def estimate_tokens(messages: list[dict[str, str]], chars_per_token: float = 2.5) -> int:
    """A conservative estimate of the prompt tokens of `messages` without a tokenizer: characters divided
    by `chars_per_token`, rounded up, plus a few tokens per message for the chat template."""
    return 3 + sum(math.ceil(len(str(m.get("content", ""))) / chars_per_token) + _MESSAGE_OVERHEAD
                   for m in messages)

_BUILTIN = Path(__file__).with_name("prompt_templates")


def _cut(text: str, limit: int) -> str:
    """Text that may quote a candidate (feedback, errors), through the gate and within `limit`."""
    return candidate_text(text, "prompt", limit).strip()


def _metrics(program: Program) -> str:
    shown = {k: (round(v, 6) if isinstance(v, float) else _cut(v, 300) if isinstance(v, str) else v)
             for k, v in program.metrics.items() if k != NODE_METRIC}  # where it ran says nothing about the code
    return json.dumps(shown, sort_keys=True) if shown else "none"


class PromptBuilder:
    """Fills `system.txt` and `user.txt` (string.Template, `$name` fields) for each proposal.

    A user overrides the wording with `prompt.template_dir` pointing at a folder holding any of the
    files (`system.txt`, `user.txt`, `task_diff.txt`, `task_full.txt`, `task_crossover.txt`,
    `task_structured.txt`).
    Fields: problem_description, entrypoint (the function's name, empty where the evaluator names none),
    entrypoint_rule (a sentence saying the program must keep defining it, or nothing), parent_code,
    parent_score, parent_metrics, parent_feedback, second_parent, inspirations, failures, scratchpad, task.
    """

    MODES = ("diff", "full", "crossover")

    def __init__(self, description: str, entrypoint: str | None, config: PromptConfig | None = None) -> None:
        self.config = config or PromptConfig()
        self.description = description.strip()
        self.entrypoint = entrypoint
        self.system = self._template("system.txt")
        self.user = self._template("user.txt")
        self.tasks = {mode: self._template(f"task_{mode}.txt").template.strip() for mode in self.MODES}
        self.structured_task = self._template("task_structured.txt").template.strip()

    def _template(self, name: str) -> Template:
        folder = Path(self.config.template_dir) if self.config.template_dir else None
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"prompt.template_dir={folder} is not a directory")
        path = folder / name if folder is not None and (folder / name).is_file() else _BUILTIN / name
        return Template(path.read_text())

    def build(self, parent: Program, inspirations: list[Program], failures: list[Program],
              iteration: int = 0, mode: str = "diff", second_parent: Program | None = None,
              scratchpad: str = "", max_tokens: int | None = None, structured: bool = False) -> Prompt:
        """Return the prompt for improving `parent` (with `second_parent` in crossover mode).

        With `max_tokens` (the model's `context_tokens` minus its reply's `max_tokens`), the prompt is
        fitted to at most that many estimated tokens by leaving out, in this order and only as far as
        needed: inspirations (the last first), the scratchpad, the recent failures, the parent's
        feedback, the second parent (a crossover becomes a diff). `Prompt.trimmed` says what went;
        `PromptTooLarge` is raised when even the bare prompt does not fit. With `structured`, the task
        asks for a JSON object of edits instead (`task_structured.txt`; the model's server constrains it).
        """
        if mode == "crossover" and second_parent is None:
            mode = "diff"
        state = dict(inspirations=list(inspirations), failures=list(failures), mode=mode, structured=structured,
                     second_parent=second_parent, scratchpad=scratchpad, feedback=self.config.max_feedback_chars)
        messages = self._render(parent, **state)
        tokens = estimate_tokens(messages, self.config.chars_per_token)
        trimmed: list[str] = []
        if max_tokens is not None and tokens > max_tokens:
            for label, change in self._trims(state):
                if change is None:
                    continue
                state.update(change)
                messages = self._render(parent, **state)
                tokens = estimate_tokens(messages, self.config.chars_per_token)
                if not trimmed or trimmed[-1] != label:
                    trimmed.append(label)
                if tokens <= max_tokens:
                    break
            trimmed = _counted(trimmed, len(inspirations) - len(state["inspirations"]))
            if tokens > max_tokens:
                raise PromptTooLarge(
                    f"the prompt needs about {tokens} tokens even without {', '.join(trimmed) or 'anything optional'}"
                    f"; its model allows {max_tokens} (context_tokens minus max_tokens): raise context_tokens, lower "
                    f"max_tokens, or shorten the problem's description")
        mode, second = state["mode"], state["second_parent"]
        return Prompt(messages=messages, parent=parent, inspirations=list(state["inspirations"]),
                      iteration=iteration, mode=mode, second_parent=second if mode == "crossover" else None,
                      tokens=tokens, trimmed=tuple(trimmed))

    @staticmethod
    def _trims(state: dict) -> Iterator[tuple[str, dict | None]]:
        """The changes that shrink a prompt, least useful first, each a (label, update of `state`) pair;
        computed lazily from the state as it shrinks."""
        def steps():
            while state["inspirations"]:
                yield "inspirations", {"inspirations": state["inspirations"][:-1]}
            yield "the scratchpad", {"scratchpad": ""} if state["scratchpad"].strip() else None
            yield "the recent failures", {"failures": []} if state["failures"] else None
            for limit in (500, 0):
                yield "the parent's feedback", {"feedback": limit} if state["feedback"] > limit else None
            if state["mode"] == "crossover":
                yield "the second parent", {"mode": "diff", "second_parent": None}
        return steps()

    def _render(self, parent: Program, inspirations: list[Program], failures: list[Program], mode: str,
                second_parent: Program | None, scratchpad: str, feedback: int,
                structured: bool = False) -> list[dict[str, str]]:
        blocks = []
        for n, p in enumerate(inspirations, 1):
            blocks.append(f"\n# Inspiration {n} (score {p.score:.6g})\nMetrics: {_metrics(p)}\n"
                          f"```python\n{p.code.rstrip()}\n```\n")
        second = ""
        if second_parent is not None and mode == "crossover":
            second = (f"\n# Second parent (score {second_parent.score:.6g})\nMetrics: {_metrics(second_parent)}\n"
                      f"```python\n{second_parent.code.rstrip()}\n```\n")
        failed = "".join(f"- {_cut(p.error, 300)}\n" for p in failures)
        fields = {
            "problem_description": self.description,
            "entrypoint": self.entrypoint or "",
            "entrypoint_rule": f"The program must keep defining `{self.entrypoint}`. " if self.entrypoint else "",
            "parent_code": parent.code.rstrip(),
            "parent_score": f"{parent.score:.6g}" if parent.score is not None else "invalid",
            "parent_metrics": _metrics(parent),
            "parent_feedback": _cut(parent.feedback or "none", feedback) if feedback > 0 else
            "(left out to fit the model's context)",
            "inspirations": "".join(blocks),
            "failures": f"\n# Recent edits that could not be applied, and why\n{failed}" if failed else "",
            "second_parent": second,
            "scratchpad": f"# Notes from this campaign\n{scratchpad.strip()}\n\n" if scratchpad.strip() else "",
            "task": self.structured_task if structured else self.tasks[mode],
        }
        try:
            return [{"role": "system", "content": self.system.substitute(fields)},
                    {"role": "user", "content": self.user.substitute(fields)}]
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"prompt template uses an unknown or malformed field: {exc}") from exc


def _counted(trimmed: list[str], inspirations: int) -> list[str]:
    """Labels for `Prompt.trimmed`: `inspirations` becomes how many were dropped."""
    return [f"{inspirations} inspiration{'s' if inspirations != 1 else ''}" if label == "inspirations" else label
            for label in trimmed]
