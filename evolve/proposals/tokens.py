"""Counting a prompt's tokens: a model's own tokenizer where one is at hand, else characters over a ratio
calibrated on the token counts its server reports.

`estimate_tokens` is the prior: characters over `prompt.chars_per_token` (conservative). A `TokenCounter`
belongs to one model: `observe(messages, tokens)` feeds it the true count of a prompt (the `usage` a reply
reports, or the server's `/tokenize`), and from then on it estimates with that model's measured ratio;
with an exact `encode` (tiktoken for OpenAI's models) it counts exactly.
"""

from __future__ import annotations

import json
import math
import threading
import urllib.request
from collections.abc import Callable, Sequence

__all__ = ["MESSAGE_OVERHEAD", "REPLY_PRIMING", "TOKENIZERS", "TokenCounter", "count_on_server", "estimate_tokens",
           "server_counts", "tiktoken_encoder"]

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


TOKENIZERS = (("/tokenize", "content"), ("/extras/tokenize", "input"))
"""Where a server counts tokens, below its root (the base URL without `/v1`), and the request's text field:
llama.cpp's server, then llama-cpp-python's."""


def count_on_server(url: str, field: str, messages: Sequence[dict[str, str]], timeout: float = 10.0) -> int:
    """Return the prompt tokens of `messages` as the tokenizer at `url` counts them (a blocking request per
    message; the chat template's tokens estimated). Raises OSError or ValueError where it cannot."""
    return REPLY_PRIMING + sum(n + MESSAGE_OVERHEAD for n in server_counts(url, field, messages, timeout))


def server_counts(url: str, field: str, messages: Sequence[dict[str, str]], timeout: float = 10.0) -> list[int]:
    """Return each message content's tokens as the tokenizer at `url` counts them (a blocking request each)."""
    counts = []
    for content in _contents(messages):
        request = urllib.request.Request(url, json.dumps({field: content}).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            counts.append(len(json.load(reply)["tokens"]))
    return counts


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


def _split(messages: Sequence[dict[str, str]]) -> tuple[int, int]:
    """Characters of the system messages (prose: the task) and of the others (mostly code)."""
    system = sum(len(str(m.get("content", ""))) for m in messages if m.get("role") == "system")
    return system, sum(len(c) for c in _contents(messages)) - system


class TokenCounter:
    """Counts one model's prompt tokens, exactly with `encode`, else from calibrated ratios.

    Thread-safe (a lock guards the sums). Until `observe` has seen a prompt the estimate is
    `estimate_tokens` with the caller's prior. Afterwards the system messages (prose) and the others
    (mostly code, which splits finer) get a ratio each, fitted by least squares to every count observed
    (one prompt's messages counted apart, or two prompts of different sizes, are enough); until they can
    be told apart, one pooled ratio. The estimate is multiplied by `margin`.
    """

    def __init__(self, encode: Callable[[str], int] | None = None, margin: float = 1.05) -> None:
        self.encode = encode
        self.margin = margin
        self._chars = 0
        self._tokens = 0
        self._sums = [0.0] * 5  # least squares of tokens = a * system + b * other: Sss, Sso, Soo, Sst, Sot
        self.observed = 0
        self.prior = 2.5  # the characters per token of the last uncalibrated estimate
        self._lock = threading.Lock()

    @property
    def exact(self) -> bool:
        """Whether counts come from the model's own tokenizer."""
        return self.encode is not None

    @property
    def calibrated(self) -> bool:
        """Whether counts are the tokenizer's or calibrated on true counts (not the prior's estimate)."""
        return self.exact or self.observed > 0

    @property
    def chars_per_token(self) -> float | None:
        """The measured characters per token of this model's prompts, pooled (None: nothing observed yet)."""
        with self._lock:
            return self._chars / self._tokens if self._tokens else None

    def _fit(self) -> tuple[float, float] | None:
        """Tokens per character of system and other messages, where the observations tell them apart."""
        ss, so, oo, st, ot = self._sums
        det = ss * oo - so * so
        if det <= 1e-9 * max(ss * oo, 1.0):
            return None
        a, b = (st * oo - ot * so) / det, (ot * ss - st * so) / det
        return (a, b) if 0.05 < a < 2.0 and 0.05 < b < 2.0 else None

    def count(self, messages: Sequence[dict[str, str]], prior: float = 2.5) -> int:
        """Return the prompt tokens of `messages`; `prior` is the characters per token assumed uncalibrated."""
        if self.encode is not None:
            return _overhead(messages) + sum(self.encode(c) for c in _contents(messages))
        with self._lock:
            fit, pooled = self._fit(), self._chars / self._tokens if self._tokens else None
        if pooled is None:
            self.prior = prior
            return estimate_tokens(messages, prior)
        system, other = _split(messages)
        tokens = fit[0] * system + fit[1] * other if fit else (system + other) / pooled
        return _overhead(messages) + math.ceil(tokens * self.margin)

    def observe(self, messages: Sequence[dict[str, str]], tokens: int) -> None:
        """Calibrate on messages whose true token count (as the server counted it) is `tokens`."""
        system, other = _split(messages)
        content = tokens - _overhead(messages)
        if system + other <= 0 or content <= 0:  # no usage reported (0), or a count that cannot be this one's
            return
        with self._lock:
            self.observed += 1
            self._chars += system + other
            self._tokens += content
            for n, value in enumerate((system * system, system * other, other * other, system * content,
                                       other * content)):
                self._sums[n] += value
