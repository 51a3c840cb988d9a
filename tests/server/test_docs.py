"""docs/api.md stays true: every request field is in its checklist, every refused OpenAI field in
its table, every limit constant's default in the limits table."""

from __future__ import annotations

import re
from pathlib import Path

from unmask.server import compat, limits
from unmask.server.schemas import ChatCompletionRequest, CompletionRequest, DiffuseRequest

DOC = (Path(__file__).parents[2] / "docs" / "api.md").read_text()


def section(title: str) -> str:
    start = DOC.index(title)
    following = DOC.find("\n### ", start + len(title))
    return DOC[start : following if following > 0 else None]


def test_every_openai_field_is_in_the_checklist():
    for title, model, rules, ignored in [
        ("### /v1/chat/completions", ChatCompletionRequest, compat.CHAT_RULES, compat.CHAT_IGNORED),
        ("### /v1/completions", CompletionRequest, compat.COMPLETION_RULES, compat.COMPLETION_IGNORED),
    ]:
        checklist = section(title)
        named = set(re.findall(r"`([a-z_]+)`", checklist))
        assert set(model.model_fields) <= named, (title, set(model.model_fields) - named)
        assert set(rules) <= named and set(ignored) <= named


def test_native_fields_are_documented():
    native = section("### POST /api/diffuse")
    assert set(DiffuseRequest.model_fields) <= set(re.findall(r"`([a-z_]+)`", native))


def test_limits_table_matches_the_constants():
    assert f"| body | {limits.MAX_BODY_BYTES // 2**20} MiB |" in DOC
    assert f"| {limits.MAX_TOKENS} |" in DOC and f"| {limits.MAX_SERVER_STEPS} |" in DOC
    assert f"| {limits.MAX_CONTEXT} |" in DOC and f"| {limits.MAX_CHOICES} |" in DOC
    assert f"{limits.MAX_STOP} strings of 1 to {limits.MAX_STOP_CHARS} characters" in DOC
    assert f"| {limits.MAX_MESSAGES} |" in DOC and f"| {limits.MAX_GAPS} |" in DOC
