"""OpenAI fields unmask does not implement: which values pass, which are refused, and why.

A field passes when its value asks for nothing we would silently skip (a zero penalty, an empty
tool list, `{"type": "text"}`). Any other value is a 400 naming the field, so a client never
believes it got JSON mode, log probabilities or a tool call when it did not. Fields that change
nothing about the output (`user`, `store`, `metadata`, ...) are accepted and ignored; docs/api.md
lists every field in one of the three groups, and a test keeps that list in step with the schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import invalid


def _unset_or_zero(value: Any) -> bool:
    return value is None or value == 0


def _empty(value: Any) -> bool:
    return not value


def _no_tool_choice(value: Any) -> bool:
    return value in (None, "none", "auto")


def _text_format(value: Any) -> bool:
    return value is None or value.get("type") == "text"


def _text_only(value: Any) -> bool:
    return value is None or list(value) == ["text"]


Rule = tuple[Callable[[Any], bool], str]

PENALTY = "repetition penalties are not implemented for diffusion decoding; send 0 or leave it out"
SHARED_RULES: dict[str, Rule] = {
    "frequency_penalty": (_unset_or_zero, PENALTY),
    "presence_penalty": (_unset_or_zero, PENALTY),
    "logit_bias": (_empty, "logit_bias is not supported; send {} or leave it out"),
}

CHAT_RULES: dict[str, Rule] = SHARED_RULES | {
    "logprobs": (_empty, "log probabilities are not returned; send false or leave it out"),
    "top_logprobs": (_unset_or_zero, "log probabilities are not returned; send 0 or leave it out"),
    "response_format": (_text_format, 'only {"type": "text"} is supported (no JSON mode or JSON schema)'),
    "tools": (_empty, "tool calling is not supported; send [] or leave it out"),
    "tool_choice": (_no_tool_choice, 'tool calling is not supported; send "none" or leave it out'),
    "functions": (_empty, "function calling is not supported"),
    "function_call": (_no_tool_choice, "function calling is not supported"),
    "modalities": (_text_only, "only text output is supported"),
    "audio": (_empty, "audio output is not supported"),
    "prediction": (_empty, "predicted outputs are not supported"),
    "web_search_options": (_empty, "web search is not supported"),
}

COMPLETION_RULES: dict[str, Rule] = SHARED_RULES | {
    "logprobs": (_unset_or_zero, "log probabilities are not returned; send 0 or leave it out"),
}

# Accepted and ignored: they change nothing about the generated text.
CHAT_IGNORED = (
    "user",
    "store",
    "metadata",
    "service_tier",
    "parallel_tool_calls",
    "reasoning_effort",
    "verbosity",
    "safety_identifier",
    "prompt_cache_key",
)
COMPLETION_IGNORED = ("user",)


def refuse_unsupported(body: Any, rules: dict[str, Rule]) -> None:
    for field, (harmless, why) in rules.items():
        value = getattr(body, field, None)
        if not harmless(value):
            raise invalid(field, why, code="unsupported_parameter")


def check_best_of(best_of: int | None, n: int) -> None:
    """best_of > n would rank candidates by log probability, which unmask does not compute."""
    if best_of is not None and best_of != n:
        raise invalid(
            "best_of", f"only best_of = n ({n}) is supported: candidates are not ranked", code="unsupported_parameter"
        )


def message_text(messages) -> list[dict]:
    """Chat messages as the plain {role, content} dicts a chat template expects."""
    out = []
    for m in messages:
        content = m.content
        if isinstance(content, list):
            content = "".join(part.text for part in content)
        role = "system" if m.role == "developer" else m.role  # OpenAI's newer name for system
        out.append({"role": role, "content": content or ""})
    return out
