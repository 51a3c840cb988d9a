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


def test_a_gap_after_text_ending_in_a_space_does_not_repeat_it(page):
    """The engine's rule (canvas.leads): the gap's first tokens lose as many leading spaces as the
    text before the gap ends with; fixed text and later tokens are drawn as the server sent them."""
    seen = page.evaluate("""async () => {
        const { runFromFrames } = await import('/js/run.js');
        const { CanvasView } = await import('/js/canvas.js');
        const M = 9;
        const start = (given, meta) => runFromFrames({ id: 'r', model: 'm', prompt_tokens: 1, mask_id: M, end_ids: [2],
            region: given.map(g => (g == null ? M : 50)), pieces: given.slice(), total_steps: 3 }, [], null, meta);
        const frame = (step, positions, texts) => ({ step, total_steps: 3, block: 0, positions,
            tokens: positions.map((p, j) => (texts[j] === '<end>' ? 2 : 30 + p)), texts, revoked: [], elapsed: 0, nfe: step, tokens_per_second: 1 });
        const shown = (run, k) => {
            const el = document.createElement('div');
            document.body.append(el);
            const view = new CanvasView(el);
            view.bind(run, run.meta.prefix || '', run.meta.fixed || '');
            view.show(k, { animate: false });
            const text = [...el.childNodes].map(n => (n.nodeType === 3 ? n.data : n.classList.contains('m') ? '_' : n.textContent)).join('');
            el.remove();
            return text;
        };
        // An infill: 'a den. {{3}} The end.{{2}}' (the fixed text's trailing space is never encoded before a gap).
        const infill = start([null, null, null, ' The', ' end.', null, null], { fixed: 'a den. ' });
        infill.apply(frame(1, [1, 6], [' day', ' again']));
        const live = shown(infill, 1);
        infill.apply(frame(2, [0, 5], [' One', ' More']));
        infill.apply(frame(3, [2], [',']));
        // A prompt typed with two spaces; the model's first token is a lone space.
        const lone = start([null, null, null], { prefix: 'Once upon a time,  ' });
        lone.apply(frame(1, [0, 1, 2], [' ', ' there', ' was']));
        // An end token first: nothing to strip, and nothing after it is touched.
        const empty = start([null, null], { fixed: 'den. ' });
        empty.apply(frame(1, [0, 1], ['<end>', ' tail']));
        // No space before the gap: the token keeps its own.
        const plain = start([null, null], { prefix: 'Once upon a time' });
        plain.apply(frame(1, [0, 1], [' there', ' was']));
        return {
            live, infill: shown(infill, 3), infillText: infill.text(), pieces: infill.pieces[0], json: infill.toJSON(),
            lone: shown(lone, 1), loneText: lone.text(), empty: empty.drawn, plain: shown(plain, 1),
        };
    }""")
    assert seen["live"] == "a den. _ day _ The end. _ again", "a placeholder after 'den. ' takes no space either"
    assert seen["infill"] == "a den. One day, The end. More again"
    assert seen["infillText"] == "One day, The end. More again" and seen["pieces"] == " One", "pieces stay the server's"
    assert seen["json"]["fixed"] == "a den. " and seen["json"]["pieces"][0] == "One"
    assert seen["lone"] == "Once upon a time,  there was" and seen["loneText"] == "there was"
    assert seen["empty"] == ["<end>", " tail"]
    assert seen["plain"] == "Once upon a time there was"
