"""The block diffusion families as a user runs them: `unmask run`, `unmask chat`, the server and
its native stream, on reduced checkpoints made from the real config and tokenizer files
(tests/families.py says what stands in for files this workplace lacks)."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

import unmask
from unmask.cli import app
from unmask.engine import Model, block_size

from . import families

FAMILIES = ["sdar", "llada2", "fast-dllm-v2", "diffusion-gemma"]
# LLaDA-MoE is a full-canvas family (LLaDA's sampler), run here from the same kind of folder.
CHECKPOINTS = [*FAMILIES, "llada-moe"]


@pytest.fixture(scope="module", params=CHECKPOINTS)
def folder(request, tmp_path_factory):
    return families.BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


def test_loads_with_the_real_files(folder):
    model = Model.load(folder, dtype="float32")
    assert model.family in FAMILIES or model.config["architectures"] == ["LLaDAMoEModelLM"]
    assert model.ids.mask not in model.ids.eos
    assert model.chat, "the real chat template is found"
    for end in model.ids.eos:
        assert end in model.tokenizer.special_tokens.values(), "end ids are special tokens, never ordinary pieces"


def test_generate_tiles_the_canvas_with_blocks(folder):
    model = Model.load(folder, dtype="float32")
    prompt = model.tokenizer.encode("Hello there, friend")
    if model.family == "llada":
        result = model.generate([prompt], max_new_tokens=11, steps=11, history=True)
        assert len(result.sequences[0]) == len(prompt) + 11 and result.nfe == 11
        return
    result = model.generate([prompt], max_new_tokens=11, steps_per_block=2, history=True)
    block = block_size(model)
    out = result.sequences[0]
    assert out[: len(prompt)] == prompt
    if model.family == "sdar":  # SDAR returns the whole block-aligned canvas, as its reference does
        assert len(out) % block == 0 and len(out) >= len(prompt) + 11
    elif model.family == "diffusion-gemma":  # whole canvases after the prompt, as its reference
        assert len(out) == len(prompt) + 16 and model.ids.mask not in out
    else:
        assert len(out) == len(prompt) + 11
    assert result.nfe == len(result.history) > 0
    assert model.ids.mask not in out[len(prompt) : len(prompt) + 11] or model.family == "sdar"


def run_cli(*args, input=None):
    result = CliRunner().invoke(app, [str(a) for a in args], input=input)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output


def test_run_end_to_end(folder):
    data = json.loads(run_cli("run", folder, "Once upon a time", "--json", "-n", "12", "--seed", "3").splitlines()[-1])
    assert data["nfe"] > 0 and isinstance(data["text"], str) and data["finish_reason"] in ("stop", "length")
    fast = json.loads(run_cli("run", folder, "Once upon a time", "--json", "-n", "12", "--fast").splitlines()[-1])
    assert fast["nfe"] > 0


def test_chat_end_to_end(folder):
    out = run_cli("chat", folder, "-n", "8", "--steps", "4", input="Hi there\n/bye\n")
    assert "Error" not in out


def test_infill_where_the_family_can(folder):
    """Block families keep the template's text and fill its gap; DiffusionGemma, whose passes
    rewrite every position, refuses with the reason."""
    result = CliRunner().invoke(app, ["infill", str(folder), "Once upon a time {{6}} the end.", "--json"])
    if "gemma" in str(folder):
        assert result.exit_code != 0 and "cannot fill gaps" in result.output
        return
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.splitlines()[-1])
    assert data["text"].startswith("Once upon a time ") and data["text"].endswith(" the end.")


def test_bad_block_options_name_the_field(folder):
    bad = "--edit-threshold" if "llada2" not in str(folder) else "--cfg-scale"
    bad = "--threshold" if "gemma" in str(folder) else bad
    result = CliRunner().invoke(app, ["run", str(folder), "Hi", "--json", "-n", "8", bad, "0.5"])
    assert result.exit_code != 0 and bad in result.output


def test_served_over_http(folder):
    from openai import OpenAI

    from unmask.server import Limits, Settings

    from .server.conftest import LiveServer, read_sse

    live = LiveServer(Settings(model="m", models=[f"m={folder}"], limits=Limits()))
    try:
        client = OpenAI(base_url=f"{live.url}/v1", api_key="unused")
        reply = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=8, seed=1
        )
        assert reply.choices[0].finish_reason in ("stop", "length")
        with live.client() as http:
            body = {"model": "m", "prompt": "Once upon a time", "max_new_tokens": 10, "seed": 2}
            with http.stream("POST", "/api/diffuse", json=body) as r:
                assert r.status_code == 200, r.read()
                frames = [(event, json.loads(data)) for event, data in read_sse(r.iter_lines())]
        start = frames[0][1]
        assert frames[0][0] == "start" and start["block_length"] > 0
        steps = [f for e, f in frames if e == "step"]
        assert steps and all(p < 10 for s in steps for p in s["positions"]), "offsets past the region are not sent"
        assert frames[-1][0] == "done"
        # How settled the canvas is after each pass, for every family. DiffusionGemma counts the
        # tokens asked for, so its last pass leaves them all settled; a mask family counts its
        # whole canvas, whose block-aligned tail may still fill after the last step sent.
        shares = [s["settledness"] for s in steps]
        assert all(0 <= x <= 1 for x in shares) and shares[0] < shares[-1]
        assert shares[-1] == 1.0 or "gemma" not in str(folder)
    finally:
        live.stop()


def test_unmask_load_is_the_same_model(folder):
    assert unmask.load(folder, dtype="float32").family == Model.load(folder, dtype="float32").family


def test_the_live_view_draws_edits(tmp_path):
    """LLaDA2.1 token editing in the terminal: an edited cell takes its new token and the edit style."""
    from unmask.cli.live import EDITED, CanvasView
    from unmask.engine import StepEvent

    model = Model.load(families.llada2(tmp_path / "llada2"), dtype="float32")
    a, b = model.tokenizer.encode("ab")
    view = CanvasView(model, [model.ids.mask] * 4, planned=4)
    view.apply(StepEvent(0, 4, 0, [0, 1], [a, a], 2, 1, 0.1))
    view.apply(StepEvent(1, 4, 0, [2], [a], 1, 2, 0.2, edited=[1], edit_tokens=[b]))
    assert view.region[:3] == [a, b, a]
    styles = {span.style for span in view.body().spans}
    assert EDITED in styles


def test_the_live_view_shows_a_uniform_canvas_settling(tmp_path):
    """DiffusionGemma in the terminal: every cell may change in every pass. The footer says how
    settled the canvas is (the engine's settledness), the cells the last pass did not accept are
    drawn as noise until their canvas is final, and the last pass leaves it 100% settled. A mask
    family's footer shows its committed share, and its canvas has no noise."""
    from unmask.cli.live import NOISE, CanvasView
    from unmask.engine import StepEvent

    def watch(model, new: int, **options):
        prompt = model.tokenizer.encode("Once upon a time")
        view = CanvasView(model, [model.ids.mask] * new, planned=8)
        shown, styles = [], set()
        for step in model.stream([prompt], max_new_tokens=new, **options):
            event = StepEvent.of(step, 0, len(prompt), new)
            view.apply(event)
            footer = view.footer().plain
            shown.append(footer.split(" · ")[1])
            assert shown[-1] == f"settled {math.floor(event.settledness * 100 + 1e-9)}%", footer
            styles |= {span.style for span in view.body().spans}
        return view, shown, styles

    gemma, shown, styles = watch(Model.load(families.diffusion_gemma(tmp_path / "dg"), dtype="float32"), 16, seed=3)
    assert gemma.uniform and NOISE in styles, "unaccepted cells are drawn as noise"
    assert shown[0] != "settled 100%" and shown[-1] == "settled 100%"
    sdar, shown, styles = watch(Model.load(families.sdar(tmp_path / "sdar"), dtype="float32"), 8, steps_per_block=2)
    assert not sdar.uniform and NOISE not in styles
    assert shown[0] != "settled 100%" and shown[-1] == "settled 100%"
