"""Proposals: prompts, edits, novelty, the scratchpad and the proposers (`llm`)."""
