"""The canvas on recorded frames: end-of-text tokens and what follows them, and replaying a step."""

from __future__ import annotations


def test_end_of_text_shows_as_an_empty_faded_tail(page):
    cells = page.evaluate("""async () => {
        const { runFromFrames } = await import('/js/run.js');
        const { CanvasView } = await import('/js/canvas.js');
        const pieces = ['Once', ' upon', ' a', ' time', '.', '<|endoftext|>', ' stray', '<|endoftext|>'];
        const start = { id: 'r', model: 'm', prompt_tokens: 1, region: pieces.map(() => 9), mask_id: 9,
                        pieces: pieces.map(() => null), total_steps: 3 };
        // The end token and the tail first (as LLaDA does), then the words.
        const frames = [[5, 7], [0, 6], [1, 2, 3, 4]].map((positions, i) => ({ step: i + 1, total_steps: 3, block: 0,
            positions, tokens: positions.map(p => p), texts: positions.map(p => pieces[p]), elapsed: 0, nfe: i + 1, tokens_per_second: 1 }));
        const run = runFromFrames(start, frames, { text: 'Once upon a time.', region: pieces.map((_, i) => i) }, {});
        const el = document.createElement('div');
        document.body.append(el);
        const view = new CanvasView(el);
        view.bind(run, 'Prompt:');
        const at = k => { view.show(k, { animate: false }); return [...el.querySelectorAll('.tok[data-i]')].map(c => c.className.replace('tok', '').trim()); };
        return { step1: at(1), step3: at(3), text: run.text(), masked: run.maskedFraction(1) };
    }""")
    assert cells["step1"] == ["m k", "m k", "m k", "m k", "m k", "e", "m k", "e"]
    assert cells["step3"] == ["", "", "", "", "", "e", "t", "e"]
    assert cells["text"] == "Once upon a time."
    assert cells["masked"] == 6 / 8


def test_a_revoked_draft_leaves_the_canvas_and_the_timeline(page):
    seen = page.evaluate("""async () => {
        const { runFromFrames } = await import('/js/run.js');
        const start = { id: 'r', model: 'm', prompt_tokens: 1, region: [9, 9, 9, 9], mask_id: 9,
                        pieces: [null, null, null, null], total_steps: 3 };
        const frame = (step, positions, texts, revoked = []) => ({ step, total_steps: 3, block: 0, positions,
            tokens: positions.map((p, j) => 20 + step * 4 + j), texts, revoked, elapsed: 0, nfe: step, tokens_per_second: 1 });
        const run = runFromFrames(start, [frame(1, [0, 1], ['Once', ' down']), frame(2, [1, 2], [' upon', ' a'], [1])]);
        const live = run.text(2, '_');
        run.apply(frame(3, [3], [' time']));
        return { live, text: run.text(), step1: run.text(1, '_'), stepOf: run.stepOf, masked: run.maskedFraction(1) };
    }""")
    assert seen["live"] == "Once upon a_"
    assert seen["text"] == "Once upon a time"
    assert seen["step1"] == "Once___", "the replay shows the draft that stayed, not the one taken back"
    assert seen["stepOf"] == [1, 2, 2, 3] and seen["masked"] == 3 / 4
