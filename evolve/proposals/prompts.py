"""Builds the chat messages for a proposal from the problem, the parent and its inspirations."""

from __future__ import annotations

import difflib
import fnmatch
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from string import Template
from typing import ClassVar

from evolve.config import PromptConfig
from evolve.errors import ConfigError, EditError
from evolve.program import NODE_METRIC, Program, ProgramStatus
from evolve.proposals.edits import BLOCK_END, BLOCK_START, evolve_blocks
from evolve.proposals.lineage import Attempt
from evolve.proposals.llm.base import Prompt, PromptTooLarge
from evolve.proposals.scratchpad import explanation
from evolve.proposals.tokens import TokenCounter, estimate_tokens
from sandboxes import candidate_text

__all__ = ["PromptBuilder", "estimate_tokens", "metric_filter"]

_BUILTIN = Path(__file__).with_name("prompt_templates")
_TIMING = ("*seconds*", "*_ms", "*_ms_*", "ms_*", "*_s", "*time*", "*elapsed*")
_WHY = {"best": "one of this island's best", "diverse": "a different approach, from another MAP-Elites cell",
        "migrant": "a strong program from another island", "random": "a random pick"}
_OUTCOME = {ProgramStatus.INVALID: "invalid", ProgramStatus.EDIT_FAILED: "the edit did not apply",
            ProgramStatus.DUPLICATE: "the same code as an earlier program",
            ProgramStatus.SIMILAR: "too close to an earlier program"}


def _cut(text: str, limit: int) -> str:
    """Text that may quote a candidate (feedback, errors), through the gate and within `limit`."""
    return candidate_text(text, "prompt", limit).strip()


def metric_filter(patterns: Sequence[str] | None = None, timing: Sequence[str] = ()) -> Callable[[str], bool]:
    """Return which metrics a model sees: those matching one of `patterns` (globs), or by default all but
    earlier cascade stages' (`smoke.*`: any key with a stage prefix), `timing` ones and names that time."""
    if patterns is not None:
        return lambda key: key != NODE_METRIC and any(fnmatch.fnmatchcase(key, p) for p in patterns)
    hidden = (*_TIMING, *timing)
    return lambda key: ("." not in key and not any(fnmatch.fnmatchcase(key, p) for p in hidden))


def _blocks(code: str) -> str:
    """The EVOLVE-BLOCKs of `code` with their markers (the whole code where they are unbalanced)."""
    if BLOCK_START not in code:
        return code.rstrip()
    try:
        spans = evolve_blocks(code)
    except EditError:
        return code.rstrip()
    return "\n# ...\n".join(f"{BLOCK_START}\n{code[a:b].strip(chr(10))}\n{BLOCK_END}" for a, b in spans)


def _diff(old: str, new: str) -> tuple[list[str], int]:
    """The unified diff from `old` to `new` (one line of context, no file header), and how many lines it
    adds or removes."""
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1))[2:]
    return lines, sum(1 for line in lines if line[:1] in "+-")


def _delta(score: float | None, reference: float | None) -> str:
    return f"{score - reference:+.6g}" if score is not None and reference is not None else "n/a"


class PromptBuilder:
    """Fills `system.txt` and `user.txt` (string.Template, `$name` fields) for each proposal.

    A user overrides the wording with `prompt.template_dir` pointing at a folder holding any of the
    files (`system.txt`, `user.txt`, `edit_diff.txt`, `edit_full.txt`, `edit_structured.txt`, `task_diff.txt`,
    `task_full.txt`, `task_crossover.txt`, `task_structured.txt`). Fields: problem_description, entrypoint
    (the function's name, empty where the evaluator names none), entrypoint_rule (a sentence saying the
    program must keep defining it, or nothing), edit_format (how to write the reply: `edit_diff.txt` with its
    worked example, `edit_full.txt` for a rewrite, `edit_structured.txt` for JSON edits), parent_code,
    parent_score, parent_metrics, parent_cell, parent_feedback, second_parent, inspirations, attempts,
    failures, scratchpad, task.

    `visible(key)` says which metrics the model sees (`metric_filter`); an inspiration scoring below the
    parent by more than `prompt.inspiration_slack` of the parent's magnitude is left out unless it was
    chosen for its diversity.
    """

    MODES = ("diff", "full", "crossover")
    FORMATS: ClassVar[dict[str, str]] = {"diff": "diff", "crossover": "diff", "full": "full"}

    def __init__(self, description: str, entrypoint: str | None, config: PromptConfig | None = None,
                 visible: Callable[[str], bool] | None = None) -> None:
        self.config = config or PromptConfig()
        self.description = description.strip()
        self.entrypoint = entrypoint
        self.visible = visible or metric_filter(self.config.metrics)
        self.system = self._template("system.txt")
        self.user = self._template("user.txt")
        self.tasks = {mode: self._template(f"task_{mode}.txt").template.strip() for mode in self.MODES}
        self.formats = {name: self._template(f"edit_{name}.txt").template.strip()
                        for name in ("diff", "full", "structured")}
        self.structured_task = self._template("task_structured.txt").template.strip()

    def _template(self, name: str) -> Template:
        folder = Path(self.config.template_dir) if self.config.template_dir else None
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"prompt.template_dir={folder} is not a directory")
        path = folder / name if folder is not None and (folder / name).is_file() else _BUILTIN / name
        return Template(path.read_text())

    def build(self, parent: Program, inspirations: list[Program], failures: list[Program],
              iteration: int = 0, mode: str = "diff", second_parent: Program | None = None,
              scratchpad: str = "", max_tokens: int | None = None, *, labels: Mapping[int, str] | None = None,
              attempts: Sequence[Attempt] = (), cell: tuple[int, ...] | None = None,
              counter: TokenCounter | None = None, structured: bool = False) -> Prompt:
        """Return the prompt for improving `parent` (with `second_parent` in crossover mode).

        `labels` say why each inspiration was chosen (by id), `attempts` what was tried on the parent's
        line, `cell` the parent's MAP-Elites cell; `counter` counts the tokens of the model it is for.
        With `max_tokens` (the model's `context_tokens` minus its reply's `max_tokens`), the prompt is
        fitted to at most that many tokens by leaving out, in this order and only as far as needed:
        inspirations (the last first), the lineage's attempts (the oldest first), the scratchpad, the
        recent failures, the parent's feedback, the second parent (a crossover becomes a diff).
        `Prompt.trimmed` says what went; `PromptTooLarge` is raised when even the bare prompt does not fit.
        With `structured`, the reply is asked for as a JSON object of edits (`edit_structured.txt`,
        `task_structured.txt`), which the model's server constrains to the parent's edit schema.
        """
        if mode == "crossover" and second_parent is None:
            mode = "diff"
        labels = dict(labels or {})
        shown = self._worth_showing(parent, inspirations, labels)
        state = dict(inspirations=shown, failures=list(failures), mode=mode, attempts=list(attempts),
                     structured=structured, second_parent=second_parent, scratchpad=scratchpad,
                     feedback=self.config.max_feedback_chars)

        def render() -> list[dict[str, str]]:
            return self._render(parent, labels=labels, cell=cell, **state)

        def count(messages: list[dict[str, str]]) -> int:
            prior = self.config.chars_per_token
            return counter.count(messages, prior) if counter is not None else estimate_tokens(messages, prior)

        messages = render()
        tokens = count(messages)
        trimmed: list[str] = []
        if max_tokens is not None and tokens > max_tokens:
            for label, change in self._trims(state):
                if change is None:
                    continue
                state.update(change)
                messages = render()
                tokens = count(messages)
                if not trimmed or trimmed[-1] != label:
                    trimmed.append(label)
                if tokens <= max_tokens:
                    break
            trimmed = _counted(trimmed, len(shown) - len(state["inspirations"]),
                               len(attempts) - len(state["attempts"]))
            if tokens > max_tokens:
                raise PromptTooLarge(
                    f"the prompt needs about {tokens} tokens even without {', '.join(trimmed) or 'anything optional'}"
                    f"; its model allows {max_tokens} (context_tokens minus max_tokens): raise context_tokens, lower "
                    f"max_tokens, or shorten the problem's description", needed=tokens, allowed=max_tokens)
        mode, second = state["mode"], state["second_parent"]
        return Prompt(messages=messages, parent=parent, inspirations=list(state["inspirations"]),
                      iteration=iteration, mode=mode, second_parent=second if mode == "crossover" else None,
                      tokens=tokens, trimmed=tuple(trimmed))

    def _worth_showing(self, parent: Program, inspirations: list[Program], labels: dict[int, str]) -> list[Program]:
        """The inspirations a model should see: not far below the parent, unless chosen for their diversity."""
        if parent.score is None:
            return list(inspirations)
        floor = parent.score - self.config.inspiration_slack * abs(parent.score)
        return [p for p in inspirations if labels.get(p.id) == "diverse" or (p.score is not None and p.score >= floor)]

    @staticmethod
    def _trims(state: dict) -> Iterator[tuple[str, dict | None]]:
        """The changes that shrink a prompt, least useful first, each a (label, update of `state`) pair;
        computed lazily from the state as it shrinks."""
        def steps():
            while state["inspirations"]:
                yield "inspirations", {"inspirations": state["inspirations"][:-1]}
            while state["attempts"]:
                yield "attempts", {"attempts": state["attempts"][1:]}
            yield "the scratchpad", {"scratchpad": ""} if state["scratchpad"].strip() else None
            yield "the recent failures", {"failures": []} if state["failures"] else None
            for limit in (500, 0):
                yield "the parent's feedback", {"feedback": limit} if state["feedback"] > limit else None
            if state["mode"] == "crossover":
                yield "the second parent", {"mode": "diff", "second_parent": None}
        return steps()

    def _metrics(self, program: Program) -> str:
        shown = {k: (round(v, 6) if isinstance(v, float) else _cut(v, 300) if isinstance(v, str) else v)
                 for k, v in program.metrics.items() if k != NODE_METRIC and self.visible(k)}
        return json.dumps(shown, sort_keys=True) if shown else "none"

    def _inspiration(self, n: int, program: Program, parent: Program, why: str | None, parent_blocks: str) -> str:
        """An inspiration's EVOLVE-BLOCKs, or only their diff from the parent's where that is much shorter."""
        blocks = _blocks(program.code)
        label = _WHY.get(why or "", why or "another program of this campaign")
        diff, changed = _diff(parent_blocks, blocks)
        head = (f"\n# Inspiration {n}: {label} (score {program.score:.6g}, {_delta(program.score, parent.score)} "
                f"against the current program; {changed} lines differ)\nMetrics: {self._metrics(program)}\n")
        if len(diff) * 2 < blocks.count("\n") + 1:
            return head + "Its difference from the current program (- current, + inspiration):\n```diff\n" + \
                "\n".join(diff) + "\n```\n"
        return head + f"```python\n{blocks}\n```\n"

    def _attempt(self, attempt: Attempt) -> str:
        child = attempt.program
        whose = "this program" if attempt.generations == 0 else \
            "its parent" if attempt.generations == 1 else f"an ancestor {attempt.generations} generations up"
        idea = explanation(child.proposal, 140) or "(no explanation given)"
        if child.status is ProgramStatus.VALID:
            outcome = f"score {child.score:.6g} ({_delta(child.score, attempt.parent_score)} against its parent)"
        else:
            reason = child.error.strip().splitlines()[-1] if child.error.strip() else ""
            outcome = _OUTCOME.get(child.status, child.status.value) + (f": {_cut(reason, 160)}" if reason else "")
        return f"- on {whose}: {_cut(idea, 160)} -> {outcome}\n"

    def _render(self, parent: Program, inspirations: list[Program], failures: list[Program], mode: str,
                second_parent: Program | None, scratchpad: str, feedback: int, attempts: list[Attempt],
                labels: dict[int, str], cell: tuple[int, ...] | None, structured: bool = False) -> list[dict[str, str]]:
        parent_blocks = _blocks(parent.code)
        blocks = [self._inspiration(n, p, parent, labels.get(p.id), parent_blocks)
                  for n, p in enumerate(inspirations, 1)]
        second = ""
        if second_parent is not None and mode == "crossover":
            second = (f"\n# Second parent (score {second_parent.score:.6g})\nMetrics: {self._metrics(second_parent)}\n"
                      f"```python\n{_blocks(second_parent.code)}\n```\n")
        failed = "".join(f"- {_cut(p.error, 300)}\n" for p in failures)
        tried = "".join(self._attempt(a) for a in attempts
                        if a.program.status not in (ProgramStatus.PROPOSAL_FAILED, ProgramStatus.EVALUATOR_ERROR))
        features = ", ".join(f"{k}={v:.4g}" for k, v in sorted(parent.features.items()) if isinstance(v, float | int))
        where = f"MAP-Elites cell: {list(cell)}" if cell is not None else ""
        where += (" of features " if where else "Features: ") + features if features else ""
        fields = {
            "problem_description": self.description,
            "entrypoint": self.entrypoint or "",
            "entrypoint_rule": f"The program must keep defining `{self.entrypoint}`. " if self.entrypoint else "",
            "edit_format": self.formats["structured" if structured else self.FORMATS[mode]],
            "parent_code": parent.code.rstrip(),
            "parent_score": f"{parent.score:.6g}" if parent.score is not None else "invalid",
            "parent_metrics": self._metrics(parent),
            "parent_cell": f"{where}\n" if where else "",
            "parent_feedback": _cut(parent.feedback or "none", feedback) if feedback > 0 else
            "(left out to fit the model's context)",
            "inspirations": "".join(blocks),
            "attempts": f"\n# Recent attempts on this program's line, and their outcome\n{tried}" if tried else "",
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


def _counted(trimmed: list[str], inspirations: int, attempts: int) -> list[str]:
    """Labels for `Prompt.trimmed`: `inspirations` and `attempts` become how many were dropped."""
    counts = {"inspirations": (inspirations, "inspiration"), "attempts": (attempts, "attempt")}
    return [f"{counts[label][0]} {counts[label][1]}{'s' if counts[label][0] != 1 else ''}" if label in counts
            else label for label in trimmed]
