"""What fuzzing, fault injection and security probes found, each pinned by a test: lone
surrogates, text size and tokenizing on the event loop, the work budget, method routing and HEAD,
headers on every response, no CDN docs, strict types, an empty API key, stalled bodies."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from unmask.server import Limits, Settings

from .conftest import TEST_LIMITS, LiveServer, served

SURROGATE = "a\ud800b"


def raw_post(client, path: str, text: str) -> httpx.Response:
    """A JSON body as JavaScript would send it, with a lone surrogate escaped as JSON allows."""
    return client.post(path, content=text.encode(), headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(
    "path,body,field",
    [
        ("/v1/completions", '{"prompt": "a\\ud800b"}', "prompt"),
        ("/v1/chat/completions", '{"messages": [{"role": "user", "content": "a\\ud800b"}]}', "messages[0].content"),
        ("/api/diffuse", '{"template": "x {{2}} \\ud800"}', "template"),
        ("/api/generate", '{"model": "tiny", "prompt": "\\udfff"}', "prompt"),
        ("/api/chat", '{"model": "tiny", "messages": [{"role": "user", "content": "\\ud83d"}]}', "messages"),
    ],
)
def test_a_lone_surrogate_is_a_400_naming_the_field(live, path, body, field):
    with live.client() as client:
        r = raw_post(client, path, body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    message = error if isinstance(error, str) else error["message"]
    assert message.startswith(field) and "surrogate" in message


@pytest.mark.parametrize("field,value", [("max_tokens", "8"), ("stream", "yes"), ("temperature", "0.5"), ("n", 1.0)])
def test_types_are_not_coerced(live, field, value):
    with live.client() as client:
        r = client.post("/v1/completions", json={"prompt": "The fox", field: value})
    assert r.status_code == 400 and r.json()["error"]["param"] == field


def test_text_beyond_any_context_is_refused_before_tokenizing(live):
    with live.client() as client:
        r = client.post("/v1/completions", json={"prompt": "x" * (16 * TEST_LIMITS.context + 1)})
    assert r.status_code in (400, 413)


@pytest.mark.slow
def test_tokenizing_does_not_freeze_the_server(server_models):
    """Eight large prompts tokenize off the event loop: /health keeps answering at once."""
    default, others = served(server_models)
    limits = Limits(body_bytes=8 * 1024 * 1024, max_tokens=16, steps=16, context=32768)
    server = LiveServer(Settings(model=default, models=others, limits=limits))
    prompt = "The fox ran to the river. " * 18_000  # 468,000 characters
    try:
        results = []

        def post():
            with server.client() as client:
                results.append(client.post("/v1/completions", json={"prompt": prompt, "max_tokens": 4}).status_code)

        threads = [threading.Thread(target=post) for _ in range(8)]
        for t in threads:
            t.start()
        worst = 0.0
        with server.client() as client:
            while any(t.is_alive() for t in threads):
                start = time.perf_counter()
                client.get("/health").raise_for_status()
                worst = max(worst, time.perf_counter() - start)
                time.sleep(0.02)
        for t in threads:
            t.join()
        assert worst < 1.0, f"/health took {worst:.2f} s while prompts tokenized"
        assert len(results) == 8
    finally:
        server.stop()


def test_work_is_bounded_per_request(start_server):
    server = start_server(limits=Limits(max_tokens=16, steps=16, context=256, choices=4, work=1000))
    with server.client() as client:
        r = client.post("/v1/completions", json={"prompt": "The fox", "max_tokens": 16, "steps": 16, "n": 4})
        assert r.status_code == 400
        error = r.json()["error"]
        assert error["code"] == "too_much_work" and error["param"] in ("n", "steps", "max_tokens")
        assert error["message"].startswith(error["param"])
        ok = client.post("/v1/completions", json={"prompt": "The fox", "max_tokens": 8, "steps": 4})
        assert ok.status_code == 200


def test_the_queue_is_bounded_by_work(start_server):
    """Beyond the queued work limit, a request is a fast 429, however few requests are queued."""
    server = start_server(limits=Limits(max_tokens=16, steps=16, context=256, choices=4, queued_work=300))
    with server.client() as client:
        r = client.post("/v1/completions", json={"prompt": "The fox", "max_tokens": 16, "steps": 16, "n": 2})
    assert r.status_code == 429 and "Retry-After" in r.headers


@pytest.mark.parametrize(
    "method,path,status,allow",
    [
        ("GET", "/v1/completions", 405, "POST"),
        ("GET", "/api/diffuse", 405, "POST"),
        ("GET", "/api/chat", 405, "POST"),
        ("POST", "/v1/models", 405, "GET"),
        ("POST", "/no/such/path", 404, None),
        ("DELETE", "/no/such/path", 404, None),
        ("POST", "/", 405, "GET"),
        ("HEAD", "/health", 200, None),
        ("HEAD", "/v1/models", 200, None),
    ],
)
def test_methods_are_routed_as_http_says(live, method, path, status, allow):
    with live.client() as client:
        r = client.request(method, path)
    assert r.status_code == status, r.text
    if allow:
        assert allow in r.headers["allow"]
    if method == "HEAD":
        assert r.content == b""


@pytest.mark.parametrize("path", ["/health", "/v1/models", "/no/such/path", "/", "/openapi.json"])
def test_every_response_has_the_baseline_headers(live, path):
    with live.client() as client:
        r = client.get(path)
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"


def test_no_docs_page_pulls_scripts_from_a_cdn(live):
    with live.client() as client:
        assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404
        assert client.get("/openapi.json").status_code == 200


def test_an_empty_api_key_is_refused_at_start():
    with pytest.raises(ValueError, match="^api_key: an empty API key"):
        Settings.from_env({}, api_key="")
    with pytest.raises(ValueError, match="^api_key"):
        Settings.from_env({"UNMASK_API_KEY": "  "})


def test_an_empty_api_key_on_the_command_line_is_one_line():
    from typer.testing import CliRunner

    from unmask.cli import app

    result = CliRunner().invoke(app, ["serve", "--api-key", ""])
    assert result.exit_code != 0 and "api_key" in result.output and "Traceback" not in result.output


def test_a_stalled_body_is_cut(start_server):
    server = start_server(limits=Limits(max_tokens=16, steps=16, context=256, body_seconds=0.5))
    with socket.create_connection(("127.0.0.1", server.settings.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"prompt":'
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408")


@pytest.mark.parametrize("after_a_request", [False, True])
def test_slow_headers_are_cut(start_server, after_a_request):
    """Headers trickled a byte at a time (slowloris) get a 408 and a closed socket, on a fresh
    connection and on a kept-alive one, while a prompt client on another connection is served."""
    server = start_server(limits=Limits(max_tokens=16, steps=16, context=256, header_seconds=0.6))
    with socket.create_connection(("127.0.0.1", server.settings.port), timeout=10) as sock:
        if after_a_request:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            first = b""
            while not first.endswith(b"}}"):  # the whole answer, headers and JSON body
                first += sock.recv(4096)
            assert first.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        answer = b""
        for byte in b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 40:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            with server.client() as http:  # others are not held up
                assert http.get("/health").status_code == 200
            time.sleep(0.05)
        sock.settimeout(5)
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"param":"headers"' in answer
    assert time.monotonic() - started < 3.0
