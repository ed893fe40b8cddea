"""Builds the chat messages for a proposal from the problem, the parent and its inspirations."""

from __future__ import annotations

import json
from pathlib import Path
from string import Template

from evolve.config import PromptConfig
from evolve.errors import ConfigError
from evolve.llm.base import Prompt
from evolve.program import Program

__all__ = ["PromptBuilder"]

_BUILTIN = Path(__file__).with_name("prompt_templates")


def _cut(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit // 2] + "\n[...]\n" + text[-limit // 2:]


def _metrics(program: Program) -> str:
    shown = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in program.metrics.items()}
    return json.dumps(shown, sort_keys=True) if shown else "none"


class PromptBuilder:
    """Fills `system.txt` and `user.txt` (string.Template, `$name` fields) for each proposal.

    A user overrides the wording with `prompt.template_dir` pointing at a folder holding any of the
    files (`system.txt`, `user.txt`, `task_diff.txt`, `task_full.txt`, `task_crossover.txt`).
    Fields: problem_description, entrypoint, parent_code, parent_score, parent_metrics,
    parent_feedback, second_parent, inspirations, failures, scratchpad, task.
    """

    MODES = ("diff", "full", "crossover")

    def __init__(self, description: str, entrypoint: str, config: PromptConfig | None = None) -> None:
        self.config = config or PromptConfig()
        self.description = description.strip()
        self.entrypoint = entrypoint
        self.system = self._template("system.txt")
        self.user = self._template("user.txt")
        self.tasks = {mode: self._template(f"task_{mode}.txt").template.strip() for mode in self.MODES}

    def _template(self, name: str) -> Template:
        folder = Path(self.config.template_dir) if self.config.template_dir else None
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"prompt.template_dir={folder} is not a directory")
        path = folder / name if folder is not None and (folder / name).is_file() else _BUILTIN / name
        return Template(path.read_text())

    def build(self, parent: Program, inspirations: list[Program], failures: list[Program],
              iteration: int = 0, mode: str = "diff", second_parent: Program | None = None,
              scratchpad: str = "") -> Prompt:
        """Return the prompt for improving `parent` (with `second_parent` in crossover mode)."""
        limit = self.config.max_feedback_chars
        if mode == "crossover" and second_parent is None:
            mode = "diff"
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
            "entrypoint": self.entrypoint,
            "parent_code": parent.code.rstrip(),
            "parent_score": f"{parent.score:.6g}" if parent.score is not None else "invalid",
            "parent_metrics": _metrics(parent),
            "parent_feedback": _cut(parent.feedback or "none", limit),
            "inspirations": "".join(blocks),
            "failures": f"\n# Recent edits that could not be applied, and why\n{failed}" if failed else "",
            "second_parent": second,
            "scratchpad": f"# Notes from this campaign\n{scratchpad.strip()}\n\n" if scratchpad.strip() else "",
            "task": self.tasks[mode],
        }
        try:
            messages = [{"role": "system", "content": self.system.substitute(fields)},
                        {"role": "user", "content": self.user.substitute(fields)}]
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"prompt template uses an unknown or malformed field: {exc}") from exc
        return Prompt(messages=messages, parent=parent, inspirations=list(inspirations), iteration=iteration,
                      mode=mode, second_parent=second_parent if mode == "crossover" else None)
