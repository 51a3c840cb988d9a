"""One request, every surface, one answer.

The same request through `unmask run --json` / `unmask infill --json`, `unmask batch`, `/v1/completions`
(streamed and not), `/v1/chat/completions`, the native `/api/diffuse` stream and Ollama's
`/api/generate` and `/api/chat` (streamed and not) must give identical text, model passes (where
the surface reports them) and completion tokens: each surface resolves its options with the
engine's one resolver and builds its answer with the one `Completion`. Cases: the shipped
defaults (on `story`, remask on), each preset, a threshold, an infill canvas, all seeded.

A new surface or model family belongs here.
"""

from __future__ import annotations

import json
import shutil
import string
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from unmask.cli import app
from unmask.server import Limits, Settings

from .. import families
from ..conftest import GOLDEN
from .conftest import LiveServer, read_sse

pytestmark = pytest.mark.slow

PROMPT = "Once upon a time"
SEED = 11
CASES = {
    "defaults": ({}, []),
    "fast": ({"preset": "fast"}, ["--fast"]),
    "balanced": ({"preset": "balanced"}, ["--balanced"]),
    "best": ({"preset": "best"}, ["--best"]),
    "threshold": ({"threshold": 0.7}, ["--threshold", "0.7"]),
}
PREFIX, GAP, SUFFIX = "Once upon a time, a fox lived in a den.", 24, " And the fox was never lonely again."


def char_tokenizer(folder, vocab_size: int, end_id: int, mask_id: int) -> None:
    """A character-level tokenizer.json for a checkpoint that ships none (the golden dream-tiny):
    printable characters, then its end and mask ids where its config puts them."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    chars = list(string.printable[:95]) + [chr(c) for c in range(0xC0, 0x250)]
    vocab, k = {}, 0
    for i in range(vocab_size):
        if i == end_id:
            vocab["<|endoftext|>"] = i
        elif i == mask_id:
            vocab["<|mask|>"] = i
        else:
            vocab[chars[k]] = i
            k += 1
    tok = Tokenizer(models.WordLevel(vocab, unk_token=" "))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(["<|endoftext|>", "<|mask|>"])
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>", "mask_token": "<|mask|>"}))


@pytest.fixture(scope="module")
def dream_text(tmp_path_factory):
    """The golden dream-tiny (a Dream-format checkpoint) with a tokenizer, so it takes text."""
    folder = tmp_path_factory.mktemp("dream-tiny-text")
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        shutil.copy(GOLDEN / "dream-tiny" / name, folder / name)
    config = json.loads((folder / "config.json").read_text())
    char_tokenizer(folder, config["vocab_size"], config["eos_token_id"], config["mask_token_id"])
    return folder


@pytest.fixture(scope="module")
def block_models(tmp_path_factory) -> dict[str, str]:
    """The 2026 families, from their real config and tokenizer files (tests/families.py)."""
    return {name: str(build(tmp_path_factory.mktemp(name))) for name, build in families.BUILDERS.items()}


@pytest.fixture(scope="module")
def server(dream_text, block_models):
    served = ["story", f"dream-tiny={dream_text}", *(f"{name}={folder}" for name, folder in block_models.items())]
    live = LiveServer(Settings(model="story", models=served, limits=Limits()))
    yield live
    live.stop()


def cli(*args) -> dict:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def batch_line(model, line: dict) -> dict:
    """The output line `unmask batch` writes for one input line."""
    with tempfile.TemporaryDirectory() as tmp:
        source, answers = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        source.write_text(json.dumps(line) + "\n")
        result = CliRunner().invoke(app, ["batch", str(model), str(source), "-o", str(answers)])
        assert result.exit_code == 0, result.output
        return json.loads(answers.read_text().splitlines()[0])


def openai_stream(client, path: str, body: dict) -> tuple[str, dict, int]:
    """(text, timings, completion tokens) of a streamed OpenAI answer."""
    text, timings, usage = "", None, None
    with client.stream("POST", path, json=body | {"stream": True, "stream_options": {"include_usage": True}}) as r:
        assert r.status_code == 200, r.read()
        for _, data in read_sse(r.iter_lines()):
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            for choice in chunk["choices"]:
                text += choice.get("text") or (choice.get("delta") or {}).get("content") or ""
            timings = chunk.get("timings") or timings
            usage = chunk.get("usage") or usage
    return text, timings, usage["completion_tokens"]


def native(client, body: dict) -> tuple[str, int, int, dict]:
    with client.stream("POST", "/api/diffuse", json=body) as r:
        assert r.status_code == 200, r.read()
        frames = {event: json.loads(data) for event, data in read_sse(r.iter_lines())}
    done = frames["done"]
    return done["text"], done["timings"]["nfe"], done["usage"]["completion_tokens"], frames["start"]


def answers(server, model: str, cli_ref, fields: dict, flags: list[str]) -> dict[str, tuple[str, int, int]]:
    """(text, passes, completion tokens) per surface for one continuation request; the CLI
    addresses the checkpoint as `cli_ref` (a folder the server serves under a short name)."""
    out = {}
    run = cli("run", cli_ref, PROMPT, "--json", "--seed", SEED, *flags)
    out["unmask run --json"] = (run["text"], run["nfe"], run["completion_tokens"])
    expected_passes = run["nfe"]
    line = batch_line(cli_ref, {"prompt": PROMPT, "seed": SEED} | fields)
    out["unmask batch"] = (line["text"], line["timings"]["nfe"], line["usage"]["completion_tokens"])
    body = {"model": model, "seed": SEED} | fields
    with server.client() as client:
        r = client.post("/v1/completions", json=body | {"prompt": PROMPT}).json()
        out["/v1/completions"] = (r["choices"][0]["text"], r["timings"][0]["nfe"], r["usage"]["completion_tokens"])
        text, timings, tokens = openai_stream(client, "/v1/completions", body | {"prompt": PROMPT})
        out["/v1/completions stream"] = (text, timings["nfe"], tokens)
        messages = [{"role": "user", "content": PROMPT}]
        r = client.post("/v1/chat/completions", json=body | {"messages": messages}).json()
        content = r["choices"][0]["message"]["content"]
        out["/v1/chat/completions"] = (content, r["timings"][0]["nfe"], r["usage"]["completion_tokens"])
        text, timings, tokens = openai_stream(client, "/v1/chat/completions", body | {"messages": messages})
        out["/v1/chat/completions stream"] = (text, timings["nfe"], tokens)
        text, nfe, tokens, start = native(client, body | {"prompt": PROMPT})
        out["/api/diffuse"] = (text, nfe, tokens)
        # Ollama's routes report no pass count: the text and its tokens are compared.
        options = {k: v for k, v in fields.items()} | {"seed": SEED}
        for path, what in (("/api/generate", {"prompt": PROMPT}), ("/api/chat", {"messages": messages})):
            whole = client.post(path, json={"model": model, "options": options, "stream": False} | what).json()
            reply = whole.get("response", whole.get("message", {}).get("content"))
            out[path] = (reply, expected_passes, whole["eval_count"])
            with client.stream("POST", path, json={"model": model, "options": options} | what) as r:
                lines = [json.loads(line) for line in r.iter_lines() if line]
            streamed = "".join(x.get("response") or (x.get("message") or {}).get("content") or "" for x in lines)
            out[f"{path} stream"] = (streamed, expected_passes, lines[-1]["eval_count"])
    return out


@pytest.mark.parametrize("model", ["story", "dream-tiny"])
@pytest.mark.parametrize("case", list(CASES))
def test_every_surface_gives_the_same_answer(server, dream_text, model, case):
    fields, flags = CASES[case]
    ref = "story" if model == "story" else dream_text
    got = answers(server, model, ref, fields, flags)
    expected = got.pop("unmask run --json")
    for surface, answer in got.items():
        assert answer == expected, f"{surface} differs from `unmask run --json` on {model} ({case})"
    assert expected[1] > 0 and expected[2] > 0


# DiffusionGemma accepts by an entropy bound: a confidence threshold is refused (naming it).
FAMILY_CASES = [
    (model, case)
    for model in families.BUILDERS
    for case in ("defaults", "fast", "threshold")
    if (model, case) != ("diffusion-gemma", "threshold")
]


@pytest.mark.parametrize("model, case", FAMILY_CASES)
def test_every_surface_gives_the_same_answer_on_block_families(server, block_models, model, case):
    """The 2026 families (SDAR, LLaDA2, Fast-dLLM v2 block diffusion; LLaDA-MoE) through the same
    resolver and Completion.
    These checkpoints have chat templates, so `unmask run` (like `ollama run`) and Ollama's
    generate answer the prompt as a user turn, as the chat routes do; the completion routes and
    the native stream continue the raw text."""
    fields, flags = CASES[case]
    got = answers(server, model, block_models[model], fields, flags)
    raw = ("/v1/completions", "/v1/completions stream", "/api/diffuse")
    for group in (raw, [s for s in got if s not in raw]):
        first, *rest = group
        for surface in rest:
            assert got[surface] == got[first], f"{surface} differs from {first} on {model} ({case})"
        assert got[first][1] > 0


def test_the_story_default_really_revokes(server):
    """The shipped remask is part of the parity above: it takes tokens back on `story`."""
    run = cli("run", "story", PROMPT, "--json", "--seed", SEED)
    assert run["options"]["remask"] == 0.15 and run["revoked"] > 0


@pytest.mark.parametrize("model", ["story", "dream-tiny"])
def test_infill_gives_the_same_gap_everywhere(server, dream_text, model):
    ref = "story" if model == "story" else dream_text
    template = f"{PREFIX} {{{{{GAP}}}}}{SUFFIX}"
    run = cli("infill", ref, template, "--json", "--seed", SEED)
    line = batch_line(ref, {"template": template, "seed": SEED})
    assert (line["text"], line["timings"]["nfe"]) == (run["text"], run["nfe"]), "unmask batch fills it as infill does"
    with server.client() as client:
        body = {"model": model, "seed": SEED}
        text, nfe, tokens, _ = native(client, body | {"template": template})
        completion = {"prompt": PREFIX + " ", "suffix": SUFFIX, "max_tokens": GAP}
        r = client.post("/v1/completions", json=body | completion).json()
        streamed = openai_stream(client, "/v1/completions", body | completion)
    gap = r["choices"][0]["text"]
    assert run["text"] == PREFIX + " " + text, "the CLI prints the template's prefix, then the region"
    assert text == gap + SUFFIX, "the native text is the region; OpenAI's is the gap alone"
    assert (streamed[0], streamed[1]["nfe"], streamed[2]) == (gap, nfe, tokens)
    assert run["nfe"] == nfe == r["timings"][0]["nfe"]
    assert run["completion_tokens"] == tokens == r["usage"]["completion_tokens"]


def test_fast_takes_fewer_passes_than_best_on_a_dream_model(dream_text):
    """Dream's default ranking (entropy) can never reach a confidence threshold: the preset must
    switch to a confidence ranking, or every pass commits one token and --fast is the slowest."""
    fast = cli("run", dream_text, PROMPT, "--json", "--fast", "-n", "32")
    best = cli("run", dream_text, PROMPT, "--json", "--best", "-n", "32")
    assert fast["options"]["algorithm"] == "maskgit_plus"
    assert best["nfe"] == 32 and fast["nfe"] < best["nfe"]
