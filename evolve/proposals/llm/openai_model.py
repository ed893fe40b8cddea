"""A proposer backed by any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp, LiteLLM)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from concurrent.futures import Future
from typing import TYPE_CHECKING

from evolve.background import in_background
from evolve.config import ModelConfig
from evolve.errors import ConfigError, ProposerError
from evolve.proposals.llm.base import Prompt, Proposal, Proposer
from evolve.proposals.structured import MAX_EDITS, RESPONSE_FORMATS, edit_schema, response_format
from evolve.proposals.tokens import (
    MESSAGE_OVERHEAD,
    REPLY_PRIMING,
    TOKENIZERS,
    TokenCounter,
    server_counts,
    tiktoken_encoder,
)

if TYPE_CHECKING:
    import openai

__all__ = ["EDIT_FORMATS", "OpenAIModel", "api_key", "import_sdk_in_background", "sdk_imported"]

EDIT_FORMATS = ("auto", "diff", "rewrite", "structured")
_log = logging.getLogger(__name__)

_importing: list[Future] = []


def import_sdk_in_background() -> None:
    """Start importing the openai SDK (~0.6 s) on a thread, so that the set-up that follows (the evaluation
    slots, the initial program) runs meanwhile; the first request then finds it imported, or waits for it."""
    if "openai" not in sys.modules and not _importing:
        _importing.append(in_background(_import_sdk, name="evolve-import-openai"))


def _import_sdk() -> None:
    import openai.resources.chat  # noqa: F401 (the client imports its chat resources at the first request)


def sdk_imported() -> None:
    """Wait until a background import of the SDK (if one was started) has ended."""
    for future in _importing:
        future.exception()  # an import that failed fails again where the SDK is used, with its traceback


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


def _refuses_schema(exc: openai.APIStatusError) -> bool:
    """Whether an error answers the request's `response_format` (llama-cpp-python's server says so with 500)."""
    text = str(exc).lower()
    if exc.status_code in (400, 422):
        return "context" not in text  # a prompt too long is no verdict on the schema
    return "response_format" in text


class OpenAIModel(Proposer):
    """Sends the prompt's messages to `config.base_url` through `openai.AsyncOpenAI`.

    The key is read from the environment variable `config.api_key_env` when the model is built, so a
    missing key fails before the campaign starts; the client is made meanwhile on a thread, once the SDK
    is imported (~0.1 s that the first request would wait otherwise). `config.timeout` bounds a whole
    proposal, the client's retries of quick faults (429, 5xx, a dropped connection) included, so a hung
    endpoint fails once after `timeout` seconds. Failures raise `ProposerError` naming the cause.

    Its `token_counter` counts prompts with tiktoken for OpenAI's own endpoint (when installed: `pip install
    evolve[tokens]`); elsewhere it asks the server's tokenizer (llama.cpp's `/tokenize`, llama-cpp-python's
    `/extras/tokenize`) for the first prompts' true
    counts and learns from the `usage` of every reply, so prompts are fitted to the model's real tokens.

    With `edit_format: structured`, each request carries the schema of edits to its parent
    (`evolve.proposals.structured`) as `response_format`, in OpenAI's shape and, if the server refuses that
    (HTTP 400 or 422), in llama-cpp-python's; a server that refuses both is named once and asked for text
    from then on (the request is sent again without the schema).
    """

    TOKENIZE_PROMPTS = 3  # prompts whose exact count is asked of `/tokenize`: enough to calibrate the ratio

    def __init__(self, config: ModelConfig, client: openai.AsyncOpenAI | None = None) -> None:
        self.config = config
        self.name = config.name or config.model
        self.endpoint = config.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        self._key = api_key(config)
        chosen = config.edit_format or "auto"
        if chosen not in EDIT_FORMATS:
            raise ConfigError(f"llm.edit_format={chosen!r} (model {self.name}): use auto, diff, rewrite or structured")
        self._schema_shapes = list(RESPONSE_FORMATS) if chosen == "structured" else []  # still to try
        self._made: openai.AsyncOpenAI | None = client
        self._making: Future[openai.AsyncOpenAI] | None = None
        if client is None:
            self._making = in_background(self._make_client, name="evolve-openai-client")
        self._tokens = TokenCounter()
        self._unbooked = [0, 0]  # tokens of a calibrating request, not yet booked with a proposal
        official = "api.openai.com" in self.endpoint
        self._encoder: Future | None = in_background(lambda: tiktoken_encoder(config.model),
                                                      name="evolve-tiktoken") if official else None
        root = self.endpoint.rstrip("/").removesuffix("/v1")
        self._tokenizers = [] if official else [(root + path, field) for path, field in TOKENIZERS]
        self._tokenized = 0

    def _make_client(self) -> openai.AsyncOpenAI:
        sdk_imported()
        import openai

        cfg = self.config
        return openai.AsyncOpenAI(base_url=cfg.base_url, api_key=self._key, timeout=cfg.timeout,
                                  max_retries=cfg.max_retries)

    @property
    def _client(self) -> openai.AsyncOpenAI:
        if self._made is None:
            self._made = self._making.result()
        return self._made

    @property
    def prompt_budget(self) -> int | None:
        """`context_tokens` minus the reply's `max_tokens` (None: the context is not known)."""
        context = self.config.context_tokens
        return max(0, context - (self.config.max_tokens or 0)) if context else None

    @property
    def token_counter(self) -> TokenCounter:
        """This model's token counter: exact once tiktoken's encoding is loaded, else calibrated."""
        if self._encoder is not None and self._encoder.done():
            encode = self._encoder.result() if self._encoder.exception() is None else None
            self._tokens.encode, self._encoder = encode, None
        return self._tokens

    async def _tokenize(self, messages: list[dict[str, str]]) -> None:
        """Calibrate the counter on the server's own count of `messages` (`TOKENIZERS`, the first that
        answers); a server without a tokenizer is not asked again."""
        self._tokenized += 1
        while self._tokenizers and self._tokenized <= self.TOKENIZE_PROMPTS:
            url, field = self._tokenizers[0]
            try:
                counts = await asyncio.to_thread(server_counts, url, field, messages, min(10.0, self.config.timeout))
            except (OSError, ValueError, KeyError, TypeError):  # URLError and HTTPError are OSErrors
                if self._tokenizers[:1] == [(url, field)]:  # not there (unless a concurrent call found so first)
                    self._tokenizers.pop(0)  # the next, else the replies' usage calibrates instead
                continue
            for message, count in zip(messages, counts):  # apart: prose and code get a ratio each
                self._tokens.observe([message], count + MESSAGE_OVERHEAD + REPLY_PRIMING)
            return

    async def calibrate(self, messages: list[dict[str, str]]) -> bool:
        """Count `messages` on the server: with its tokenizer, else by asking for a one-token reply whose
        usage says (once: llama.cpp and vLLM then find the prompt's prefix cached)."""
        if self._tokens.exact:
            return False
        seen = self._tokens.observed
        await self._tokenize(messages)
        if self._tokens.observed == seen:
            import openai

            if self._made is None:
                self._made = await asyncio.wrap_future(self._making)
            try:
                async with asyncio.timeout(self.config.timeout):
                    response = await self._client.chat.completions.create(
                        model=self.config.model, messages=messages, temperature=0.0, max_tokens=1)
            except (TimeoutError, openai.OpenAIError):
                return False
            if response.usage is not None:
                self._tokens.observe(messages, response.usage.prompt_tokens)
                self._unbooked[0] += response.usage.prompt_tokens  # booked with the proposal it was asked for
                self._unbooked[1] += response.usage.completion_tokens
        return self._tokens.observed > seen

    @property
    def edit_format(self) -> str:
        """`structured` while the endpoint takes a schema; else `diff`, `rewrite`, or `auto` (the text formats)."""
        if self._schema_shapes:
            return "structured"
        return self.config.edit_format if self.config.edit_format in ("diff", "rewrite") else "auto"

    async def _create(self, prompt: Prompt) -> openai.types.chat.ChatCompletion:
        """Send the request: with the parent's edit schema while the endpoint takes one."""
        import openai

        cfg = self.config
        schema = edit_schema(prompt.parent.code, cfg.structured_edits or MAX_EDITS) if self._schema_shapes else None
        while True:
            shape = self._schema_shapes[0] if schema is not None and self._schema_shapes else None
            try:
                return await self._client.chat.completions.create(
                    model=cfg.model, messages=prompt.messages, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                    extra_body={"response_format": response_format(shape, schema)} if shape and schema else None)
            except openai.APIStatusError as exc:
                if shape is None or not _refuses_schema(exc):
                    raise
                if self._schema_shapes[:1] == [shape]:  # (a concurrent request may have moved on already)
                    self._schema_shapes.pop(0)
                    if not self._schema_shapes:
                        _log.warning("model %s at %s rejects a JSON schema in response_format (HTTP %d: %s); its "
                                     "edits are asked for as text from now on (llm.edit_format=diff skips the try)",
                                     self.name, self.endpoint, exc.status_code, " ".join(str(exc).split())[:160])

    async def propose(self, prompt: Prompt) -> Proposal:
        """Ask the model for an edit of the prompt's parent."""
        if self._made is None:  # the SDK may still be importing on its thread: wait off the event loop
            self._made = await asyncio.wrap_future(self._making)
        import openai

        cfg = self.config
        if self._tokenizers and not self._tokens.exact:
            await self._tokenize(prompt.messages)
        try:
            async with asyncio.timeout(cfg.timeout):  # the client's own timeout is per attempt
                response = await self._create(prompt)
        except (TimeoutError, openai.APITimeoutError):
            raise ProposerError(f"{self.name}: APITimeoutError: no answer within {cfg.timeout:g} s (llm.timeout)",
                                self.name) from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__
            why = f" ({type(cause).__name__}: {cause})" if cause is not None and str(cause) else ""
            raise ProposerError(f"{self.name}: APIConnectionError: {str(exc).rstrip('.')}{why}"[:400],
                                self.name) from exc
        except openai.OpenAIError as exc:
            raise ProposerError(f"{self.name}: {type(exc).__name__}: {str(exc)[:300]}", self.name) from exc
        if not response.choices or not (response.choices[0].message.content or "").strip():
            raise ProposerError(f"{self.name}: the reply is empty", self.name)
        usage = response.usage
        prompt_tokens = usage.prompt_tokens if usage else 0
        completion_tokens = usage.completion_tokens if usage else 0
        if not self._tokens.exact:
            self._tokens.observe(prompt.messages, prompt_tokens)
        prompt_tokens, completion_tokens = prompt_tokens + self._unbooked[0], completion_tokens + self._unbooked[1]
        self._unbooked = [0, 0]
        cost = (prompt_tokens * cfg.price_input_per_million
                + completion_tokens * cfg.price_output_per_million) / 1e6
        return Proposal(text=response.choices[0].message.content, model=self.name,
                        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost=cost,
                        truncated=response.choices[0].finish_reason == "length")

    async def close(self) -> None:
        """Close the HTTP client (one still being made has no connection yet)."""
        making = self._making
        if self._made is None and making is not None and making.done() and making.exception() is None:
            self._made = making.result()
        if self._made is not None:
            await self._made.close()
