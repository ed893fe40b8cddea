"""What the proposer path costs per proposal, beside the LLM's own latency, measured in one run.

    .venv/bin/python benchmarks/proposer_overhead.py

Baseline: one round trip to the project's fake OpenAI-compatible server on 127.0.0.1 through the real
`openai` client (the cheapest an LLM call can be). Each step of the controller's proposer path is
reported in milliseconds and as a ratio to that baseline.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from timing import median_ms

from evolve.config import DatabaseConfig, ModelConfig
from evolve.problems import get_problem, read_initial_program
from evolve.program import ProgramStatus
from evolve.proposals.edits import apply_proposal, normalized_hash
from evolve.proposals.llm import OpenAIModel
from evolve.proposals.novelty import canonical_hash, canonical_tokens, similarity
from evolve.proposals.prompts import PromptBuilder
from evolve.storage.database import ProgramDatabase
from evolve.testing import FakeOpenAIServer

N = 300


def main() -> None:
    problem = get_problem("circle_packing")
    code = read_initial_program(problem)
    refine = next(line for line in code.splitlines(True) if line.startswith("def refine"))
    reply = f"More steps.\n<<<<<<< SEARCH\n{refine}=======\n{refine.replace('300', '400')}>>>>>>> REPLACE\n"
    with tempfile.TemporaryDirectory() as tmp:
        db = ProgramDatabase(f"sqlite:///{Path(tmp) / 'bench.db'}", "bench", "circle_packing",
                             DatabaseConfig(islands=1))
        parent = db.add(iteration=0, status=ProgramStatus.VALID, code=code, code_hash=normalized_hash(code),
                        score=2.5, metrics={"sum_radii": 2.5}, feedback="valid packing " * 20)
        others = [db.add(iteration=i, status=ProgramStatus.VALID, code=code.replace("300", str(300 + i)),
                         code_hash=str(i), score=2.4, parent=parent) for i in range(1, 5)]
        builder = PromptBuilder((Path(problem.directory) / problem.readme).read_text(), "solve")
        prompt = builder.build(parent, others, [], 1, "diff", None, "- +0.01: more steps\n" * 6)

        with FakeOpenAIServer(lambda request: reply) as server:
            model = OpenAIModel(ModelConfig(model="fake", base_url=server.base_url, max_retries=0))

            async def calls() -> list[float]:
                out = []
                for _ in range(N):
                    started = time.perf_counter()
                    await model.propose(prompt)
                    out.append((time.perf_counter() - started) * 1000)
                await model.close()
                return out

            baseline = statistics.median(asyncio.run(calls()))

        child = apply_proposal(code, reply)
        tokens = [canonical_tokens(p.code) for p in [parent, *others]]
        child_tokens = canonical_tokens(child)
        counter = iter(range(10**6))
        steps = {
            "build the prompt (parent, 4 inspirations, scratchpad)": lambda: builder.build(
                parent, others, [], 1, "diff", None, "- +0.01: more steps\n" * 6),
            "apply the SEARCH/REPLACE edit": lambda: apply_proposal(code, reply),
            "dedup hash of the child": lambda: normalized_hash(child),
            "novelty: canonical tokens and hash": lambda: canonical_hash(canonical_tokens(child)),
            "novelty: similarity to parent and 4 inspirations (threshold < 1; their tokens cached)": lambda: [
                similarity(child_tokens, t) for t in tokens],
            "record the call and commit the program (SQLite WAL)": lambda: (
                db.record_call(iteration=next(counter) + 10, parent_hash=parent.code_hash, messages=prompt.messages,
                               model="fake", response=reply),
                db.add(iteration=next(counter) + 10, status=ProgramStatus.VALID, code=child, code_hash="x",
                       score=2.5, parent=parent)),
        }
        print(f"| step | median ms | ratio to the fake server round trip ({baseline:.2f} ms) |")
        print("| --- | ---: | ---: |")
        print(f"| fake server round trip through the openai client (baseline) | {baseline:.3f} | 1.00 |")
        total = 0.0
        for name, fn in steps.items():
            ms = median_ms(fn, N)
            if "threshold < 1" not in name:
                total += ms
            print(f"| {name} | {ms:.3f} | {ms / baseline:.2f} |")
        print(f"| proposer path at the default threshold, all steps | {total:.3f} | {total / baseline:.2f} |")
        db.close()


if __name__ == "__main__":
    main()
