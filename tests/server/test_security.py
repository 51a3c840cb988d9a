"""Safe defaults: API key, Host and Origin refusal, body size, field limits, one error shape."""

from __future__ import annotations

import pytest

from .conftest import TEST_LIMITS

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def assert_error(response, status: int, param: str | None = None, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error
    if param is not None:
        assert error["message"].startswith(param), error
    return error


def test_api_key_guards_everything_but_health_and_the_studio(start_server, tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html><title>studio</title>")
    server = start_server(api_key="s3cret", studio_dir=tmp_path)
    with server.client() as http:
        for path in ("/v1/models", "/api/models", "/openapi.json", "/docs"):
            response = http.get(path)
            assert_error(response, 401, code="invalid_api_key")
            assert response.headers["www-authenticate"] == "Bearer"
        assert_error(http.post("/v1/chat/completions", json=CHAT), 401)
        assert_error(http.get("/v1/models", headers={"Authorization": "Bearer wrong"}), 401)
        assert http.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        chat = http.post("/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer s3cret"})
        assert chat.status_code == 200
        assert http.get("/health").status_code == 200
        studio = http.get("/")
        assert studio.status_code == 200 and "<title>studio</title>" in studio.text


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.nip.io", "192.168.1.5"])
def test_foreign_host_is_refused(live, host):
    with live.client() as http:
        error = assert_error(http.get("/v1/models", headers={"Host": host}), 403, code="forbidden_host")
        assert_error(http.get("/health", headers={"Host": host}), 403)
    assert "rebinding" in error["message"]


def test_loopback_names_are_hosts(live):
    port = live.settings.port
    with live.client() as http:
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", f"studio.localhost:{port}"):
            assert http.get("/v1/models", headers={"Host": host}).status_code == 200, host


@pytest.mark.parametrize("origin", ["null", "http://evil.example", "http://localhost:1", "file://"])
def test_foreign_origin_is_refused(live, origin):
    with live.client() as http:
        response = http.post("/v1/chat/completions", json=CHAT, headers={"Origin": origin})
        assert_error(response, 403, code="forbidden_origin")
        assert "access-control-allow-origin" not in response.headers


def test_same_origin_is_allowed(live):
    with live.client() as http:
        response = http.post("/v1/chat/completions", json=CHAT, headers={"Origin": live.url})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_allowed_origin_gets_cors(start_server):
    server = start_server(allow_origins=["http://app.example"], api_key="k")
    with server.client() as http:
        preflight = http.options(
            "/v1/chat/completions",
            headers={
                "Origin": "http://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://app.example"
        denied = http.post("/v1/chat/completions", json=CHAT, headers={"Origin": "http://app.example"})
        assert_error(denied, 401)
        assert denied.headers["access-control-allow-origin"] == "http://app.example"  # readable by the page
        ok = http.post(
            "/v1/chat/completions", json=CHAT, headers={"Origin": "http://app.example", "Authorization": "Bearer k"}
        )
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "http://app.example"
        assert_error(http.post("/v1/chat/completions", json=CHAT, headers={"Origin": "http://other.example"}), 403)


def test_body_size_is_bounded(live):
    big = {"model": "tiny", "prompt": "x" * (TEST_LIMITS.body_bytes + 1)}
    with live.client() as http:
        assert_error(http.post("/v1/completions", json=big), 413, "body", "body_too_large")

        def chunks():  # no Content-Length: counted as it arrives
            for _ in range(TEST_LIMITS.body_bytes // 1024 + 2):
                yield b" " * 1024

        assert_error(
            http.post("/v1/completions", content=chunks(), headers={"Content-Type": "application/json"}), 413, "body"
        )


LIMIT_CASES = [
    ("/v1/completions", {"prompt": "x", "max_tokens": TEST_LIMITS.max_tokens + 1}, "max_tokens"),
    ("/v1/chat/completions", CHAT | {"max_completion_tokens": 999}, "max_completion_tokens"),
    ("/v1/completions", {"prompt": "x", "steps": TEST_LIMITS.steps + 1}, "steps"),
    ("/v1/completions", {"prompt": "x", "n": 5}, "n"),
    ("/v1/completions", {"prompt": ["a", "b"], "n": 3}, "n"),
    ("/v1/completions", {"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ("/v1/completions", {"prompt": "x", "stop": ["y" * 65]}, "stop[0]"),
    ("/v1/completions", {"prompt": "the fox " * 200}, "prompt"),
    ("/v1/completions", {"prompt": [5] * 250, "max_tokens": 16}, "max_tokens"),
    ("/v1/completions", {"prompt": "x", "temperature": 11}, "temperature"),
    ("/v1/completions", {"prompt": "x", "seed": -1}, "seed"),
    ("/v1/completions", {"prompt": "x", "max_tokens": 12, "block_length": 5}, "block_length"),
    ("/v1/completions", {"prompt": "x", "threshold": 0.9, "factor": 1.0}, "threshold"),
    ("/v1/completions", {"prompt": "x", "mystery": 1}, "mystery"),
    ("/v1/completions", {"prompt": "x", "best_of": 2}, "best_of"),
    ("/v1/chat/completions", CHAT | {"messages": [{"role": "user", "content": "hi"}] * 257}, "messages"),
    ("/v1/chat/completions", CHAT | {"messages": [{"role": "tool", "content": "42"}]}, "messages[0].role"),
    ("/v1/chat/completions", CHAT | {"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ("/v1/chat/completions", CHAT | {"response_format": {"type": "json_object"}}, "response_format"),
    ("/v1/chat/completions", CHAT | {"messages": []}, "messages"),
    ("/api/diffuse", {"prompt": "x", "max_new_tokens": 17}, "max_new_tokens"),
]


@pytest.mark.parametrize("path,body,param", LIMIT_CASES, ids=[c[2] + "-" + c[0].rsplit("/")[-1] for c in LIMIT_CASES])
def test_field_limits_name_the_field(live, path, body, param):
    with live.client() as http:
        assert_error(http.post(path, json=body), 400, param)


def test_harmless_openai_fields_are_accepted(live):
    extras = {
        "user": "u1",
        "store": False,
        "metadata": {"a": "b"},
        "frequency_penalty": 0,
        "presence_penalty": 0.0,
        "logit_bias": {},
        "logprobs": False,
        "tools": [],
        "tool_choice": "none",
        "response_format": {"type": "text"},
        "parallel_tool_calls": True,
        "service_tier": "auto",
    }
    with live.client() as http:
        assert http.post("/v1/chat/completions", json=CHAT | extras).status_code == 200


def test_errors_carry_no_internals(start_server):
    def broken(ref):
        raise RuntimeError(f"cannot read /secret/place/{ref}/model.safetensors")

    server = start_server(loader=broken)
    with server.client() as http:
        error = assert_error(http.post("/v1/chat/completions", json=CHAT), 500)
        assert "/secret" not in error["message"] and "Traceback" not in error["message"]
        assert error["type"] == "server_error"
        assert_error(http.get("/no/such/route"), 404, code="unknown_route")
        assert_error(http.delete("/v1/models"), 405)
        assert_error(
            http.post("/v1/completions", content=b"{not json", headers={"Content-Type": "application/json"}),
            400,
            "body",
        )
