"""Sizes of a finished campaign's prompts: as recorded, and as today's prompt builder makes them again.

    .venv/bin/python benchmarks/prompt_size.py RUN_DIR [RUN_DIR ...] [--tokenize URL]

For each run dir: the prompts its calls recorded (characters, and tokens estimated at
`prompt.chars_per_token` characters a token), then the same iterations' prompts rebuilt by the current
`PromptBuilder` from the recorded parent, inspirations and failed edits (the inspirations all shown, as
their labels are not recorded; the parent's cell in the final population; the lineage's attempts
committed before each call's iteration). With `--tokenize URL` (a llama.cpp server's
`/tokenize`, or llama-cpp-python's `/extras/tokenize`), token counts are the server's own as well.
Medians and maxima per run.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from evolve.engine.parts import make_prompts
from evolve.population import restore_population
from evolve.program import ProgramStatus
from evolve.proposals.lineage import Lineage
from evolve.proposals.tokens import count_on_server, estimate_tokens
from evolve.storage.rundir import load_config, open_database


def _chars(messages: list[dict[str, str]]) -> int:
    return sum(len(str(m.get("content", ""))) for m in messages)


def _row(label: str, prompts: list[list[dict[str, str]]], prior: float, url: str | None) -> str:
    chars = [_chars(m) for m in prompts]
    tokens = [estimate_tokens(m, prior) for m in prompts]
    text = (f"  {label:<9} {len(prompts):>4} prompts  chars median {statistics.median(chars):>8,.0f} "
            f"max {max(chars):>7,}  est. tokens (chars/{prior:g}) median {statistics.median(tokens):>7,.0f} "
            f"max {max(tokens):>6,}")
    if url:
        field = "input" if url.rstrip("/").endswith("/extras/tokenize") else "content"
        real = [count_on_server(url, field, m, 60.0) for m in prompts]
        text += f"  server tokens median {statistics.median(real):>7,.0f} max {max(real):>6,}"
    return text


def _rebuilt(run_dir: Path, calls: list[dict]) -> list[list[dict[str, str]]]:
    """The recorded calls' prompts as today's builder makes them for the same parents and inspirations."""
    config = load_config(run_dir)
    builder = make_prompts(config)
    prompts = []
    with open_database(config, run_dir, read_only=True) as db:
        population = restore_population(config, db)
        cell_of = getattr(population, "cell", lambda pid: None)
        lineage = Lineage(db)
        failed = list(db.programs(ProgramStatus.EDIT_FAILED))
        for call in calls:
            parent = db.seen(call["parent_hash"])
            if parent is None:
                continue
            iteration = call["iteration"]
            inspirations = [p for h in call["inspiration_hashes"] if (p := db.seen(h)) is not None]
            labels = {p.id: "diverse" for p in inspirations}  # unknown: none is left out for its score
            recent = [p for p in failed if p.iteration < iteration][-config.database.failed_edits_in_prompt:]
            attempts = [a for a in lineage.attempts(parent, config.prompt.attempts) if a.program.iteration < iteration]
            prompts.append(builder.build(parent, inspirations, recent, iteration, labels=labels,
                                         cell=cell_of(parent.id), attempts=attempts).messages)
    return prompts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--tokenize", metavar="URL",
                        help="a llama.cpp server's /tokenize URL (llama-cpp-python: /extras/tokenize)")
    parser.add_argument("--calls", type=int, default=20, help="the last N recorded calls of each run")
    args = parser.parse_args()
    for run_dir in args.run_dirs:
        config = load_config(run_dir)
        with open_database(config, run_dir, read_only=True) as db:
            calls = [c for c in db.calls() if c.get("messages")][-args.calls:]
        prior = config.prompt.chars_per_token
        print(f"{run_dir} ({config.problem.name}):")
        print(_row("recorded", [c["messages"] for c in calls], prior, args.tokenize))
        print(_row("rebuilt", _rebuilt(run_dir, calls), prior, args.tokenize))


if __name__ == "__main__":
    main()

