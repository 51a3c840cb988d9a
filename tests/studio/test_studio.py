"""The studio's views, end to end: real Chromium, real server, real model (see conftest.STORY_MODEL).

Each test drives the UI the way a person would (buttons, keys, selections) and checks what the
page shows and what the server was asked. Screenshots of every view go to tests/studio/screenshots/.
"""

from __future__ import annotations

import json
import re
import urllib.request
import xml.etree.ElementTree as ET

from .conftest import STORY_MODEL, StudioServer, real_sudoku, shoot

# Small, so every run takes well under a second here; a trained model may end its story early
# (an end token, then the tail), so it gets a longer canvas to write in.
LENGTH, STEPS = (32, 16) if STORY_MODEL == "tiny" else (64, 32)
PROMPT = "Once upon a time, a little fox"


def set_range(page, selector: str, value) -> None:
    """Move a range input as a drag would: set it and fire `input`."""
    page.locator(selector).evaluate(
        "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', {bubbles: true})); }", value
    )


def dial(page, view: str, length: int | None = LENGTH, steps: int = STEPS) -> None:
    if length is not None:
        set_range(page, f"#view-{view} input[aria-label='Length in tokens']", length)
    set_range(page, f"#view-{view} input[aria-label='Steps (model passes)']", steps)


def record_canvas(page, root: str) -> None:
    """Record every state the canvas passes through: (masked cells, all cells, text)."""
    page.evaluate(
        """root => {
        window.__frames = [];
        const c = document.querySelector(root);
        new MutationObserver(() => window.__frames.push({
            masked: c.querySelectorAll('.tok.m').length, cells: c.querySelectorAll('.tok[data-i]').length, text: c.innerText,
        })).observe(c, {subtree: true, childList: true, attributes: true, characterData: true});
    }""",
        root,
    )


# A run here takes well under a second; the deadline is for a loaded machine (model loads included).
DONE_TIMEOUT_MS = 180_000


def current_run(page, view: str):
    """A handle on the view's latest live run (null before the first): take it before starting a
    run, and wait_done(page, view, it) waits for the one after it."""
    return page.evaluate_handle("view => window.unmaskStudio.views[view].stage.live", view)


def wait_done(page, view: str, before) -> None:
    """Wait until the run started after `before` (see current_run) is over: done received and shown
    to its last step (the filmstrip is rendered then). Fails with the page's error if the run failed."""
    page.wait_for_function(
        """([view, before]) => { const live = window.unmaskStudio.views[view].stage.live;
        return !!live && live !== before && live.finished; }""",
        arg=[view, before],
        timeout=DONE_TIMEOUT_MS,
    )
    error = page.evaluate(
        """view => { const stage = window.unmaskStudio.views[view].stage, run = stage.live.run;
        return run && run.finished && !run.error && !stage.filmWrap.hidden ? null : stage.status.textContent; }""",
        view,
    )
    assert error is None, f"the {view} run did not finish: {error}"


def answer(page, view: str = "diffuse") -> str:
    """The run's text as the canvas shows it: fixed and generated tokens, without the prompt or the tail."""
    return page.evaluate(
        """view => {
        const c = document.querySelector(`#view-${view} .canvas-body`);
        let out = '';
        for (const node of c.childNodes) {
            if (node.nodeType === 3) { out += node.data; continue; }
            if (node.classList.contains('prefix')) continue;
            if (node.classList.contains('e') || node.classList.contains('t') || node.classList.contains('m')) continue;
            out += node.textContent;
        }
        return out;
    }""",
        view,
    )


def last_step(page, view: str = "diffuse") -> int:
    return page.evaluate(f"() => window.unmaskStudio.views['{view}'].stage.run.lastStep")


def settle(page, view: str = "diffuse") -> None:
    """Wait until the view's dial shows the server's answer to its latest fields (/api/resolve)."""
    page.wait_for_function("view => !window.unmaskStudio.views[view].dial.pending", arg=view)


def resolve(studio, **body) -> dict:
    """POST /api/resolve, apart from the page: what the server says these fields run with."""
    request = urllib.request.Request(
        studio.url + "/api/resolve", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as reply:
        return json.load(reply)


def shown_steps(page, view: str = "diffuse") -> int:
    return int(page.locator(f"#view-{view} .dial-row[data-param='steps'] output").inner_text())


def selected_model(page, view: str = "diffuse") -> str:
    return page.evaluate("view => window.unmaskStudio.views[view].picker.info.name", view)


def run_start(page, view: str = "diffuse") -> dict:
    """The latest run's `start` frame, as the server sent it."""
    return page.evaluate("view => window.unmaskStudio.views[view].stage.run.start", view)


def passes_text(timings: dict) -> str:
    """The passes readout for a done frame's timings: "107 (32 planned)" when they differ."""
    nfe, planned = timings["nfe"], timings["planned_passes"]
    return str(nfe) if nfe == planned else f"{nfe} ({planned} planned)"


def diffuse(page, prompt: str = PROMPT, **dial_values) -> None:
    page.fill("#view-diffuse .prompt-input", prompt)
    dial(page, "diffuse", **dial_values)
    before = current_run(page, "diffuse")
    page.click("#view-diffuse .run-btn")
    wait_done(page, "diffuse", before)


def test_live_run_shows_placeholders_resolving(page, studio):
    mark = studio.recorder.mark()
    page.fill("#view-diffuse .prompt-input", PROMPT)
    dial(page, "diffuse")
    page.check("#view-diffuse input[aria-label='Slow motion']")  # every step held on screen
    record_canvas(page, "#view-diffuse .canvas-body")
    before = current_run(page, "diffuse")
    page.click("#view-diffuse .run-btn")
    # Mid-run: some cells still placeholders, some already words.
    page.wait_for_function("""() => { const c = document.querySelector('#view-diffuse .canvas-body');
        const m = c.querySelectorAll('.tok.m').length, all = c.querySelectorAll('.tok[data-i]').length;
        return all > 0 && m > all * 0.25 && m < all * 0.75; }""")
    shoot(page, "diffuse-live")
    wait_done(page, "diffuse", before)
    frames = page.evaluate("() => window.__frames")
    cells = max(f["cells"] for f in frames)
    assert cells == LENGTH
    assert frames[0]["masked"] == LENGTH or any(f["masked"] == LENGTH for f in frames[:3]), "it starts all placeholders"
    intermediate = [f for f in frames if 0 < f["masked"] < LENGTH]
    assert len({f["masked"] for f in intermediate}) >= STEPS // 2, "many distinct in-between states were shown"
    final = frames[-1]
    assert final["masked"] == 0 and final["text"].startswith(PROMPT)
    # Driven by the real stream: one POST, streamed, with the dial's values.
    [body] = studio.recorder.bodies("/api/diffuse", mark)
    assert (
        body["stream"] is True
        and body["max_new_tokens"] == LENGTH
        and body["steps"] == STEPS
        and body["prompt"] == PROMPT
    )
    # Readouts from the done frame's timings (a model may finish early: once an end token follows
    # only committed ones, so fewer passes run than were planned).
    steps = last_step(page)
    timings = page.evaluate("() => window.unmaskStudio.views.diffuse.stage.run.done.timings")
    stats = page.locator("#view-diffuse .stat b").all_inner_texts()
    assert 1 < steps <= STEPS and timings["planned_passes"] == STEPS and stats[1] == passes_text(timings)
    assert stats[3] == f"{steps} / {STEPS}" and stats[0] != "–"


def test_timeline_scrubs_to_any_step_heat_and_filmstrip(page):
    diffuse(page)
    canvas = "#view-diffuse .canvas-body"
    page.click(canvas)
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")  # step 1
    assert page.locator("#view-diffuse .readout").inner_text().replace("\n", " ").startswith("step 1 /")
    masked = page.locator(f"{canvas} .tok.m").count()
    assert masked >= LENGTH * 0.75, f"step 1 should be mostly placeholders, got {masked}/{LENGTH}"
    set_range(page, "#view-diffuse .scrubber", last_step(page) // 2)
    halfway = page.locator(f"{canvas} .tok.m").count()
    assert 0 < halfway < masked
    page.keyboard.press("End")
    assert page.locator(f"{canvas} .tok.m").count() == 0
    # Heat: every generated token coloured by its step; the legend shows.
    page.keyboard.press("h")
    assert page.locator(f"{canvas}.heat").count() == 1 and page.locator("#view-diffuse .heat-legend").is_visible()
    colours = page.evaluate(
        f"() => [...document.querySelectorAll('{canvas} .tok[data-i]')].map(t => t.style.getPropertyValue('--heat'))"
    )
    decided = page.evaluate("() => new Set(window.unmaskStudio.views.diffuse.stage.run.stepOf).size")
    assert all(colours) and len(set(colours)) == decided, "one colour per decision step"
    shoot(page, "diffuse-heat")
    # Filmstrip: a handful of steps side by side; clicking one scrubs there.
    frames = page.locator("#view-diffuse .frame")
    assert 4 <= frames.count() <= 6
    steps = [int(s) for s in frames.evaluate_all("fs => fs.map(f => f.dataset.step)")]
    assert steps[0] == 1 and steps[-1] == last_step(page) and steps == sorted(steps)
    frames.nth(1).click()
    assert page.locator("#view-diffuse .readout b").inner_text() == str(steps[1])
    page.locator("#view-diffuse .film-wrap").scroll_into_view_if_needed()
    shoot(page, "diffuse-filmstrip", full_page=True)
    # Replay plays back to the end.
    page.click("#view-diffuse .timeline .play")
    page.wait_for_function(
        f"() => document.querySelector('#view-diffuse .readout b').textContent === '{last_step(page)}'"
    )


def test_dial_presets_and_settings_reach_the_server(page, studio):
    """The dial shows what the server resolves a preset to; the run sends the preset, not the numbers."""
    model = selected_model(page)
    set_range(page, "#view-diffuse input[aria-label='Length in tokens']", 64)
    page.click("#view-diffuse .segmented button:has-text('Fast')")
    settle(page)
    fast = resolve(studio, model=model, preset="fast", max_new_tokens=64)["options"]
    assert shown_steps(page) == fast["steps"] and fast["threshold"] is not None
    assert page.locator("#view-diffuse input[aria-label='Use a confidence threshold']").is_checked()
    page.click("#view-diffuse .segmented button:has-text('Best')")
    settle(page)
    assert shown_steps(page) == resolve(studio, model=model, preset="best", max_new_tokens=64)["options"]["steps"] == 64
    assert not page.locator("#view-diffuse input[aria-label='Use a confidence threshold']").is_checked()
    page.click("#view-diffuse .segmented button:has-text('Fast')")
    page.select_option("#view-diffuse select[aria-label='Block length']", "16")
    page.fill("#view-diffuse input[aria-label='Seed']", "7")
    page.locator("#view-diffuse input[aria-label='Seed']").dispatch_event("change")
    settle(page)
    resolved = resolve(studio, model=model, preset="fast", max_new_tokens=64, block_length=16, seed=7)
    assert shown_steps(page) == resolved["options"]["steps"] and resolved["blocks"] == 4
    assert page.locator("#view-diffuse .dial-top button[data-value='fast']").get_attribute("aria-pressed") == "true"
    mark = studio.recorder.mark()
    before = current_run(page, "diffuse")
    page.click("#view-diffuse .run-btn")
    wait_done(page, "diffuse", before)
    [body] = studio.recorder.bodies("/api/diffuse", mark)
    body.pop("prompt")
    assert body == {
        "model": model,
        "preset": "fast",
        "max_new_tokens": 64,
        "block_length": 16,
        "seed": 7,
        "stream": True,
    }
    start = run_start(page)
    assert start["options"] == resolved["options"] and start["block_length"] == 16
    assert start["total_steps"] % 4 == 0  # a multiple of the 4 blocks
    # The run's block count, from the start frame, is in the readouts.
    blocks = page.locator("#view-diffuse .stat", has_text="blocks of 16 tokens")
    assert blocks.is_visible() and blocks.locator("b").inner_text() == "4"
    # Steps set by hand: the preset stays beneath them (threshold, cache) and no button is pressed.
    set_range(page, "#view-diffuse input[aria-label='Steps (model passes)']", 32)
    settle(page)
    assert page.locator("#view-diffuse .dial-top button[aria-pressed='true']").count() == 0
    assert (
        shown_steps(page) == 32
        and page.locator("#view-diffuse input[aria-label='Use a confidence threshold']").is_checked()
    )
    shoot(page, "diffuse-dial")


def test_each_preset_runs_what_the_dial_shows(page, studio):
    """For every preset: the dial's steps are the run's total_steps, and its options the run's."""
    model = selected_model(page)
    set_range(page, "#view-diffuse input[aria-label='Length in tokens']", LENGTH)
    page.fill("#view-diffuse .prompt-input", PROMPT)
    for preset in ("fast", "balanced", "best"):
        page.click(f"#view-diffuse .dial-top button[data-value='{preset}']")
        settle(page)
        shown = page.evaluate("() => window.unmaskStudio.views.diffuse.dial.options")
        assert shown == resolve(studio, model=model, preset=preset, max_new_tokens=LENGTH)["options"]
        mark = studio.recorder.mark()
        before = current_run(page, "diffuse")
        page.click("#view-diffuse .run-btn")
        wait_done(page, "diffuse", before)
        [body] = studio.recorder.bodies("/api/diffuse", mark)
        assert body == {"model": model, "preset": preset, "max_new_tokens": LENGTH, "prompt": PROMPT, "stream": True}
        start = run_start(page)
        assert start["total_steps"] == shown_steps(page) == shown["steps"], preset
        assert start["options"] == shown, preset
        timings = page.evaluate("() => window.unmaskStudio.views.diffuse.stage.run.done.timings")
        assert page.locator("#view-diffuse .stat b").nth(1).inner_text() == passes_text(timings)


def test_dial_asks_once_a_slider_rests_and_shows_the_last_answer(page, studio):
    model = selected_model(page)
    page.click("#view-diffuse .dial-top button[data-value='fast']")
    settle(page)
    mark = studio.recorder.mark()
    lengths = list(range(40, 136, 8))
    for n in lengths:  # a quick drag: one input event after another
        set_range(page, "#view-diffuse input[aria-label='Length in tokens']", n)
    settle(page)
    asked = studio.recorder.bodies("/api/resolve", mark)
    assert 1 <= len(asked) < len(lengths) and asked[-1]["max_new_tokens"] == lengths[-1]
    expected = resolve(studio, model=model, preset="fast", max_new_tokens=lengths[-1])["options"]
    assert shown_steps(page) == expected["steps"]
    assert page.evaluate("() => window.unmaskStudio.views.diffuse.dial.options") == expected


def test_passes_readout_says_when_they_differ_from_the_plan(page):
    texts = page.evaluate("""async () => { const { passes } = await import('/js/stage.js');
        return [passes({ nfe: 107, planned_passes: 32 }), passes({ nfe: 32, planned_passes: 32 }), passes({}, 5)]; }""")
    assert texts == ["107 (32 planned)", "32", "5"]


def test_dial_starts_at_the_models_shipped_defaults(page, studio):
    # The server's description of the selected model, fetched apart from the studio's own copy.
    name = page.evaluate("() => window.unmaskStudio.views['diffuse'].picker.info.name")
    with urllib.request.urlopen(studio.url + "/api/models") as reply:
        [info] = [m for m in json.load(reply)["models"] if m["name"] == name]
    shipped = info["defaults"]
    temperature = page.locator("#view-diffuse .dial-row[data-param='temperature'] output").inner_text()
    spread = page.locator("#view-diffuse .dial-row[data-param='spread'] output").inner_text()
    assert temperature == (f"{shipped['temperature']:.2f}" if shipped["temperature"] else "greedy")
    assert spread == (str(shipped["spread"]) if shipped["spread"] else "off")
    remask = page.locator("#view-diffuse .dial-row[data-param='remask'] output").inner_text()
    assert remask == (f"{shipped['remask']:.2f}" if shipped["remask"] else "off")
    # Untouched, these are the model's: the run leaves them out and the server uses the same values.
    mark = studio.recorder.mark()
    diffuse(page)
    [body] = studio.recorder.bodies("/api/diffuse", mark)
    assert not {"temperature", "spread", "remask", "preset"} & body.keys()
    options = run_start(page)["options"]
    assert (options["temperature"], options["spread"], options["remask"]) == (
        shipped["temperature"],
        shipped["spread"],
        shipped["remask"],
    )
    # Moving the slider is the user's choice from then on: it is sent, and kept after a reload.
    set_range(page, "#view-diffuse input[aria-label='Spread']", 3)
    page.reload()
    page.wait_for_selector("#server-state.ok")
    assert page.locator("#view-diffuse .dial-row[data-param='spread'] output").inner_text() == "3"
    mark = studio.recorder.mark()
    diffuse(page)
    [body] = studio.recorder.bodies("/api/diffuse", mark)
    assert body["spread"] == 3
    # A threshold decides the commits itself: the Remask slider rests and is not sent.
    set_range(page, "#view-diffuse input[aria-label='Remask']", 0.2)
    page.check("#view-diffuse input[aria-label='Use a confidence threshold']")
    assert page.locator("#view-diffuse input[aria-label='Remask']").is_disabled()
    mark = studio.recorder.mark()
    diffuse(page)
    [body] = studio.recorder.bodies("/api/diffuse", mark)
    assert "threshold" in body and "remask" not in body
    page.uncheck("#view-diffuse input[aria-label='Use a confidence threshold']")
    mark = studio.recorder.mark()
    diffuse(page)
    [body] = studio.recorder.bodies("/api/diffuse", mark)
    assert body["remask"] == 0.2 and "threshold" not in body
    settle(page)  # the dial shows it too (no preset's refusal of remask gets in the way)
    assert page.locator("#view-diffuse .dial-row[data-param='remask'] output").inner_text() == "0.20"
    assert page.locator("#view-diffuse .dial-status").is_hidden() and run_start(page)["options"]["remask"] == 0.2


def test_errors_are_friendly_and_point_at_the_setting(page):
    set_range(page, "#view-diffuse input[aria-label='Length in tokens']", 512)  # over this server's 256
    page.click("#view-diffuse .run-btn")
    error = page.locator("#view-diffuse .error-box")
    error.wait_for()
    assert "max_new_tokens" in error.inner_text() and "256" in error.inner_text()
    assert page.locator("#view-diffuse .dial-row[data-param='max_new_tokens'].invalid").count() == 1
    shoot(page, "diffuse-error")


def test_compare_runs_step_counts_together(page, studio):
    page.goto(studio.url + "/#/compare")
    page.click(f"#view-compare .segmented button[data-value='{LENGTH}']")
    chips = page.locator("#view-compare .step-chips .chip")
    wanted = ("4", str(LENGTH))
    for steps in wanted:
        chip = page.locator(f"#view-compare .step-chips .chip[data-steps='{steps}']")
        if chip.get_attribute("aria-pressed") != "true":
            chip.click()
    for chip in chips.all():
        if chip.get_attribute("aria-pressed") == "true" and chip.get_attribute("data-steps") not in wanted:
            chip.click()
    mark = studio.recorder.mark()
    page.click("#view-compare .btn.primary")
    page.wait_for_function(
        "() => document.querySelectorAll('#view-compare .compare-col.finished').length === 2", timeout=60_000
    )
    shoot(page, "compare")
    requests = [r for r in studio.recorder.since(mark) if r["path"] == "/api/diffuse"]
    assert sorted(json.loads(r["body"])["steps"] for r in requests) == [4, LENGTH]
    assert len({json.loads(r["body"])["seed"] for r in requests}) == 1, "one seed: only the steps differ"
    # Sent together: both were asked for before either answer ended.
    assert max(r["start"] for r in requests) < min(r["end"] for r in requests)
    cols = page.locator("#view-compare .compare-col")
    for i, steps in enumerate((4, LENGTH)):
        col = cols.nth(i)
        assert col.get_attribute("data-steps") == str(steps)
        assert col.locator(".compare-foot").inner_text().count("s") >= 1
        assert col.locator(".tok.m").count() == 0 and col.locator(".tok[data-i]").count() == LENGTH
    assert page.locator("#view-compare .compare-summary").is_visible()


def test_infill_keeps_the_fixed_text(page, studio):
    page.goto(studio.url + "/#/infill")
    editor = "#view-infill .infill-input"
    page.fill(editor, "The fox ran to the river. The bear ")
    page.locator(editor).press("End")
    page.select_option("#view-infill .gap-size", "4")
    page.click("#view-infill button:has-text('Insert gap')")
    page.locator(editor).press("End")
    page.keyboard.type("in the cave.")
    template = page.input_value(editor)
    assert template == "The fox ran to the river. The bear {{4}} in the cave."
    assert page.locator("#view-infill .gap-pill").count() == 1
    mark = studio.recorder.mark()
    record_canvas(page, "#view-infill .canvas-body")
    page.click("#view-infill .btn.primary")
    page.wait_for_selector("#view-infill .infill-result:not([hidden])", timeout=60_000)
    [body] = studio.recorder.bodies("/api/diffuse", mark)
    assert body["template"] == template and "max_new_tokens" not in body
    # The dial's steps are the server's for this template, and the run's.
    settle(page, "infill")
    assert shown_steps(page, "infill") == resolve(studio, model=body["model"], template=template)["options"]["steps"]
    assert run_start(page, "infill")["total_steps"] == shown_steps(page, "infill")
    result = page.locator("#view-infill .infill-text").inner_text()
    assert result.startswith("The fox ran to the river. The bear ") and result.endswith(" in the cave.")
    # Only the gap diffused: the fixed text after it was never a placeholder.
    frames = page.evaluate("() => window.__frames")
    assert max(f["masked"] for f in frames) == 4
    assert all(f["text"].rstrip().endswith("in the cave.") for f in frames if f["cells"])
    shoot(page, "infill")


def answer_cells(page) -> list[dict]:
    """The Diffuse canvas's cells: each one's text (with the space before it) and whether it is
    part of the answer (not an end token, the tail after it, or a mask)."""
    cells = page.evaluate("""() => [...document.querySelectorAll('#view-diffuse .canvas-body .tok[data-i]')]
        .map(t => ({text: t.previousSibling.data + t.textContent, answer: !/\\b(e|t|m)\\b/.test(t.className)}))""")
    return cells


def select_span(page, a: int, b: int) -> None:
    """Select cells a..b of the Diffuse canvas, as a mouse drag would."""
    page.evaluate(
        """([a, b]) => {
        const cells = document.querySelectorAll('#view-diffuse .canvas-body .tok[data-i]');
        const range = document.createRange();
        range.setStart(cells[a].firstChild, 0);
        range.setEnd(cells[b].firstChild, cells[b].firstChild.length);
        const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range);
        document.querySelector('#view-diffuse .canvas-body').dispatchEvent(new MouseEvent('mouseup', {bubbles: true}));
    }""",
        [a, b],
    )


def test_rewrite_changes_only_the_selected_span(page, studio):
    diffuse(page, "Lily found a shiny key in the garden.", length=LENGTH, steps=LENGTH // 2)
    cells = answer_cells(page)
    length = next((i for i, c in enumerate(cells) if not c["answer"]), len(cells))
    assert length >= 6, "the answer is long enough to rewrite a span inside it"
    a, b = length // 3, length // 3 + max(1, length // 4)  # a span in the middle of the answer
    head = "".join(c["text"] for c in cells[:a])
    after = "".join(c["text"] for c in cells[b + 1 : length])
    select_span(page, a, b)
    page.wait_for_selector("#view-diffuse .rewrite-btn:not([hidden])")
    shoot(page, "rewrite-selection")
    mark = studio.recorder.mark()
    before = current_run(page, "diffuse")
    page.keyboard.press("r")
    page.wait_for_function("() => document.querySelectorAll('#view-diffuse .tok.rw').length > 0")
    wait_done(page, "diffuse", before)
    [body] = studio.recorder.bodies("/api/diffuse", mark)
    n = b - a + 1
    assert body["prompt"] == "Lily found a shiny key in the garden." and body["template"] == f"{head}{{{{{n}}}}}{after}"
    assert body["steps"] <= n and body["temperature"] > 0
    assert page.locator("#view-diffuse .tok.rw").count() == n
    rewritten = answer(page)
    assert rewritten.startswith(head) and rewritten.endswith(after)
    # The fixed text was never masked: only the span's cells started as placeholders.
    assert page.locator("#view-diffuse .canvas-body > .tok.g").first.inner_text() == head
    shoot(page, "rewrite")


def test_sudoku_fills_the_grid_keeping_the_givens(page, studio):
    page.goto(studio.url + "/#/sudoku")
    givens = page.evaluate(
        "() => [...document.querySelectorAll('#view-sudoku .cell')].map(c => c.classList.contains('given') ? c.textContent : '0').join('')"
    )
    assert len(givens) == 81 and givens.count("0") > 30
    page.click("#view-sudoku .btn.primary")
    page.wait_for_selector("#view-sudoku .result-row", timeout=60_000)
    cells = page.evaluate("() => [...document.querySelectorAll('#view-sudoku .cell')].map(c => c.textContent).join('')")
    assert len(cells) == 81 and re.fullmatch(r"[1-9]{81}", cells), cells
    assert all(g == "0" or g == c for g, c in zip(givens, cells)), "the givens are kept"
    if real_sudoku():  # the trained model solves it; the tiny one only fills the grid
        assert page.locator("#view-sudoku .sudoku-grid.solved").count() == 1
    shoot(page, "sudoku")
    # Random order: same board, the other ranking; both results listed.
    mark = studio.recorder.mark()
    page.click("#view-sudoku button:has-text('Random order')")
    page.click("#view-sudoku .btn.primary")
    page.wait_for_function("() => document.querySelectorAll('#view-sudoku .result-row').length === 2", timeout=60_000)
    [body] = studio.recorder.bodies("/api/diffuse", mark)
    assert body["algorithm"] == "random" and body["model"] == "sudoku" and len(body["puzzle"]) == 81
    # Scrub back to the start: only the givens.
    set_range(page, "#view-sudoku .scrubber", 0)
    assert page.locator("#view-sudoku .cell.filled").count() == 0


def test_chat_is_multi_turn_with_markdown_and_copy(page, studio, context):
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(studio.url + "/#/chat")
    page.select_option("#view-chat select[aria-label='Answer length in tokens']", "32")
    mark = studio.recorder.mark()
    page.fill("#view-chat .chat-input", "Hello")
    page.keyboard.press("Enter")
    page.wait_for_selector("#view-chat .msg.assistant:not(.diffusing)", timeout=60_000)
    page.fill("#view-chat .chat-input", "Tell me more")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelectorAll('#view-chat .msg.assistant:not(.diffusing)').length === 2", timeout=60_000
    )
    bodies = studio.recorder.bodies("/api/diffuse", mark)
    assert [m["role"] for m in bodies[1]["messages"]] == ["user", "assistant", "user"]
    assert bodies[1]["model"] == "chat" and bodies[1]["max_new_tokens"] == 32
    assert page.locator("#view-chat .chat-item").count() == 1
    page.evaluate("""() => { const write = navigator.clipboard.writeText.bind(navigator.clipboard);
        navigator.clipboard.writeText = text => { window.__copied = text; return write(text); }; }""")
    page.locator("#view-chat .msg.assistant .copy-btn").first.click()
    page.wait_for_selector("#view-chat .copy-btn.copied")
    assert page.evaluate("() => window.__copied") == bodies[1]["messages"][1]["content"]
    shoot(page, "chat")
    # Every answer's count agrees with its number ("1 token", never "1 tokens").
    for meta in page.locator("#view-chat .msg.assistant .msg-meta").all_inner_texts():
        n, word = re.match(r"(\d+) (\w+)", meta).groups()
        assert word == ("token" if n == "1" else "tokens"), meta
    assert page.evaluate(
        "async () => { const { count } = await import('/js/ui.js');"
        " return [count(1, 'token'), count(27, 'token'), count(0, 'token'), count(undefined, 'token')]; }"
    ) == ["1 token", "27 tokens", "0 tokens", ""]
    # The conversation survives a reload.
    page.reload()
    page.wait_for_selector("#view-chat .msg.assistant")
    assert page.locator("#view-chat .msg").count() == 4


def test_markdown_is_rendered_and_escaped(page):
    html = page.evaluate("""async () => {
        const { render } = await import('/js/markdown.js');
        const { highlight } = await import('/js/highlight.js');
        const md = '# Title\\n\\nSome **bold**, *em* and `code`.\\n\\n- one\\n- two\\n\\n| a | b |\\n|---|--:|\\n| 1 | 2 |\\n\\n' +
            '<img src=x onerror=alert(1)> [ok](https://example.com) [bad](javascript:alert(1))\\n\\n```js\\nconst x = 1; // hi\\n```';
        const out = render(md);
        return { html: out.html, blocks: out.blocks, code: highlight('<div class="a" onclick="x()">&</div>', 'html') };
    }""")
    body = html["html"]
    assert (
        "<h1>Title</h1>" in body
        and "<strong>bold</strong>" in body
        and "<em>em</em>" in body
        and "<code>code</code>" in body
    )
    assert "<ul><li>one</li><li>two</li></ul>" in body and "<table>" in body and 'class="al-right"' in body
    assert "<img" not in body and "&lt;img src=x onerror=alert(1)&gt;" in body
    assert (
        'href="https://example.com"' in body
        and "javascript:" not in body.split("bad")[0][-40:]
        and 'href="javascript' not in body
    )
    assert html["blocks"] == [{"lang": "js", "code": "const x = 1; // hi", "closed": True}]
    code = html["code"]
    assert "<div" not in code and "&amp;" in code and "hl-tag" in code and "hl-attr" in code


def test_exports_replay_and_animated_svg(page, context, tmp_path):
    diffuse(page)
    with page.expect_download() as info:
        page.click("#view-diffuse button:has-text('HTML replay')")
    html_path = tmp_path / "replay.html"
    info.value.save_as(html_path)
    html = html_path.read_text()
    assert "<script" in html and "http" not in re.sub(r'xmlns="[^"]+"', "", html).replace("http-equiv", ""), (
        "self-contained: no URL to fetch"
    )
    replay = context.new_page()
    replay.goto(html_path.as_uri())
    replay.wait_for_function(f"() => document.getElementById('step').value === '{last_step(page)}'", timeout=15_000)
    assert replay.locator("#canvas .m").count() == 0
    replay.locator("#step").evaluate("el => { el.value = '1'; el.dispatchEvent(new Event('input')); }")
    assert replay.locator("#canvas .m").count() >= LENGTH * 0.75
    replay.close()
    with page.expect_download() as info:
        page.click("#view-diffuse button:has-text('Animated SVG')")
    svg_path = tmp_path / "run.svg"
    info.value.save_as(svg_path)
    root = ET.parse(svg_path).getroot()
    assert root.tag.endswith("svg")
    style = "".join(s.text or "" for s in root.iter("{http://www.w3.org/2000/svg}style"))
    texts = list(root.iter("{http://www.w3.org/2000/svg}text"))
    words = [t for t in texts if (t.get("class") or "").startswith("w ")]  # generated tokens, "w a<step>"
    assert style.count("@keyframes a") >= 1 and len(words) >= 1
    assert all(f"@keyframes {t.get('class').split()[-1]}{{" in style for t in words), "each token appears at its step"


def test_keyboard_theme_and_small_screens(page, studio):
    page.keyboard.press("Escape")  # out of the prompt: single keys type there
    page.keyboard.press("2")
    page.wait_for_selector("#view-compare:not([hidden])")
    assert page.url.endswith("#/compare")
    page.keyboard.press("4")
    page.wait_for_selector("#view-sudoku:not([hidden])")
    theme = page.evaluate("() => document.documentElement.dataset.theme")
    page.keyboard.press("t")
    assert page.evaluate("() => document.documentElement.dataset.theme") != theme
    shoot(page, "sudoku-light")
    page.keyboard.press("?")
    assert page.locator("#shortcuts-dialog[open]").count() == 1
    shoot(page, "shortcuts")
    page.keyboard.press("Escape")
    assert page.locator("#shortcuts-dialog[open]").count() == 0
    page.wait_for_function("() => document.activeElement === document.body")  # focus returned
    page.keyboard.press("1")
    page.wait_for_selector("#view-diffuse:not([hidden])")
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.activeElement === document.body")
    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement.classList.contains('prompt-input')")
    before = current_run(page, "diffuse")
    page.keyboard.press("Control+Enter")
    wait_done(page, "diffuse", before)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1"), (
        "no sideways scrolling on a phone"
    )
    shoot(page, "diffuse-phone", full_page=True)


def test_loading_shows_the_helium_atom(page, studio):
    # The dial is left alone: asking the server about its fields would load the model before the run.
    page.select_option("#view-diffuse .model-select", "slowstory")
    before = current_run(page, "diffuse")
    page.click("#view-diffuse .run-btn")
    loader = page.locator("#view-diffuse .atom-loader")
    loader.wait_for(timeout=10_000)
    assert "Loading slowstory" in loader.inner_text()
    assert (
        page.locator("#view-diffuse .atom .electron").count() == 2
        and page.locator("#view-diffuse .atom .nucleus circle").count() == 4
    )
    shoot(page, "loading")
    wait_done(page, "diffuse", before)
    assert loader.count() == 0
    assert page.locator("#view-diffuse .model-picker .model-dot.loaded").count() == 1


def test_empty_states_teach(page, studio):
    empty = page.locator("#view-diffuse .stage-empty")
    assert empty.locator(".chip").count() >= 3 and "out of order" in empty.inner_text()
    shoot(page, "diffuse-empty")
    page.goto(studio.url + "/#/infill")
    assert page.locator("#view-infill .stage-empty .chip").count() >= 2
    page.goto(studio.url + "/#/chat")
    assert page.locator("#view-chat .chat-empty .chip").count() >= 3
    page.goto(studio.url + "/#/compare")
    assert "step" in page.locator("#view-compare .compare-empty").inner_text()


def test_a_server_with_an_api_key_asks_for_it_once(context, studio_models):
    server = StudioServer(studio_models, api_key="sesame")
    try:
        page = context.new_page()
        page.goto(server.url + "/#/diffuse")
        dialog = page.locator("#key-dialog[open]")
        dialog.wait_for()
        shoot(page, "api-key")
        page.fill("#key-input", "sesame")
        page.click("#key-dialog button[value='ok']")
        page.wait_for_selector("#server-state.ok")
        dial(page, "diffuse")
        before = current_run(page, "diffuse")
        page.click("#view-diffuse .run-btn")
        wait_done(page, "diffuse", before)
        keyed = [r for r in server.recorder.requests if r["path"].startswith("/api/")]
        assert keyed[0]["status"] == 401 and all(
            r["headers"].get("authorization") == "Bearer sesame" for r in keyed[1:]
        )
    finally:
        server.stop()
