"""A proposer backed by any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp, LiteLLM)."""

from __future__ import annotations

import os

import openai

from evolve.config import ModelConfig
from evolve.errors import ConfigError, ProposerError
from evolve.llm.base import Prompt, Proposal

__all__ = ["OpenAIModel", "api_key"]


def api_key(config: ModelConfig) -> str:
    """The key for `config`: its environment variable's value, `EMPTY` when it names none.

    Raises ConfigError naming the variable when it is not set, so a campaign fails before it starts.
    """
    if not config.api_key_env:
        return "EMPTY"
    key = os.environ.get(config.api_key_env, "")
    if not key:
        raise ConfigError(
            f"api_key_env={config.api_key_env} (model {config.name or config.model}): the environment variable "
            f"{config.api_key_env} is not set; export it, or set api_key_env=null for a local server that "
            "needs no key")
    return key


class OpenAIModel:
    """Sends the prompt's messages to `config.base_url` through `openai.AsyncOpenAI`.

    The key is read from the environment variable `config.api_key_env` when the model is built, so a
    missing key fails before the campaign starts. Failures raise `ProposerError`.
    """

    def __init__(self, config: ModelConfig, client: openai.AsyncOpenAI | None = None) -> None:
        self.config = config
        self.name = config.name or config.model
        if client is None:
            client = openai.AsyncOpenAI(base_url=config.base_url, api_key=api_key(config), timeout=config.timeout,
                                        max_retries=config.max_retries)
        self._client = client

    async def propose(self, prompt: Prompt) -> Proposal:
        """Ask the model for an edit of the prompt's parent."""
        cfg = self.config
        try:
            response = await self._client.chat.completions.create(
                model=cfg.model, messages=prompt.messages, temperature=cfg.temperature,
                max_tokens=cfg.max_tokens,
            )
        except openai.OpenAIError as exc:
            raise ProposerError(f"{self.name}: {type(exc).__name__}: {str(exc)[:300]}", self.name) from exc
        if not response.choices or not (response.choices[0].message.content or "").strip():
            raise ProposerError(f"{self.name}: the reply is empty", self.name)
        usage = response.usage
        prompt_tokens = usage.prompt_tokens if usage else 0
        completion_tokens = usage.completion_tokens if usage else 0
        cost = (prompt_tokens * cfg.price_input_per_million
                + completion_tokens * cfg.price_output_per_million) / 1e6
        return Proposal(text=response.choices[0].message.content, model=self.name,
                        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost=cost,
                        truncated=response.choices[0].finish_reason == "length")

    async def close(self) -> None:
        """Close the HTTP client."""
        await self._client.close()
