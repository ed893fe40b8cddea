"""Helpers for testing evolve and evaluators built on it (shipped with the package)."""

from __future__ import annotations

from evolve.testing.fake_openai import FakeOpenAIServer, FakeReply

__all__ = ["FakeOpenAIServer", "FakeReply"]
