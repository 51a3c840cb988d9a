"""The native endpoint: per-step SSE frames, infill templates, Sudoku puzzles, /api/models, /health."""

from __future__ import annotations

import json

from unmask.tasks.sudoku import generate_puzzles

from .conftest import read_sse


def generate(live, **body) -> list[tuple[str, dict]]:
    with live.client() as http, http.stream("POST", "/api/diffuse", json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return [(event, json.loads(data)) for event, data in read_sse(response.iter_lines())]


def test_stream_shows_every_step_and_ends_with_the_canvas(live):
    frames = generate(live, prompt="The bear", max_new_tokens=16, steps=8, seed=1)
    events = [e for e, _ in frames]
    assert events[0] == "start" and events[-1] == "done" and set(events[1:-1]) == {"step"}
    start, steps, done = frames[0][1], [d for e, d in frames if e == "step"], frames[-1][1]
    mask = start["mask_id"]
    assert start["region"] == [mask] * 16 and start["pieces"] == [None] * 16 and start["total_steps"] == 8
    canvas = list(start["region"])
    for number, step in enumerate(steps, 1):
        assert step["step"] == number and step["total_steps"] == 8 and step["nfe"] == number
        assert len(step["positions"]) == len(step["tokens"]) == len(step["texts"])
        for position, token in zip(step["positions"], step["tokens"]):
            assert canvas[position] == mask, "a committed position never changes"
            canvas[position] = token
    assert canvas == done["region"] or mask not in done["region"]  # stop_at_eos may fill the tail
    assert done["timings"]["nfe"] == len(steps) and done["timings"]["first_step"] <= done["timings"]["elapsed"]
    assert done["usage"]["prompt_tokens"] == start["prompt_tokens"] == 2
    with live.client() as http:
        whole = http.post(
            "/api/diffuse", json={"prompt": "The bear", "max_new_tokens": 16, "steps": 8, "seed": 1, "stream": False}
        ).json()
    assert (whole["text"], whole["region"], whole["usage"]) == (done["text"], done["region"], done["usage"])


def test_template_keeps_its_fixed_text(live):
    template = "The fox {{4}} to the river. The bear {{3}} in the cave."
    frames = generate(live, template=template, seed=0)
    start, done = frames[0][1], frames[-1][1]
    assert start["region"].count(start["mask_id"]) == 7
    text = done["text"]  # the region only: the prompt "The fox " comes before it
    assert " to the river. The bear " in text and text.endswith(" in the cave.")
    assert done["usage"]["completion_tokens"] <= 7


def test_chat_messages_use_the_template(live):
    frames = generate(live, model="chat", messages=[{"role": "user", "content": "Hi"}], max_new_tokens=8)
    assert frames[0][1]["prompt_tokens"] > 20  # the Qwen2-style template adds a system turn
    assert frames[-1][0] == "done"


def test_sudoku_puzzle_keeps_its_givens(live):
    [(puzzle, _)] = generate_puzzles(1, givens=30, seed=4)
    frames = generate(live, model="grid", puzzle=puzzle.replace("0", "."), steps=16)
    start, done = frames[0][1], frames[-1][1]
    assert start["prompt_tokens"] == 0 and start["region"].count(start["mask_id"]) == 51
    assert start["pieces"][puzzle.index(next(c for c in puzzle if c != "0"))] in "123456789"
    solution = done["text"]
    assert len(solution) == 81 and solution.isdigit() and "0" not in solution
    assert all(p == "0" or p == s for p, s in zip(puzzle, solution))
    assert done["usage"]["completion_tokens"] == 51


def test_bad_inputs_name_their_field(live):
    cases = [
        ({"model": "grid", "puzzle": "12"}, "puzzle"),
        ({"model": "grid", "puzzle": "11" + "0" * 79}, "puzzle"),  # two 1s in row 1
        ({"puzzle": "0" * 81}, "puzzle"),  # not a grid model
        ({"template": "no gap here"}, "template"),
        ({"template": "a {{4}} b", "max_new_tokens": 8}, "max_new_tokens"),
        ({}, "prompt"),
        ({"prompt": "x", "max_new_tokens": 12, "block_length": 5}, "block_length"),
        ({"prompt": "x", "algorithm": "origin"}, "algorithm"),
        ({"prompt": "x", "cfg_scale": 2.0, "cache": "dual"}, "cache"),
        ({"model": "llada-tiny", "prompt": "x"}, "model"),
    ]
    with live.client() as http:
        for body, param in cases:
            response = http.post("/api/diffuse", json=body | {"stream": False})
            error = response.json()["error"]
            assert response.status_code == 400 and error["param"] == param, (body, error)
            assert error["message"].startswith(param) and error["type"] == "invalid_request_error"


def test_models_and_health(live):
    with live.client() as http:
        models = {m["name"]: m for m in http.get("/api/models").json()["models"]}
        health = http.get("/health").json()
    assert models["tiny"]["default"] and models["chat"]["chat_template"] and not models["tiny"]["chat_template"]
    assert models["grid"]["context_length"] == 81 and models["llada-tiny"]["tokenizer"] is False
    assert models["tiny"]["family"] == "llada" and models["tiny"]["parameters"] > 0
    assert models["tiny"]["defaults"]["stop_at_eos"] is True
    assert "/" not in json.dumps(models["tiny"]["defaults"])  # nothing about where files live
    assert health["status"] == "ok" and health["in_flight"] >= 0


def test_models_not_loaded_still_report_their_parameters(start_server, server_models):
    """Counted from the safetensors headers, with nothing loaded (a fresh server loads on first use)."""
    from safetensors.torch import load_file

    server = start_server()
    with server.client() as http:
        models = {m["name"]: m for m in http.get("/api/models").json()["models"]}
    weights = load_file(f"{server_models['llada-tiny']}/model.safetensors")
    assert not models["llada-tiny"]["loaded"] and models["llada-tiny"]["available"]
    assert models["llada-tiny"]["parameters"] == sum(t.numel() for t in weights.values())
    assert all(isinstance(m["parameters"], int) and m["parameters"] > 0 for m in models.values()), models


def test_remask_steps_say_what_they_take_back(live):
    frames = generate(
        live,
        model="story",
        prompt="Once upon a time,",
        max_new_tokens=16,
        steps=8,
        block_length=16,
        remask=0.99,
        temperature=0.8,
        seed=2,
        stop_at_eos=False,
    )
    start, steps, done = frames[0][1], [d for e, d in frames if e == "step"], frames[-1][1]
    mask = start["mask_id"]
    canvas = list(start["region"])
    for step in steps:
        for position in step["revoked"]:
            assert canvas[position] != mask, "only a committed token can be taken back"
            canvas[position] = mask
        for position, token in zip(step["positions"], step["tokens"]):
            assert canvas[position] == mask
            canvas[position] = token
    assert sum(len(s["revoked"]) for s in steps) > 0
    assert canvas == done["region"] and done["timings"]["nfe"] == 8
