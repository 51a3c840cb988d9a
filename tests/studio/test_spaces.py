"""Single spaces stay single: a gap after text that ends in a space (an infill template's
"den. {{40}}", a prompt typed with its trailing space) starts with a token that brings its own
space (" One"); the studio draws it once, live, in the final canvas, in a rewrite, in the
copied result and in the exports (issue 12/17: "double spaces in infill and rewrite text")."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from .conftest import shoot
from .test_studio import LENGTH, answer_cells, current_run, dial, select_span, wait_done

README_PREFIX = "Once upon a time, a fox lived in a den. "
README_TEMPLATE = README_PREFIX + "{{40}} And the fox was never lonely again."
DOUBLED = "den.  "

# The canvas's text as a reader sees it: the prompt, fixed text and tokens, each with the space
# drawn before it; placeholders, end tokens and the tail after an end token are left out.
VISIBLE = """root => {
    const c = document.querySelector(root);
    let out = '', space = '';
    for (const node of c.childNodes) {
        if (node.nodeType === 3) { space += node.data; continue; }
        const hidden = ['m', 'e', 't'].some(k => node.classList.contains(k));
        if (!hidden) out += space + node.textContent;
        space = '';
    }
    return out;
}"""


def record_text(page, root: str) -> None:
    """Record the canvas's text at every change, a placeholder written as a box ("den. ▢ ▢ One"):
    the spaces a reader sees between words, without the gaps between placeholder cells."""
    page.evaluate(
        """root => {
        window.__frames = [];
        const c = document.querySelector(root);
        new MutationObserver(() => {
            let text = '';
            for (const node of c.childNodes) {
                if (node.nodeType === 3) text += node.data;
                else text += node.classList.contains('m') ? '\u25a2' : node.textContent;
            }
            window.__frames.push({ cells: c.querySelectorAll('.tok[data-i]').length, text });
        }).observe(c, {subtree: true, childList: true, attributes: true, characterData: true});
    }""",
        root,
    )


# The <text> elements of an animated SVG laid back on their character grid (one string per line).
SVG_FONT, SVG_PAD = 15, 20


def svg_lines(path) -> list[str]:
    root = ET.parse(path).getroot()
    rows: dict[int, dict[int, str]] = {}
    for t in root.iter("{http://www.w3.org/2000/svg}text"):
        if t.get("text-anchor") == "end" or not t.get("x"):  # the footer
            continue
        col = round((float(t.get("x")) - SVG_PAD) / (SVG_FONT * 0.6))
        row = round((float(t.get("y")) - SVG_PAD - SVG_FONT) / (SVG_FONT * 1.7))
        rows.setdefault(row, {})[col] = t.text or ""
    lines = []
    for row in sorted(rows):
        line = ""
        for col in sorted(rows[row]):
            line = line.ljust(col) + rows[row][col]
        lines.append(line)
    return lines


def test_infill_draws_the_gaps_first_word_after_a_single_space(page, studio, context, tmp_path):
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(studio.url + "/#/infill")
    page.fill("#view-infill .infill-input", README_TEMPLATE)
    dial(page, "infill", length=None, steps=20)
    record_text(page, "#view-infill .canvas-body")
    mark = studio.recorder.mark()
    before = current_run(page, "infill")
    page.click("#view-infill .btn.primary")
    wait_done(page, "infill", before)
    [body] = studio.recorder.bodies("/api/diffuse", mark)
    assert body["template"] == README_TEMPLATE
    done = page.evaluate("() => window.unmaskStudio.views.infill.stage.run.done.text")
    assert done and not done.startswith(" "), "the server's text does not repeat the template's space"
    first = done.split()[0]
    # Live: every state the canvas went through.
    frames = [f for f in page.evaluate("() => window.__frames") if f["cells"]]
    assert frames and not [f["text"] for f in frames if DOUBLED in f["text"]][:1]
    assert all(f["text"].startswith(README_PREFIX) for f in frames)
    # The final canvas: the fixed text as written, then the gap's first word, one space between.
    shown = page.locator("#view-infill .canvas-body").inner_text()
    assert DOUBLED not in shown and shown.startswith(README_PREFIX + first), shown
    visible = page.evaluate(VISIBLE, "#view-infill .canvas-body")
    assert visible == README_PREFIX + done, "the canvas reads as the server's text"
    assert visible.endswith(" And the fox was never lonely again.")
    # The copied result is the server's text after the fixed text.
    page.evaluate("""() => { const write = navigator.clipboard.writeText.bind(navigator.clipboard);
        navigator.clipboard.writeText = text => { window.__copied = text; return write(text); }; }""")
    page.locator("#view-infill .infill-result .copy-btn").click()
    page.wait_for_selector("#view-infill .infill-result .copy-btn.copied")
    copied = page.evaluate("() => window.__copied")
    assert copied == README_PREFIX + done and DOUBLED not in copied
    assert page.locator("#view-infill .infill-text").inner_text() == copied
    # The HTML replay shows the fixed text and the gap as the canvas does.
    with page.expect_download() as info:
        page.click("#view-infill button:has-text('HTML replay')")
    html_path = tmp_path / "infill.html"
    info.value.save_as(html_path)
    replay = context.new_page()
    replay.goto(html_path.as_uri())
    steps = page.evaluate("() => window.unmaskStudio.views.infill.stage.run.lastStep")
    replay.wait_for_function(f"() => document.getElementById('step').value === '{steps}'", timeout=15_000)
    exported = replay.locator("#canvas").inner_text()
    assert DOUBLED not in exported and exported.startswith(README_PREFIX + first), exported
    assert page.evaluate(VISIBLE, "#view-infill .canvas-body") == visible
    replay.close()
    # The animated SVG too: the first word one column after "den.".
    with page.expect_download() as info:
        page.click("#view-infill button:has-text('Animated SVG')")
    svg_path = tmp_path / "infill.svg"
    info.value.save_as(svg_path)
    lines = svg_lines(svg_path)
    assert lines[0].startswith(README_PREFIX + first), lines
    assert not any(DOUBLED in line for line in lines), lines
    shoot(page, "infill-single-spaces")


def test_a_prompt_ending_in_a_space_and_its_rewrite_keep_single_spaces(page, studio):
    page.fill("#view-diffuse .prompt-input", README_PREFIX)
    dial(page, "diffuse", length=LENGTH, steps=LENGTH // 2)
    record_text(page, "#view-diffuse .canvas-body")
    before = current_run(page, "diffuse")
    page.click("#view-diffuse .run-btn")
    wait_done(page, "diffuse", before)
    frames = [f for f in page.evaluate("() => window.__frames") if f["cells"]]
    assert frames and all(DOUBLED not in f["text"] for f in frames)
    shown = page.locator("#view-diffuse .canvas-body").inner_text()
    assert shown.startswith(README_PREFIX) and not shown[len(README_PREFIX)].isspace(), shown
    first_piece = page.evaluate("() => window.unmaskStudio.views.diffuse.stage.run.pieces[0]")
    assert first_piece.startswith(" "), "the model's first token brings its own space"
    assert shown.startswith(README_PREFIX + first_piece.strip()), "and its word is drawn"
    assert page.evaluate("() => window.unmaskStudio.views.diffuse.answerText()") == page.evaluate(
        VISIBLE, "#view-diffuse .canvas-body"
    ).removeprefix(README_PREFIX)
    # Rewrite a span in the middle: the fixed text before it is the text as drawn.
    cells = answer_cells(page)
    length = next((i for i, c in enumerate(cells) if not c["answer"]), len(cells))
    assert length >= 6
    a, b = length // 3, length // 3 + max(1, length // 4)
    head = "".join(c["text"] for c in cells[:a])
    after = "".join(c["text"] for c in cells[b + 1 : length])
    assert head and not head[0].isspace()
    select_span(page, a, b)
    page.wait_for_selector("#view-diffuse .rewrite-btn:not([hidden])")
    record_text(page, "#view-diffuse .canvas-body")
    mark = studio.recorder.mark()
    before = current_run(page, "diffuse")
    page.keyboard.press("r")
    wait_done(page, "diffuse", before)
    [body] = studio.recorder.bodies("/api/diffuse", mark)
    n = b - a + 1
    assert body["prompt"] == README_PREFIX, "the prompt is sent as written"
    assert body["template"] == f"{head}{{{{{n}}}}}{after}"
    assert DOUBLED not in body["prompt"] + body["template"]
    frames = [f for f in page.evaluate("() => window.__frames") if f["cells"]]
    assert frames and all(DOUBLED not in f["text"] and f["text"].startswith(README_PREFIX + head) for f in frames)
    visible = page.evaluate(VISIBLE, "#view-diffuse .canvas-body")
    assert visible.startswith(README_PREFIX + head) and DOUBLED not in visible
    assert page.locator("#view-diffuse .canvas-body > .tok.g").first.inner_text() == head
    shoot(page, "rewrite-single-spaces")
