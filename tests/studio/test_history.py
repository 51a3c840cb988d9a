"""The studio keeps its runs (issue 17): a run history across reloads, rewrite versions with undo,
settings and seed in every export, a mask map of the whole canvas, an "Any order" example, and heat
cells readable in the dark theme. Real Chromium, a real server, the real story model.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from .conftest import PHONE, shoot
from .test_finish import SVG, export, replay_text, run_now, run_value
from .test_studio import PROMPT, answer, current_run, dial, select_span, set_range, settle, wait_done

LILY = "Lily found a shiny key in the garden."


def history_items(page, view: str = "diffuse"):
    return page.locator(f"#view-{view} .history-item")


def shown(page) -> str:
    """The Diffuse canvas as read: the prompt, then the answer."""
    return page.locator("#view-diffuse .canvas-body .prefix").inner_text() + answer(page)


def wait_history(page, count: int, view: str = "diffuse") -> None:
    page.wait_for_function(
        "([view, n]) => document.querySelectorAll(`#view-${view} .history-item`).length === n", arg=[view, count]
    )


# --- 1. Run history --------------------------------------------------------------------------------


def test_runs_are_kept_across_reloads_replayable_exportable_and_deletable(screen, context, tmp_path):
    page = screen
    page.fill("#view-diffuse .prompt-input", PROMPT)
    dial(page, "diffuse", length=32, steps=16)
    run_now(page)
    fox, fox_steps = shown(page), run_value(page, "run.lastStep")
    wait_history(page, 1)
    page.fill("#view-diffuse .prompt-input", LILY)
    run_now(page)
    lily = shown(page)
    wait_history(page, 2)
    items = history_items(page)
    assert items.nth(0).locator(".history-label").inner_text().startswith(answer(page).strip()[:20])
    assert items.nth(0).evaluate("li => li.classList.contains('current')"), "the run shown is marked"

    # A reload shows the last run again, finished: the scrubber replays it and the exports are there.
    page.reload()
    page.wait_for_selector("#server-state.ok")
    wait_history(page, 2)
    page.wait_for_selector("#view-diffuse .canvas-body:not([hidden]) .tok[data-i]")
    assert shown(page) == lily
    assert page.locator("#view-diffuse .export").is_visible()
    shoot(page, "history-after-reload", full_page=True)

    # The older run replays: the timeline scrubs it from its first step to its last.
    items.nth(1).locator(".history-open").click()
    page.wait_for_function("() => window.unmaskStudio.views.diffuse.stage.run.lastStep > 0")
    assert shown(page) == fox
    assert page.locator("#view-diffuse .scrubber").get_attribute("max") == str(fox_steps)
    set_range(page, "#view-diffuse .scrubber", 0)
    assert page.locator("#view-diffuse .canvas-body .tok.m").count() == 32
    set_range(page, "#view-diffuse .scrubber", fox_steps)
    assert page.locator("#view-diffuse .canvas-body .tok.m").count() == 0
    # ...and exports as it did live.
    replay = context.new_page()
    replay.goto(export(page, "HTML replay", tmp_path / "old.html").as_uri())
    replay.wait_for_function("() => document.getElementById('play').textContent === 'Play'", timeout=15_000)
    assert replay_text(replay) == fox
    replay.close()

    # Deleting one leaves the other, across a reload too.
    items.nth(1).locator(".history-delete").click()
    wait_history(page, 1)
    page.reload()
    page.wait_for_selector("#server-state.ok")
    wait_history(page, 1)
    assert shown(page) == lily


def test_the_history_keeps_the_last_twenty(screen):
    page = screen
    dial(page, "diffuse", length=16, steps=8)
    run_now(page)
    wait_history(page, 1)
    # Save the same run 24 more times, through the studio's own module: 20 stay, the newest.
    keys = page.evaluate("""async () => {
        const history = await import('/js/history.js');
        const run = window.unmaskStudio.views.diffuse.stage.run;
        const keys = [];
        for (let i = 0; i < 24; i++) keys.push(await history.save(run, 'diffuse'));
        const kept = (await history.list('diffuse')).map(r => r.key);
        return { keys, kept };
    }""")
    assert keys["kept"] == sorted(keys["keys"], reverse=True)[:20]


# --- 2. Rewrite versions with undo ---------------------------------------------------------------


def rewrite_middle(page) -> None:
    cells = page.evaluate("""() => [...document.querySelectorAll('#view-diffuse .canvas-body .tok[data-i]')]
        .map(t => !/\\b(e|t|m)\\b/.test(t.className))""")
    length = next((i for i, ok in enumerate(cells) if not ok), len(cells))
    assert length >= 8
    select_span(page, length // 3, length // 3 + 2)
    page.wait_for_selector("#view-diffuse .rewrite-btn:not([hidden])")
    before = current_run(page, "diffuse")
    page.click("#view-diffuse .rewrite-btn")
    wait_done(page, "diffuse", before)


def test_a_rewrite_keeps_the_version_before_and_undo_brings_it_back(screen):
    page = screen
    page.fill("#view-diffuse .prompt-input", LILY)
    dial(page, "diffuse", length=48, steps=24)
    run_now(page)
    undo = page.locator("#view-diffuse .undo-btn")
    assert not undo.is_visible(), "nothing to undo before a rewrite"
    first, first_id = answer(page), run_value(page, "run.id")
    rewrite_middle(page)
    second_id = run_value(page, "run.id")
    assert second_id != first_id and undo.is_visible()
    second = answer(page)
    shoot(page, "history-undo")
    undo.click()
    assert run_value(page, "run.id") == first_id and answer(page) == first
    assert not undo.is_visible()

    # Two rewrites, then Ctrl+Z twice from the canvas: each restores the one before.
    rewrite_middle(page)
    rewrite_middle(page)
    assert undo.inner_text() == "Undo rewrite (2)"
    third_id = run_value(page, "run.id")
    # In the prompt, Ctrl+Z is the text field's own undo, not the rewrite's.
    page.focus("#view-diffuse .prompt-input")
    page.keyboard.press("Control+z")
    assert run_value(page, "run.id") == third_id
    page.click("#view-diffuse .canvas-body")
    page.keyboard.press("Control+z")
    assert run_value(page, "run.id") not in (third_id, first_id) and undo.inner_text() == "Undo rewrite"
    page.keyboard.press("Control+z")
    assert run_value(page, "run.id") == first_id and answer(page) == first
    page.keyboard.press("Control+z")  # nothing left: it stays
    assert run_value(page, "run.id") == first_id
    assert second  # the first rewrite's text was shown


# --- 3. Settings and seed in every export --------------------------------------------------------


def test_every_export_carries_the_settings_the_model_and_the_seed(screen, context, tmp_path):
    page = screen
    page.fill("#view-diffuse .prompt-input", PROMPT)
    dial(page, "diffuse", length=32, steps=16)
    page.fill("#view-diffuse input[aria-label='Seed']", "1234")
    page.locator("#view-diffuse input[aria-label='Seed']").press("Tab")
    settle(page)
    run_now(page)
    start = run_value(page, "run.start")
    options, model = start["options"], start["model"]
    assert options["seed"] == 1234

    replay = context.new_page()
    replay.goto(export(page, "HTML replay", tmp_path / "run.html").as_uri())
    replay.wait_for_function("() => document.getElementById('play').textContent === 'Play'", timeout=15_000)
    assert "seed 1234" in replay.locator("#meta").inner_text()
    settings = json.loads(replay.locator("#settings").text_content())
    assert settings["model"] == model and settings["seed"] == 1234 and settings["options"] == options
    assert settings["request"]["seed"] == 1234
    replay.close()

    root = ET.parse(export(page, "Animated SVG", tmp_path / "run.svg")).getroot()
    meta = json.loads(root.find(f"{SVG}metadata").text)
    assert meta["model"] == model and meta["seed"] == 1234 and meta["options"] == options
    assert "seed 1234" in root.find(f"{SVG}desc").text

    data = json.loads(export(page, "JSON", tmp_path / "run.json").read_text())
    assert data["model"] == model and data["seed"] == 1234 and data["options"] == options
    assert data["frames"]["start"]["id"] == start["id"] and len(data["frames"]["steps"]) == data["run"]["steps"]


# --- 4. The mask map -----------------------------------------------------------------------------


def decided_cells(page, k: int) -> list[bool]:
    return run_value(page, f"run.states({k}).map(s => s !== 'mask' && s !== 'given')")


def test_a_mask_map_of_the_whole_canvas_also_in_the_filmstrip(screen):
    page = screen
    page.fill("#view-diffuse .prompt-input", PROMPT)
    dial(page, "diffuse", length=128, steps=32)
    page.select_option("#view-diffuse select[aria-label='Block length']", "")
    page.select_option("#view-diffuse select[aria-label='Algorithm']", "random")
    settle(page)
    run_now(page)
    n = run_value(page, "run.n")
    assert n == 128
    mapped = "#view-diffuse .stage-minimap i"
    assert page.locator(mapped).count() == n
    last = run_value(page, "run.lastStep")
    for k in (0, last // 3, last // 2, last):
        set_range(page, "#view-diffuse .scrubber", k)
        shown_map = page.locator(mapped).evaluate_all(
            "cs => cs.map(c => c.classList.contains('d') || c.classList.contains('e'))"
        )
        assert shown_map == decided_cells(page, k), f"step {k}"
    shoot(page, "history-minimap", full_page=True)
    # Each filmstrip frame maps the whole canvas at its step: late frames differ past the first tokens.
    frames = page.locator("#view-diffuse .frame")
    steps = [int(s) for s in frames.evaluate_all("fs => fs.map(f => f.dataset.step)")]
    maps = frames.evaluate_all("""fs => fs.map(f => [...f.querySelectorAll('.minimap i')]
        .map(c => c.classList.contains('d') || c.classList.contains('e')))""")
    for k, m in zip(steps, maps):
        assert m == decided_cells(page, k), f"frame {k}"
    assert maps[-2][40:] != maps[-1][40:], "the last frames differ past the first tokens"


# --- 5. The "Any order" example ------------------------------------------------------------------


def test_the_any_order_example_resolves_both_ends_at_once(screen, studio):
    page = screen
    page.goto(studio.url + "/#/infill")
    page.click("#view-infill .examples .chip:has-text('Any order')")
    template = page.input_value("#view-infill .infill-input")
    assert not template.startswith("{{") and not template.endswith("}}"), "fixed text at both ends"
    before = current_run(page, "infill")
    page.click("#view-infill .btn.primary")
    wait_done(page, "infill", before)
    steps = run_value(page, "run.stepOf.map((s, i) => run.given[i] ? null : s)", "infill")
    gen = [i for i, s in enumerate(steps) if s is not None]
    last = run_value(page, "run.lastStep", "infill")
    head, tail = gen[: len(gen) // 4], gen[-(len(gen) // 4) :]
    early = last // 3 or 1
    # Within the first third of the steps, tokens are decided near both ends of the canvas.
    assert any(steps[i] <= early for i in head) and any(steps[i] <= early for i in tail), f"{last} {steps}"
    page.keyboard.press("h")
    shoot(page, "history-any-order")


# --- 6. Heat contrast ----------------------------------------------------------------------------


def luminance(rgb) -> float:
    def channel(c):
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


# Each heat cell's text and background as painted: the computed colours drawn onto a canvas, over
# the card and the page (so any colour syntax and any transparency resolve as the browser paints them).
PAINTED = """() => {
    const paint = colours => { const c = document.createElement('canvas'); c.width = c.height = 1;
        const x = c.getContext('2d'); for (const col of colours) { x.fillStyle = col; x.fillRect(0, 0, 1, 1); }
        return [...x.getImageData(0, 0, 1, 1).data].slice(0, 3); };
    const page = getComputedStyle(document.body).backgroundColor;
    const card = getComputedStyle(document.querySelector('#view-diffuse .stage-card')).backgroundColor;
    return [...document.querySelectorAll('#view-diffuse .canvas-body.heat .tok[data-i]:not(.m):not(.e):not(.g)')]
        .filter(t => t.textContent.trim()).map(t => { const s = getComputedStyle(t);
            const bg = paint([page, card, s.backgroundColor]);
            return { text: t.textContent, bg, ink: paint([page, card, s.backgroundColor, s.color]) }; });
}"""


def test_heat_cells_keep_aa_contrast_in_both_themes(screen):
    page = screen
    page.fill("#view-diffuse .prompt-input", PROMPT)
    dial(page, "diffuse", length=64, steps=32)
    run_now(page)
    page.click("#view-diffuse .canvas-body")
    page.keyboard.press("h")
    for theme in ("dark", "light"):
        if page.evaluate("() => document.documentElement.dataset.theme") != theme:
            page.click("#theme-btn")
        page.wait_for_timeout(700)  # the cells' colour transition
        cells = page.evaluate(PAINTED)
        assert len(cells) >= 10
        worst = min(cells, key=lambda c: contrast(c["bg"], c["ink"]))
        ratio = contrast(worst["bg"], worst["ink"])
        assert ratio >= 4.5, f"{theme}: {worst['text']!r} at {ratio:.2f}:1 ({worst})"
    page.click("#theme-btn")
    page.wait_for_timeout(700)
    shoot(page, "history-heat-dark")


def test_history_on_a_phone(page):
    page.set_viewport_size(PHONE)
    dial(page, "diffuse", length=16, steps=8)
    run_now(page)
    wait_history(page, 1)
    item = history_items(page).first
    item.scroll_into_view_if_needed()
    box = item.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    # The mask map wraps inside the screen, every cell of it.
    cells = page.locator("#view-diffuse .stage-minimap i").evaluate_all(
        "cs => cs.map(c => { const r = c.getBoundingClientRect(); return [r.left, r.right]; })"
    )
    assert len(cells) == 16 and all(0 <= a and b <= PHONE["width"] for a, b in cells)
    shoot(page, "history-phone", full_page=True)


# --- 7. Examples that work on the story model, and a word on chat-like prompts --------------------


def test_fill_a_word_gives_sensible_words_on_the_story_model(screen, studio):
    page = screen
    page.goto(studio.url + "/#/infill")
    page.click("#view-infill .examples .chip:has-text('Fill a word')")
    before = current_run(page, "infill")
    page.click("#view-infill .btn.primary")
    wait_done(page, "infill", before)
    text = page.locator("#view-infill .infill-text").inner_text()
    # Each gap holds one word that fits: a name, then a thing (no stray punctuation, no repeats).
    assert re.fullmatch(
        r"Once upon a time, there was a little girl named [A-Z][a-z]+\. She loved to play with her [a-z]+\.", text
    ), text


def test_a_request_to_a_story_model_says_it_will_be_continued(screen, studio):
    page = screen
    note = page.locator("#view-diffuse .continue-note")
    page.fill("#view-diffuse .prompt-input", PROMPT)
    assert not note.is_visible()
    page.fill("#view-diffuse .prompt-input", "Write a haiku about rain on a tin roof.")
    assert note.is_visible() and "not a chat model" in note.inner_text()
    page.fill("#view-diffuse .prompt-input", "Why is the sky blue?")
    assert note.is_visible()
    shoot(page, "history-continue-note")
    # A chat model answers: no note.
    page.select_option("#view-diffuse .model-picker select", "chat")
    assert not note.is_visible()


def test_an_infill_run_is_kept_too_with_its_result(screen, studio):
    page = screen
    page.goto(studio.url + "/#/infill")
    page.click("#view-infill .examples .chip:has-text('Fill a word')")
    before = current_run(page, "infill")
    page.click("#view-infill .btn.primary")
    wait_done(page, "infill", before)
    text = page.locator("#view-infill .infill-text").inner_text()
    wait_history(page, 1, "infill")
    page.reload()
    page.wait_for_selector("#server-state.ok")
    wait_history(page, 1, "infill")
    page.wait_for_selector("#view-infill .infill-result:not([hidden])")
    assert page.locator("#view-infill .infill-text").inner_text() == text
    kept = page.evaluate("async () => (await (await import('/js/history.js')).list('diffuse')).length")
    assert kept == 0, "each view keeps its own runs"
