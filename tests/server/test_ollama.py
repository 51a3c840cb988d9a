"""Ollama's API with the official `ollama` Python client against a real server: generate and chat
(streamed and not), list, show, ps, version, its error shape, and the diffusion knobs in options."""

from __future__ import annotations

import json

import httpx
import ollama
import pytest

from unmask.server import Limits, Settings

from .conftest import LiveServer, served

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(server_models):
    default, others = served(server_models)
    live = LiveServer(Settings(model="story", models=["story", default, *others], limits=Limits()))
    yield live
    live.stop()


@pytest.fixture
def client(server):
    return ollama.Client(host=server.url)


OPTIONS = {"num_predict": 32, "seed": 3, "steps": 16}


def test_generate_whole_and_streamed_agree(client):
    whole = client.generate(model="story", prompt="Once upon a time", options=OPTIONS, stream=False)
    assert whole.done and whole.done_reason in ("stop", "length") and whole.response
    assert whole.eval_count > 0 and whole.prompt_eval_count > 0 and whole.total_duration > 0
    parts = list(client.generate(model="story", prompt="Once upon a time", options=OPTIONS, stream=True))
    assert parts[-1].done and not any(p.done for p in parts[:-1])
    assert "".join(p.response for p in parts) == whole.response
    assert parts[-1].eval_count == whole.eval_count


def test_generate_matches_the_openai_route(client, server):
    """The same request through Ollama's and OpenAI's routes: the same text (one pipeline)."""
    whole = client.generate(model="story", prompt="Once upon a time", options=OPTIONS, stream=False)
    with server.client() as http:
        body = {"model": "story", "prompt": "Once upon a time", "max_tokens": 32, "seed": 3, "steps": 16}
        r = http.post("/v1/completions", json=body).json()
    assert r["choices"][0]["text"] == whole.response
    assert r["usage"]["completion_tokens"] == whole.eval_count


def test_chat_with_a_template(client):
    messages = [{"role": "user", "content": "The fox"}]
    whole = client.chat(model="chat", messages=messages, options={"num_predict": 8, "seed": 1}, stream=False)
    assert whole.message.role == "assistant" and whole.done
    parts = list(client.chat(model="chat", messages=messages, options={"num_predict": 8, "seed": 1}, stream=True))
    assert "".join(p.message.content for p in parts) == whole.message.content


def test_presets_and_knobs_ride_in_options(client):
    fast = client.generate(model="story", prompt="Once", options={"num_predict": 32, "preset": "fast"}, stream=False)
    assert fast.done
    with pytest.raises(ollama.ResponseError) as err:
        client.generate(model="story", prompt="Once", options={"steps": 0}, stream=False)
    assert err.value.status_code == 400 and "steps" in str(err.value)


def test_list_show_ps_version(client, server):
    names = [m.model for m in client.list().models]
    assert "story" in names and "chat" in names
    shown = client.show("story")
    assert shown.details.family == "llada" and "completion" in shown.capabilities and "steps" in shown.parameters
    client.generate(model="story", prompt="Once", options={"num_predict": 8}, stream=False)
    assert "story" in [m.model for m in client.ps().models]
    assert httpx.get(f"{server.url}/api/version").json()["version"]


def test_keep_alive_zero_unloads(client):
    client.generate(model="story", prompt="Once", options={"num_predict": 8}, stream=False)
    gone = client.generate(model="story", prompt="", keep_alive=0)
    assert gone.done_reason == "unload"
    assert "story" not in [m.model for m in client.ps().models]


def test_errors_are_in_ollamas_shape(server):
    with server.client() as http:
        missing = http.post("/api/generate", json={"model": "no-such", "prompt": "x"})
        assert missing.status_code == 404 and isinstance(missing.json()["error"], str)
        bad = http.post("/api/chat", json={"model": "story", "messages": [], "options": {"bogus": 1}})
        assert bad.status_code == 400 and "bogus" in bad.json()["error"]
        penalty = http.post("/api/generate", json={"model": "story", "prompt": "x", "options": {"repeat_penalty": 1.3}})
        assert penalty.status_code == 400 and "repeat_penalty" in penalty.json()["error"]


def test_a_stream_is_ndjson(server):
    with server.client() as http:
        with http.stream("POST", "/api/generate", json={"model": "story", "prompt": "Once", "options": OPTIONS}) as r:
            assert r.headers["content-type"].startswith("application/x-ndjson")
            lines = [json.loads(line) for line in r.iter_lines() if line]
    assert lines[-1]["done"] is True and all(line["done"] is False for line in lines[:-1])


def test_the_guards_refuse_in_ollamas_shape_too(start_server):
    """The API key and Host checks run before any route; on Ollama's paths they still answer
    `{"error": "..."}`, which the ollama client shows as its message."""
    guarded = start_server(api_key="s3cret")
    with pytest.raises(ollama.ResponseError) as refused:
        ollama.Client(host=guarded.url).list()
    assert refused.value.status_code == 401 and "API key" in refused.value.error
    with guarded.client(headers={"Host": "evil.example"}) as http:
        foreign = http.get("/api/tags")
    assert foreign.status_code == 403 and isinstance(foreign.json()["error"], str)
    assert ollama.Client(host=guarded.url, headers={"Authorization": "Bearer s3cret"}).list().models
