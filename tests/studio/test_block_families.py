"""The studio on the block diffusion families: a run fills the canvas block by block, the readouts
come from the server, and LLaDA2's token edits are drawn as edits (a real browser, a real server,
checkpoints from the real config and tokenizer files)."""

from __future__ import annotations

import pytest

from .. import families
from .conftest import PageProblems, StudioServer
from .test_studio import answer, current_run, dial, run_start, set_range, settle, wait_done

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def block_studio(tmp_path_factory, tiny_text_model_dir):
    models = {"story": str(tiny_text_model_dir)}
    for name in ("sdar", "llada2", "fast-dllm-v2", "diffusion-gemma", "llada-moe"):
        models[name] = str(families.BUILDERS[name](tmp_path_factory.mktemp(name)))
    server = StudioServer(models)
    yield server
    server.stop()


@pytest.fixture
def block_page(context, block_studio):
    page = context.new_page()
    page.set_default_timeout(30_000)
    problems = PageProblems(page)
    page.goto(block_studio.url + "/#/diffuse")
    page.wait_for_selector("#server-state.ok")
    yield page
    assert not problems.errors, problems.errors
    page.close()


@pytest.mark.parametrize("model", ["sdar", "llada2", "fast-dllm-v2", "diffusion-gemma", "llada-moe"])
def test_a_block_family_runs_in_the_studio(block_page, block_studio, model):
    page = block_page
    page.select_option("#view-diffuse .model-select", model)
    page.wait_for_function("m => window.unmaskStudio.views.diffuse.picker.info.name === m", arg=model)
    page.fill("#view-diffuse .prompt-input", "Once upon a time")
    dial(page, "diffuse", length=24, steps=24)
    before = current_run(page, "diffuse")
    mark = block_studio.recorder.mark()
    page.click("#view-diffuse .run-btn")
    wait_done(page, "diffuse", before)
    start = run_start(page)
    block = start["block_length"]
    if model == "llada-moe":  # a full-canvas family: one block, its own recipe
        assert start["options"]["recipe"] is None
    else:
        assert block == {"sdar": 4, "llada2": 32, "fast-dllm-v2": 8, "diffusion-gemma": 8}[model]
        assert start["options"]["recipe"] == "unmask" and start["options"]["cache"] == "prefix"
    assert page.locator("#view-diffuse .canvas-body .tok.m").count() == 0, "every cell resolved"
    assert isinstance(answer(page), str)
    [body] = block_studio.recorder.bodies("/api/diffuse", mark)
    assert body["model"] == model and body["max_new_tokens"] == 24
    steps = page.evaluate("() => window.unmaskStudio.views.diffuse.stage.run.steps")
    assert steps and all(p < 24 for s in steps for p in s["positions"]), "no cell past the region"
    if model == "sdar":  # blocks of 4 fill left to right: a step never commits past its block
        assert all(len({p // block for p in s["positions"]}) <= 1 for s in steps if s["positions"])


def test_edits_are_drawn_as_edits(block_page, block_studio):
    """LLaDA2.1 token editing through the dial's API fields: the step frames carry edits, and the
    canvas marks the cells an edit wrote last."""
    page = block_page
    page.select_option("#view-diffuse .model-select", "llada2")
    page.wait_for_function("() => window.unmaskStudio.views.diffuse.picker.info.name === 'llada2'")
    assert page.locator("#view-diffuse .dial-row[data-param='remask']").is_hidden(), "block diffusion has no remask"
    # Random weights are rarely sure of anything: a low editing threshold makes edits happen.
    set_range(page, "#view-diffuse input[aria-label='Token editing']", 0.01)
    settle(page)
    assert page.locator("#view-diffuse .dial-row[data-param='edit_threshold'] output").inner_text() == "0.01"
    page.fill("#view-diffuse .prompt-input", "Once upon a time")
    dial(page, "diffuse", length=24, steps=24)
    before = current_run(page, "diffuse")
    page.click("#view-diffuse .run-btn")
    wait_done(page, "diffuse", before)
    assert run_start(page)["options"]["edit_threshold"] == 0.01
    steps = page.evaluate("() => window.unmaskStudio.views.diffuse.stage.run.steps")
    edited = [p for s in steps for p in (s.get("edited") or [])]
    assert edited, "the server streamed edits"
    last_edit = page.evaluate("() => window.unmaskStudio.views.diffuse.stage.run.editedAt")
    assert last_edit and page.locator("#view-diffuse .canvas-body .tok.ed").count() >= 1
    page.select_option("#view-diffuse .model-select", "sdar")
    page.wait_for_function("() => window.unmaskStudio.views.diffuse.picker.info.name === 'sdar'")
    assert page.locator("#view-diffuse .dial-row[data-param='edit_threshold']").is_hidden(), "only LLaDA2 edits"


def test_a_uniform_canvas_settles_in_the_studio(block_page, block_studio):
    """DiffusionGemma, whose every cell may change in every pass: the settled readout follows the
    step frames' settledness to 100%, and a pass replayed on the timeline shows each cell as it was
    then, marking the cells it changed (.ch) and those it did not accept (.u: noise, still changing)."""
    page = block_page
    page.select_option("#view-diffuse .model-select", "diffusion-gemma")
    page.wait_for_function("() => window.unmaskStudio.views.diffuse.picker.info.name === 'diffusion-gemma'")
    page.fill("#view-diffuse .prompt-input", "Once upon a time")
    dial(page, "diffuse", length=16, steps=8)
    before = current_run(page, "diffuse")
    page.click("#view-diffuse .run-btn")
    wait_done(page, "diffuse", before)
    readout = page.locator("#view-diffuse .stat", has_text="settled")
    assert readout.is_visible() and readout.locator("b").inner_text() == "100%"
    steps = page.evaluate("() => window.unmaskStudio.views.diffuse.stage.run.steps")
    shares = [s["settledness"] for s in steps]
    assert shares[0] < 0.5 and shares[-1] == 1.0 and all(0 <= x <= 1 for x in shares)
    assert page.evaluate("() => window.unmaskStudio.views.diffuse.stage.run.uniform")
    cells = "#view-diffuse .canvas-body .tok"
    assert page.locator(f"{cells}.u").count() == 0, "a finished canvas holds no noise"

    set_range(page, "#view-diffuse .scrubber", 1)
    first = steps[0]
    assert first["edited"], "the first pass writes noise into every cell of the first canvas"
    assert page.locator(f"{cells}.ch").count() == len(first["edited"])
    assert page.locator(f"{cells}.u").count() == len(set(first["edited"]) - set(first["positions"])) > 0
    shown = page.evaluate(f"""() => Object.fromEntries([...document.querySelectorAll('{cells}[data-i]')]
        .filter(t => !t.classList.contains('e')).map(t => [t.dataset.i, t.previousSibling.data + t.textContent]))""")
    held = {str(p): text for p, text in zip(first["edited"], first["edit_texts"])}
    assert shown and all(shown[i] == held[i] for i in shown if i in held), "each cell shows its token of pass 1"
