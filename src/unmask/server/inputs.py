"""Request text to prompt ids, with every failure a 400 naming the field it came from.

Routes tokenize in a worker thread (`run_in_threadpool`), never on the event loop, and bound
the text first: a prompt with many more characters than the context holds tokens is refused
before the tokenizer spends seconds on it.
"""

from __future__ import annotations

from ..engine import RequestError, TemplateError, chat_or_prompt_ids
from .errors import invalid

# A token is rarely more than a few characters; runs of spaces in code can be 16 or more.
CHARS_PER_TOKEN_BOUND = 16


def bound_text(limits, field: str, *texts: str | None) -> None:
    """Refuse text that could not fit the context however it tokenizes."""
    total = sum(len(t) for t in texts if t)
    cap = CHARS_PER_TOKEN_BOUND * limits.context
    if total > cap:
        raise invalid(
            field,
            f"{total} characters is more than a {limits.context}-token context can hold",
            code="context_length_exceeded",
        )


def require_tokenizer(model, name: str) -> None:
    if model.tokenizer is None:
        raise invalid("model", f"{name!r} has no tokenizer.json, so it cannot take or return text")


def chat_prompt(model, messages: list[dict]) -> list[int]:
    try:
        return chat_or_prompt_ids(model, messages=messages)
    except RequestError as err:
        raise invalid(err.field, str(err).split(": ", 1)[-1]) from None
    except TemplateError as err:
        raise invalid("messages", str(err)) from None


def vocabulary_size(model) -> int:
    config = model.config
    return int(config.get("embedding_size") or config.get("vocab_size") or model.tokenizer.vocab_size)


def token_prompt(model, ids: list[int], field: str) -> list[int]:
    size = vocabulary_size(model)
    for t in ids:
        if not 0 <= t < size:
            raise invalid(field, f"token id {t} is outside the vocabulary (0 to {size - 1})")
    return list(ids)
