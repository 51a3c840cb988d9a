"""Code previews: the helium atom animates in the sandbox, and a code block diffusing in an answer
gets its Preview only once it has settled (and keeps the same frame afterwards: no flicker)."""

from __future__ import annotations

import time

from .conftest import shoot


def frame_pixels(frame) -> str:
    """A fingerprint of the preview's canvas (readable inside its own opaque origin)."""
    return frame.evaluate("""() => { const c = document.querySelector('canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let h = 0; for (let i = 0; i < d.length; i += 7) h = (h * 31 + d[i]) >>> 0; return String(h); }""")


def preview_frame(page):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for f in page.frames:
            if "/preview/" in f.url and not f.url.endswith("/tab"):
                try:
                    # The example sizes its canvas from script after load: a 0-wide canvas is not ready.
                    ready = "() => { const c = document.querySelector('canvas'); return !!c && c.width > 0 && c.height > 0 && document.readyState === 'complete'; }"
                    if f.evaluate(ready):
                        return f
                except Exception:
                    pass
        page.wait_for_timeout(100)
    raise AssertionError("no preview frame loaded")


def test_helium_atom_animates_in_the_sandbox(page, studio, context):
    page.goto(studio.url + "/#/preview")
    page.click("#view-preview .chip[data-example='helium']")
    iframe = page.locator("#view-preview .preview-frame")
    iframe.wait_for()
    assert iframe.get_attribute("sandbox") == "allow-scripts"  # never with allow-same-origin
    assert iframe.get_attribute("src").startswith("/preview/")
    frame = preview_frame(page)
    assert frame.evaluate("() => origin") == "null"  # an opaque origin
    first, shot1 = frame_pixels(frame), iframe.screenshot()
    page.wait_for_timeout(300)
    second, shot2 = frame_pixels(frame), iframe.screenshot()
    assert first != second and shot1 != shot2, "the electrons move"
    shoot(page, "preview-helium")
    # "Open" shows the same document in a tab of its own, still sandboxed, still animated.
    link = page.locator("#view-preview .open-tab")
    assert link.get_attribute("target") == "_blank" and "noopener" in link.get_attribute("rel")
    tab = context.new_page()
    tab.goto(studio.url + link.get_attribute("href"))
    inner = preview_frame(tab)
    a = frame_pixels(inner)
    tab.wait_for_timeout(300)
    assert frame_pixels(inner) != a
    assert inner.evaluate("() => origin") == "null"
    tab.close()
    # The code tab shows the highlighted source.
    page.click("#view-preview .code-tabs button:has-text('Code')")
    assert page.locator("#view-preview pre .hl-tag").count() > 10


def test_preview_waits_until_the_code_block_has_settled(page, studio):
    """A synthetic run (recorded frames, not the model) whose answer holds an HTML block: the
    Preview tab and frame appear at the step that commits the block's last token, not before,
    and later steps elsewhere in the answer keep that same frame. (A closing fence is known to
    close only once the token after it is known: "```" followed by "js" would open a block.)"""
    result = page.evaluate("""async () => {
        const { runFromFrames } = await import('/js/run.js');
        const { AnswerView, answerText } = await import('/js/answer.js');
        const pieces = ['Here', ' it', ' is', ':\\n\\n', '```', 'html', '\\n', '<p', ' id="x"', '>hi', '</p>', '\\n', '```', '\\n\\nDone', '.'];
        const codeAt = [4, 5, 6, 7, 8, 9, 10, 11, 12];
        // Commit order: words around the block first, then the code, its last token at step 10, then the rest.
        const order = [[0, 1], [2, 3], [4, 12], [13], [5], [6, 11], [7], [8], [9], [10], [14]];
        const start = { id: 'synthetic', model: 'synthetic', prompt_tokens: 0, region: pieces.map(() => 1), mask_id: 1,
                        pieces: pieces.map(() => null), total_steps: order.length };
        const steps = order.map((positions, i) => ({ step: i + 1, total_steps: order.length, block: 0, positions,
            tokens: positions.map(p => 100 + p), texts: positions.map(p => pieces[p]), elapsed: i * 0.01, nfe: i + 1, tokens_per_second: 1 }));
        const run = runFromFrames(start, steps, null, { kind: 'chat' });
        const box = document.createElement('div');
        document.querySelector('#view-chat').append(box);
        const view = new AnswerView(box);
        const seen = [];
        let frame = null;
        for (let k = 0; k <= order.length; k++) {
            view.update(answerText(run, k));
            if (k === 10) {
                for (let i = 0; i < 100 && !box.querySelector('iframe'); i++) await new Promise(r => setTimeout(r, 50));
                frame = box.querySelector('iframe');
                if (frame) frame.dataset.marker = 'first';
            }
            const tabs = box.querySelector('.code-tabs');
            seen.push({ k, frames: box.querySelectorAll('iframe').length, tab: !!tabs && !tabs.hidden,
                        masked: box.querySelectorAll('.ph').length });
        }
        const last = box.querySelector('iframe');
        return { seen, same: !!last && last === frame && last.dataset.marker === 'first' && last.isConnected,
                 sandbox: last && last.getAttribute('sandbox'), text: box.innerText };
    }""")
    seen = result["seen"]
    for s in seen[:10]:
        assert s["frames"] == 0 and not s["tab"], f"no preview while the block diffuses: {s}"
    assert seen[4]["masked"] == 8, "every masked token shows as a placeholder (7 in the code, 1 after)"
    for s in seen[10:]:
        assert s["frames"] == 1 and s["tab"], s
    assert result["same"], "later steps keep the same preview frame (no reload, no flicker)"
    assert result["sandbox"] == "allow-scripts"
    assert "Done." in result["text"]


def test_the_helium_atom_draws_nothing_in_a_frame_of_no_size(page, studio):
    """A preview frame shrunk to nothing (a closing tab, a hidden pane) once made the example ask
    for a gradient of radius NaN (0 / 0), an uncaught error; the page fixture fails on any."""
    page.goto(studio.url + "/#/preview")
    page.click("#view-preview .chip[data-example='helium']")
    frame = preview_frame(page)
    page.locator("#view-preview .preview-frame").evaluate("f => { f.style.width = '0'; f.style.height = '0'; }")
    frame.wait_for_function("() => document.querySelector('canvas').clientWidth === 0")
    frame.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    page.wait_for_timeout(200)
