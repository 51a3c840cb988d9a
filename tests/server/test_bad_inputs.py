"""A sweep of bad inputs over every route that takes a body: for each field its schema
documents, values of each type the schema forbids, numbers past each bound, strings past each
length, plus broken bodies (not JSON, not an object, unknown fields, lone surrogates). Every one
must be a 4xx in the route's own error shape, and a 400 must name the field it is about.

The cases are built from the server's own /openapi.json, so a field added to a request is swept
as soon as it is documented.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow  # about 600 requests: ten seconds here

OLLAMA = {"/api/generate", "/api/chat", "/api/show", "/api/pull"}
# A valid body per route: the sweep changes one field at a time.
VALID = {
    "/v1/completions": {"prompt": "The fox", "max_tokens": 2},
    "/v1/chat/completions": {"model": "chat", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2},
    "/api/diffuse": {"prompt": "The fox", "max_new_tokens": 2, "stream": False},
    "/api/resolve": {"model": "tiny"},
    "/api/stop": {"model": "tiny"},
    "/api/generate": {"model": "tiny", "prompt": "The fox", "stream": False, "options": {"num_predict": 2}},
    "/api/chat": {"model": "chat", "messages": [{"role": "user", "content": "Hi"}], "stream": False},
    "/api/show": {"model": "tiny"},
    "/api/preview": {"html": "<p>hi</p>"},
    # The live server's models are fixed, so a pull never reaches a hub: "tiny" needs no download.
    "/api/pull": {"model": "tiny", "stream": False},
}
SAMPLES = {"string": "x", "integer": 7, "number": 1.5, "boolean": True, "array": [1], "object": {"a": 1}, "null": None}


def resolve(schema: dict, components: dict) -> dict:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def alternatives(schema: dict, components: dict) -> list[dict]:
    schema = resolve(schema, components)
    options = schema.get("anyOf") or schema.get("oneOf") or [schema]
    return [resolve(o, components) for o in options]


def forbidden_values(schema: dict, components: dict) -> list[tuple[str, object]]:
    """(what, value) pairs the field's schema does not allow."""
    options = alternatives(schema, components)
    if any(not o.get("type") and "enum" not in o and "const" not in o for o in options):
        return []  # an untyped alternative: anything goes
    types = {o["type"] for o in options if "type" in o}
    if "number" in types:
        types.add("integer")  # JSON Schema: every integer is a number
    bad = [(f"a {t}", v) for t, v in SAMPLES.items() if t not in types]
    free_text = any(o.get("type") == "string" and "enum" not in o and "const" not in o for o in options)
    for o in options:
        kind = o.get("type")
        if ("enum" in o or "const" in o) and not free_text:
            bad.append(("not one of the choices", "not-a-choice"))
        if kind in ("integer", "number"):
            if "maximum" in o:
                bad.append(("above the maximum", o["maximum"] + 1))
            if "exclusiveMaximum" in o:
                bad.append(("at the exclusive maximum", o["exclusiveMaximum"]))
            if "minimum" in o:
                bad.append(("below the minimum", o["minimum"] - 1))
            if "exclusiveMinimum" in o:
                bad.append(("at the exclusive minimum", o["exclusiveMinimum"]))
        if kind == "string" and "maxLength" in o and o["maxLength"] < 100_000 and not free_text_longer(options, o):
            bad.append(("too long", "x" * (o["maxLength"] + 1)))
        if kind == "string" and o.get("minLength", 0) > 0:
            bad.append(("too short", ""))
        if kind == "array" and "maxItems" in o:
            item = SAMPLES.get(resolve(o.get("items", {}), components).get("type", "string"), "x")
            bad.append(("too many items", [item] * (o["maxItems"] + 1)))
    return bad


def free_text_longer(options: list[dict], bounded: dict) -> bool:
    """Another string alternative takes longer text than `bounded` does."""
    return any(
        o is not bounded and o.get("type") == "string" and o.get("maxLength", 1e9) > bounded["maxLength"]
        for o in options
    )


def cases(schema: dict) -> list[tuple[str, str, dict, str]]:
    """(path, description, body, field) for every bad input."""
    components = schema["components"]["schemas"]
    out = []
    for path, operations in schema["paths"].items():
        body_schema = operations.get("post", {}).get("requestBody", {}).get("content", {}).get("application/json")
        if path not in VALID or body_schema is None:
            continue
        request = resolve(body_schema["schema"], components)
        for field, prop in request.get("properties", {}).items():
            for what, value in forbidden_values(prop, components):
                out.append((path, f"{field}: {what}", VALID[path] | {field: value}, field))
            nested = [o for o in alternatives(prop, components) if o.get("type") == "object" and "properties" in o]
            for inner in nested:  # e.g. Ollama's options, OpenAI's stream_options
                for key, sub in inner["properties"].items():
                    for what, value in forbidden_values(sub, components)[:3]:
                        out.append((path, f"{field}.{key}: {what}", VALID[path] | {field: {key: value}}, key))
        out.append((path, "an unknown field", VALID[path] | {"bogus_field": 1}, "bogus_field"))
        out.append((path, "a lone surrogate", None, ""))
    return out


BROKEN_BODIES = [
    ("not JSON", b"{not json", "body"),
    ("truncated JSON", b'{"prompt": "x"', "body"),
    ("an array", b"[1, 2]", "body"),
    ("a string", b'"hello"', "body"),
    ("empty", b"", "body"),
    ("invalid UTF-8", b'{"prompt": "\xff\xfe"}', "body"),
]


def error_text(path: str, response) -> str:
    body = response.json()
    if path in OLLAMA:
        assert isinstance(body["error"], str), body
        return body["error"]
    error = body["error"]
    assert set(error) >= {"message", "type", "param", "code"}, body
    return f"{error['param']} {error['message']}"


def test_every_bad_input_is_a_4xx_naming_its_field(live):
    with live.client() as http:
        schema = http.get("/openapi.json").json()
        sweep = cases(schema)
        problems, sent = [], 0
        for path, what, body, field in sweep:
            if body is None:  # a lone surrogate in the first text field
                text = json.dumps(VALID[path]).replace('"The fox"', '"a\\ud800b"').replace('"Hi"', '"\\udfff"')
                text = text.replace('"tiny"', '"t\\ud800"').replace('"<p>hi</p>"', '"\\ud83d"')
                response = http.post(path, content=text.encode(), headers={"Content-Type": "application/json"})
            else:
                response = http.post(path, json=body)
            sent += 1
            if not 400 <= response.status_code < 500:
                problems.append(f"{path} {what}: {response.status_code} {response.text[:200]}")
                continue
            message = error_text(path, response)
            if response.status_code == 400 and field and field not in message:
                problems.append(f"{path} {what}: the error does not name {field!r}: {message[:200]}")
        for path in VALID:
            for what, raw, field in BROKEN_BODIES:
                response = http.post(path, content=raw, headers={"Content-Type": "application/json"})
                sent += 1
                if response.status_code != 400:
                    problems.append(f"{path} {what}: {response.status_code} {response.text[:200]}")
                elif field not in error_text(path, response):
                    problems.append(f"{path} {what}: the error does not name {field!r}")
    print(f"bad-input sweep: {sent} requests")
    assert sent >= 200
    assert not problems, f"{len(problems)} of {sent}:\n" + "\n".join(problems[:30])
