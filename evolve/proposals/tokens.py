"""Counting a prompt's tokens: a model's own tokenizer where one is at hand, else characters over a ratio
calibrated on the token counts its server reports.

`estimate_tokens` is the prior: characters over `prompt.chars_per_token` (conservative). A `TokenCounter`
belongs to one model: `observe(messages, tokens)` feeds it the true count of a prompt (the `usage` a reply
reports, or the server's `/tokenize`), and from then on it estimates with that model's measured ratio;
with an exact `encode` (tiktoken for OpenAI's models) it counts exactly.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence

__all__ = ["MESSAGE_OVERHEAD", "REPLY_PRIMING", "TokenCounter", "estimate_tokens", "tiktoken_encoder"]

MESSAGE_OVERHEAD = 4  # the chat template's tokens around each message (role, separators)
REPLY_PRIMING = 3  # the tokens that open the assistant's turn


def _contents(messages: Sequence[dict[str, str]]) -> list[str]:
    return [str(m.get("content", "")) for m in messages]


def _overhead(messages: Sequence[dict[str, str]]) -> int:
    return REPLY_PRIMING + MESSAGE_OVERHEAD * len(messages)


def estimate_tokens(messages: Sequence[dict[str, str]], chars_per_token: float = 2.5) -> int:
    """Estimate the prompt tokens of `messages` without a tokenizer: characters over `chars_per_token`,
    rounded up, plus a few tokens per message for the chat template."""
    return _overhead(messages) + sum(math.ceil(len(c) / chars_per_token) for c in _contents(messages))


def tiktoken_encoder(model: str) -> Callable[[str], int] | None:
    """Return a token counter for an OpenAI model from `tiktoken` (an optional dependency), or None where
    tiktoken is not installed, does not know the model or cannot load its encoding (it downloads it once)."""
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        encoding = tiktoken.encoding_for_model(model)
    except Exception:  # noqa: BLE001 (an unknown model's KeyError, or no network to fetch the encoding)
        return None
    return lambda text: len(encoding.encode(text, disallowed_special=()))


class TokenCounter:
    """Counts one model's prompt tokens, exactly with `encode`, else from a calibrated ratio.

    Thread-safe (a lock guards the running sums). Until `observe` has seen a prompt the estimate is
    `estimate_tokens` with the caller's prior; afterwards characters over the measured ratio (all prompts
    seen, pooled), times `margin` (prompts differ: code and prose split differently).
    """

    def __init__(self, encode: Callable[[str], int] | None = None, margin: float = 1.05) -> None:
        self.encode = encode
        self.margin = margin
        self._chars = 0
        self._tokens = 0
        self._lock = threading.Lock()

    @property
    def exact(self) -> bool:
        """Whether counts come from the model's own tokenizer."""
        return self.encode is not None

    @property
    def chars_per_token(self) -> float | None:
        """The measured characters per token of this model's prompts (None: nothing observed yet)."""
        with self._lock:
            return self._chars / self._tokens if self._tokens else None

    def count(self, messages: Sequence[dict[str, str]], prior: float = 2.5) -> int:
        """Return the prompt tokens of `messages`; `prior` is the characters per token assumed uncalibrated."""
        if self.encode is not None:
            return _overhead(messages) + sum(self.encode(c) for c in _contents(messages))
        ratio = self.chars_per_token
        if ratio is None:
            return estimate_tokens(messages, prior)
        chars = sum(len(c) for c in _contents(messages))
        return _overhead(messages) + math.ceil(chars / ratio * self.margin)

    def observe(self, messages: Sequence[dict[str, str]], tokens: int) -> None:
        """Calibrate on a prompt whose true token count (as the server counted it) is `tokens`."""
        chars = sum(len(c) for c in _contents(messages))
        content = tokens - _overhead(messages)
        if chars <= 0 or content <= 0:  # no usage reported (0), or a count that cannot be this prompt's
            return
        with self._lock:
            self._chars += chars
            self._tokens += content
