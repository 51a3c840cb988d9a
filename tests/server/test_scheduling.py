"""The shared engine under HTTP: disconnects stop work, a full queue refuses fast, batching changes
nothing, and shutdown drains. Models here sleep a little per model pass (`PassCounter`), so a
request lasts long enough to interrupt, and every pass is counted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time

import httpx
import pytest

from .conftest import TEST_LIMITS, PassCounter, read_sse


def limits_with(**changes):
    return dataclasses.replace(TEST_LIMITS, **changes)


WARM_UP = {"prompt": "x", "max_new_tokens": 1, "steps": 1, "stream": False}
STREAMS = {
    "native": ("/api/diffuse", {"prompt": "The fox", "max_new_tokens": 16, "steps": 16}, "event: step"),
    # Small blocks: OpenAI chunks carry final text only, which a block at a time makes early.
    "openai": (
        "/v1/completions",
        {
            "prompt": "The fox",
            "max_tokens": 16,
            "steps": 16,
            "block_length": 2,
            "stream": True,
            "stop": ["never in this text"],
        },
        "data: {",
    ),
}


def wait_idle(engine, timeout: float = 5.0) -> float:
    started = time.monotonic()
    while engine.in_flight and time.monotonic() - started < timeout:
        time.sleep(0.005)
    return time.monotonic() - started


@pytest.mark.parametrize("route", STREAMS)
def test_disconnect_stops_the_work_within_a_step(start_server, route):
    counter = PassCounter(delay=0.05)
    server = start_server(loader=counter)
    path, body, frame = STREAMS[route]
    with server.client() as http:
        http.post("/api/diffuse", json=WARM_UP)  # load the model before counting
        counter.passes = 0
        with http.stream("POST", path, json=body) as response:
            seen = 0
            for line in response.iter_lines():
                seen += line.startswith(frame)
                if seen >= 2:
                    break
            at_disconnect = counter.passes
        # Leaving the block closes the connection mid-stream.
        wait_idle(server.engine)
        assert server.engine.in_flight == 0
        assert http.get("/health").json()["in_flight"] == 0
    time.sleep(0.3)  # six passes' worth: none may happen
    assert counter.passes <= at_disconnect + 2, (at_disconnect, counter.passes)
    assert at_disconnect < 12 and counter.passes < 16


async def stream_once(url: str, body: dict) -> dict:
    started = time.monotonic()
    async with (
        httpx.AsyncClient(base_url=url, timeout=60) as http,
        http.stream("POST", "/v1/completions", json=body) as response,
    ):
        headers_after = time.monotonic() - started
        text = (await response.aread()).decode()
    return {
        "status": response.status_code,
        "after": headers_after,
        "retry": response.headers.get("retry-after"),
        "text": text,
    }


@pytest.mark.slow
def test_overload_refuses_quickly_and_finishes_the_admitted(start_server):
    counter = PassCounter(delay=0.03)
    server = start_server(loader=counter, max_queue=2)
    body = {"prompt": "The fox", "max_tokens": 16, "steps": 16, "temperature": 1.0, "stream": True}
    with server.client() as http:
        http.post("/api/diffuse", json=WARM_UP)

    async def burst():
        return await asyncio.gather(*(stream_once(server.url, body | {"seed": i}) for i in range(6)))

    results = asyncio.run(burst())
    admitted = [r for r in results if r["status"] == 200]
    refused = [r for r in results if r["status"] != 200]
    assert len(admitted) >= 2 and len(refused) >= 1, [r["status"] for r in results]
    for r in admitted:
        frames = [data for _, data in read_sse(r["text"].splitlines())]
        assert frames[-1] == "[DONE]" and json.loads(frames[-2])["choices"][0]["finish_reason"] in ("stop", "length")
    for r in refused:
        assert r["status"] == 429 and r["retry"] == "1" and r["after"] < 1.0
        assert json.loads(r["text"])["error"]["code"] == "queue_full"
    wait_idle(server.engine)
    assert server.engine.in_flight == 0


@pytest.mark.slow
def test_batched_output_equals_single_output(start_server):
    server = start_server(loader=PassCounter(delay=0.01), max_batch=8)
    prompts = ["The fox", "The bear slept in", "A bird", "The river ran to the cave and"]

    def native(prompt):
        return {"prompt": prompt, "max_new_tokens": 16, "steps": 8, "stream": False}

    def openai(prompt):
        return {"prompt": prompt, "max_tokens": 16, "steps": 8, "seed": 1}

    with server.client() as http:
        alone_native = [http.post("/api/diffuse", json=native(p)).json() for p in prompts]
        alone_openai = [http.post("/v1/completions", json=openai(p)).json() for p in prompts]
    assert all(r["timings"]["batch_size"] == 1 for r in alone_native)

    async def together():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            # A longer request holds the engine so the others queue up and share passes.
            blocker = asyncio.create_task(http.post("/api/diffuse", json=native("x") | {"steps": 16}))
            await asyncio.sleep(0.05)
            calls = [http.post("/api/diffuse", json=native(p)) for p in prompts]
            calls += [http.post("/v1/completions", json=openai(p)) for p in prompts]
            responses = await asyncio.gather(*calls)
            await blocker
            return [r.json() for r in responses]

    results = asyncio.run(together())
    batched_native, batched_openai = results[: len(prompts)], results[len(prompts) :]
    assert [r["text"] for r in batched_native] == [r["text"] for r in alone_native]
    assert [r["region"] for r in batched_native] == [r["region"] for r in alone_native]
    assert [r["choices"] for r in batched_openai] == [r["choices"] for r in alone_openai]
    assert max(r["timings"]["batch_size"] for r in batched_native) > 1, "queued requests must share passes"


def test_shutdown_drains_running_streams(start_server):
    server = start_server(loader=PassCounter(delay=0.03))
    body = {"prompt": "The fox", "max_new_tokens": 16, "steps": 16}
    with server.client() as http:
        http.post("/api/diffuse", json=WARM_UP)
    frames, first_step = [], threading.Event()

    def consume():
        with server.client() as http, http.stream("POST", "/api/diffuse", json=body) as response:
            for line in response.iter_lines():
                frames.append(line)
                if line == "event: step":
                    first_step.set()

    reader = threading.Thread(target=consume)
    reader.start()
    assert first_step.wait(10)
    server.server.should_exit = True  # what uvicorn does on SIGTERM
    reader.join(15)
    server.thread.join(15)
    assert "event: done" in frames, "the running stream must finish"
    assert not server.thread.is_alive() and server.app.state.server.engine is None


def test_closing_engine_answers_503(start_server):
    server = start_server()
    with server.client() as http:
        assert http.post("/api/diffuse", json={"prompt": "x", "stream": False}).status_code == 200
        server.engine.close()
        response = http.post("/api/diffuse", json={"prompt": "x", "stream": False})
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["error"]["code"] == "shutting_down"


@pytest.mark.parametrize("path", ["/v1/completions", "/v1/chat/completions"])
def test_a_disconnect_cancels_every_choice_of_a_whole_answer(start_server, path):
    """A non-streamed request with several choices: leaving must free every row within a step."""
    counter = PassCounter(delay=0.05)
    server = start_server(loader=counter, max_batch=2)  # four choices: two run, two wait
    bodies = {
        "/v1/completions": {"prompt": "The fox", "n": 4},
        "/v1/chat/completions": {"model": "chat", "messages": [{"role": "user", "content": "Hi"}], "n": 4},
    }
    body = bodies[path] | {"max_tokens": 16, "steps": 16, "temperature": 1.0}
    with server.client() as http:
        http.post("/api/diffuse", json=WARM_UP)
        http.post("/api/diffuse", json=WARM_UP | {"model": "chat"})
    counter.passes = 0
    with pytest.raises(httpx.ReadTimeout), server.client(timeout=0.3) as http:
        http.post(path, json=body)
    left = time.monotonic()
    wait_idle(server.engine)
    freed = time.monotonic() - left
    passes = counter.passes
    time.sleep(0.3)
    assert server.engine.in_flight == 0
    assert freed < 0.25, f"rows ran on {freed:.2f} s after the client left"
    assert counter.passes <= passes + 1


@pytest.mark.parametrize("route", ["native", "openai"])
def test_a_drain_that_runs_out_ends_each_stream_with_an_error_frame(start_server, route):
    """SIGTERM: a stream still running when the drain time is up gets a last `shutting_down`
    error frame, not a cut connection."""
    server = start_server(loader=PassCounter(delay=0.2), limits=limits_with(drain_seconds=0.5))
    path, body, frame = STREAMS[route]
    with server.client() as http:
        http.post("/api/diffuse", json=WARM_UP)
    lines, started = [], threading.Event()

    def consume():
        with server.client() as http, http.stream("POST", path, json=body) as response:
            for line in response.iter_lines():
                lines.append(line)
                started.set()

    reader = threading.Thread(target=consume)
    reader.start()
    assert started.wait(10)
    server.server.should_exit = True  # what uvicorn does on SIGTERM
    reader.join(15)
    server.thread.join(15)
    frames = read_sse(lines)
    last = json.loads(frames[-1][1] if frames[-1][1] != "[DONE]" else frames[-2][1])
    assert last["error"]["code"] == "shutting_down", frames[-3:]
    assert "event: done" not in lines
    assert not server.thread.is_alive()
