"""The official `openai` SDK against a live server: chat and completions, streamed and not.

The central property: a stream's concatenated text equals the non-streamed text for the same
seed (the stream only ever appends final text), with the same finish_reason and usage.
"""

from __future__ import annotations

import openai
import pytest

import unmask

from .conftest import TEST_LIMITS

DIFFUSION = {"steps": 8}
MESSAGES = [{"role": "system", "content": "You tell tiny stories."}, {"role": "user", "content": "The fox?"}]


@pytest.fixture(scope="module")
def client(live):
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="not-needed", max_retries=0) as c:
        yield c


def chat(client, stream: bool, **kwargs):
    args = {"model": "chat", "messages": MESSAGES, "max_tokens": 16, "seed": 3, "extra_body": DIFFUSION} | kwargs
    if not stream:
        done = client.chat.completions.create(**args)
        return [(c.message.content, c.finish_reason) for c in done.choices], done.usage
    pieces, reasons, usage = {}, {}, None
    for chunk in client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **args):
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            pieces[c.index] = pieces.get(c.index, "") + (c.delta.content or "")
            reasons[c.index] = c.finish_reason or reasons.get(c.index)
    return [(pieces[i], reasons[i]) for i in sorted(pieces)], usage


def complete(client, stream: bool, **kwargs):
    args = {"model": "tiny", "prompt": "The fox ran", "max_tokens": 16, "seed": 5, "extra_body": DIFFUSION} | kwargs
    if not stream:
        done = client.completions.create(**args)
        return [(c.text, c.finish_reason) for c in done.choices], done.usage
    pieces, reasons, usage = {}, {}, None
    for chunk in client.completions.create(stream=True, stream_options={"include_usage": True}, **args):
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            pieces[c.index] = pieces.get(c.index, "") + c.text
            reasons[c.index] = c.finish_reason or reasons.get(c.index)
    return [(pieces[i], reasons[i]) for i in sorted(pieces)], usage


@pytest.mark.parametrize("temperature", [0.0, 0.9])
@pytest.mark.parametrize("call", [chat, complete], ids=["chat", "completions"])
def test_stream_equals_non_stream(client, call, temperature):
    whole, usage = call(client, stream=False, temperature=temperature)
    streamed, streamed_usage = call(client, stream=True, temperature=temperature)
    assert streamed == whole
    assert streamed_usage == usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert 0 < usage.completion_tokens <= 16 and whole[0][1] in ("stop", "length")


def test_the_embedded_story_model_through_the_sdk(client):
    args = {"model": "story", "prompt": "Once upon a time,", "seed": 1}
    whole, usage = complete(client, stream=False, **args)
    streamed, streamed_usage = complete(client, stream=True, **args)
    assert streamed == whole and streamed_usage == usage
    assert len(whole[0][0].split()) >= 3 and usage.completion_tokens > 0


def test_usage_counts_the_prompt_and_the_text(client, server_models):
    tokenizer = unmask.load(server_models["chat"]).tokenizer
    [(text, reason)], usage = chat(client, stream=False)
    assert usage.prompt_tokens == len(tokenizer.encode_chat(MESSAGES))
    if reason == "length":
        assert usage.completion_tokens == 16
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_stop_string_cuts_the_text(client):
    [(text, _)], _ = complete(client, stream=False, max_tokens=16)
    assert len(text) > 6, "the tiny model should say something"
    stop = text[4:7]
    cut = text[: text.find(stop)]
    for stream in (False, True):
        [(got, reason)], usage = complete(client, stream=stream, stop=["never said", stop])
        assert (got, reason) == (cut, "stop")
        assert usage.completion_tokens <= 16


def test_n_choices_use_consecutive_seeds(client):
    several, usage = complete(client, stream=False, n=3, temperature=1.0, seed=10)
    singles = [complete(client, stream=False, temperature=1.0, seed=10 + i)[0][0] for i in range(3)]
    assert several == singles
    streamed, _ = complete(client, stream=True, n=3, temperature=1.0, seed=10)
    assert streamed == several
    assert usage.prompt_tokens == complete(client, stream=False)[1].prompt_tokens  # counted once


def test_suffix_infills_like_a_native_template(client, live):
    [(gap, _)], _ = complete(client, stream=False, prompt="The fox ran to", suffix=" in the cave.", max_tokens=8)
    with live.client() as http:
        native = http.post(
            "/api/diffuse",
            json={
                "template": "The fox ran to{{8}} in the cave.",
                "stream": False,
                "steps": 8,
                "seed": 5,
                "stop_at_eos": True,
            },
        ).json()
    assert native["text"] == gap + " in the cave."


def test_echo_prepends_the_prompt(client):
    [(plain, _)], _ = complete(client, stream=False)
    for stream in (False, True):
        [(echoed, _)], _ = complete(client, stream=stream, echo=True)
        assert echoed == "The fox ran" + plain


def test_token_id_prompts(client, server_models):
    tokenizer = unmask.load(server_models["tiny"]).tokenizer
    ids = tokenizer.encode("The fox ran", add_special_tokens=False)
    by_text, _ = complete(client, stream=False)
    by_ids, _ = complete(client, stream=False, prompt=ids)
    assert by_ids == by_text


def test_models_and_errors_through_the_sdk(client):
    assert {"tiny", "chat"} <= {m.id for m in client.models.list()}
    with pytest.raises(openai.BadRequestError) as err:
        complete(client, stream=False, max_tokens=TEST_LIMITS.max_tokens + 1)
    assert err.value.body["param"] == "max_tokens"
    with pytest.raises(openai.BadRequestError) as err:
        chat(client, stream=False, logprobs=True)
    assert err.value.body["param"] == "logprobs"
    with pytest.raises(openai.NotFoundError) as err:
        chat(client, stream=False, model="no-such-model")
    assert err.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as err:
        chat(client, stream=False, extra_body={"steps": TEST_LIMITS.steps + 1})
    assert err.value.body["param"] == "steps"
