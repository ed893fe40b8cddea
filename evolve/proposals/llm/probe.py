"""Before a campaign starts: does every configured model's endpoint answer?

One cheap request per endpoint (`GET /models`, no retries, `llm.probe_timeout` seconds). No answer, or a
refused key, is one `ConfigError` line naming the key to fix; any other HTTP answer means a server is
there (a server without `/models` answers 404, which is fine). The request is the standard library's: the
openai SDK (~0.6 s to import) is imported meanwhile on a thread (`openai_model.import_sdk_in_background`).

`llm.edit_format=auto` asks each such model one tiny question whose answer a JSON schema fixes (a word
it could not guess): the model gets structured edits if the answer conforms, else the text formats.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from dataclasses import replace

from evolve.config import LLMConfig, ModelConfig
from evolve.errors import ConfigError
from evolve.proposals.llm.openai_model import api_key
from evolve.proposals.structured import PROBE_SCHEMA, PROBE_WORD, RESPONSE_FORMATS, response_format

__all__ = ["probe_endpoints", "resolve_edit_formats", "takes_schema"]

_log = logging.getLogger(__name__)
_OPENAI = "https://api.openai.com/v1"


def _why(exc: BaseException | str) -> str:
    """The innermost cause of a connection error, in a few words (`connection refused`)."""
    while isinstance(exc, BaseException) and exc.__cause__ is not None:
        exc = exc.__cause__
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc).strip()) or type(exc).__name__
    return text[:1].lower() + text[1:200]


def probe(model: ModelConfig, key: str, timeout: float) -> None:
    """Ask `model`'s endpoint for its model list; raise ConfigError when it does not answer."""
    url = model.base_url or _OPENAI
    name = f" (model {model.name})" if model.name else ""
    try:
        request = urllib.request.Request(url.rstrip("/") + "/models",
                                         headers={"Authorization": f"Bearer {api_key(model)}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise ConfigError(f"{key}={url}{name} refuses the key in {model.api_key_env or '(none)'} "
                              f"(HTTP {exc.code}); check the key or api_key_env") from None
        return  # a server answered; some have no model list
    except ValueError as exc:  # no scheme at all
        raise ConfigError(f"{key}={url}{name} is not a URL ({exc}); give one such as http://localhost:8000/v1") \
            from None
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise ConfigError(f"{key}={url}{name} does not answer (nothing within {timeout:g} s); start the server "
                              f"or fix the URL (llm.probe_timeout=null skips this check)") from None
        raise ConfigError(f"{key}={url}{name} does not answer ({_why(reason)}); start the server or fix the URL") \
            from None
    try:
        listed = [m["id"] for m in json.loads(body).get("data", []) if isinstance(m, dict) and "id" in m]
    except (ValueError, AttributeError):
        return  # an answer that is not a model list: a server is there
    if listed and model.model not in listed:
        _log.warning("%s=%s lists no model %r (it has %s); requests for it may fail", key, url, model.model,
                     ", ".join(listed[:5]) + (", ..." if len(listed) > 5 else ""))


def probe_endpoints(config: LLMConfig) -> None:
    """Probe each distinct endpoint (and key) of `config`'s models; no-op without `probe_timeout`."""
    if config.probe_timeout is None or config.kind not in ("openai", "ensemble", "tiers"):
        return
    seen: set[tuple[str, str | None]] = set()
    for n, model in enumerate(config.model_configs()):
        if (model.base_url or _OPENAI, model.api_key_env) in seen:
            continue
        seen.add((model.base_url or _OPENAI, model.api_key_env))
        key = "llm.base_url" if config.kind == "openai" else f"llm.models[{n}].base_url"
        probe(model, key, config.probe_timeout)




def takes_schema(model: ModelConfig) -> tuple[str | None, str]:
    """The `response_format` shape in which `model`'s endpoint honours a JSON schema (None: neither), and
    what it answered to the last one tried (`HTTP 422`, `an answer outside the schema`)."""
    url = (model.base_url or _OPENAI).rstrip("/") + "/chat/completions"
    said = ""
    for shape in RESPONSE_FORMATS:
        body = {"model": model.model, "max_tokens": 24, "temperature": 0.0,
                "messages": [{"role": "user", "content": "Answer with a JSON object."}],
                "response_format": response_format(shape, PROBE_SCHEMA, name="probe")}
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
            "Authorization": f"Bearer {api_key(model)}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=model.timeout) as response:
                content = json.loads(response.read())["choices"][0]["message"]["content"]
        except urllib.error.HTTPError as exc:
            said = f"HTTP {exc.code}"
            continue
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            said = f"no usable answer ({_why(exc)})"
            continue
        try:
            if json.loads(content) == {"word": PROBE_WORD}:
                return shape, "a conforming answer"
        except (ValueError, TypeError):
            pass
        said = "an answer outside the schema"
    return None, said


def resolve_edit_formats(config: LLMConfig) -> LLMConfig:
    """`config` with each model's `edit_format: auto` made `structured` where its endpoint honours a JSON
    schema (one short request each, logged in one line); unchanged without `probe_timeout`."""
    if config.probe_timeout is None or config.kind not in ("openai", "ensemble", "tiers"):
        return config
    models = config.model_configs()
    if all(m.edit_format != "auto" for m in models):
        return config
    resolved = []
    for model in models:
        if model.edit_format == "auto":
            shape, said = takes_schema(model)
            _log.info("llm.edit_format=auto: model %s at %s %s", model.name or model.model, model.base_url or _OPENAI,
                      f"honours a JSON schema ({shape}): structured edits" if shape else
                      f"does not honour a JSON schema ({said}): SEARCH/REPLACE and rewrites as text")
            model = replace(model, edit_format="structured" if shape else "auto")
        resolved.append(model)
    if config.kind == "openai":
        return replace(config, edit_format=resolved[0].edit_format or "auto")
    return replace(config, models=resolved)
