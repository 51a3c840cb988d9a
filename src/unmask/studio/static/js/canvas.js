// The diffusion canvas: one cell per region token. Masked cells are placeholders; a token
// committed at the shown step flashes ("fresh") and settles into plain text within a second; in
// the heat view every token is coloured by the step it was decided at.

// Early -> late: violet, magenta, coral, amber, yellow (readable on both themes at 42% mix).
const HEAT_STOPS = [[59, 31, 143], [123, 47, 190], [193, 63, 143], [236, 107, 86], [249, 169, 59], [244, 227, 76]];

export function heatColor(t) {
  const x = Math.max(0, Math.min(1, t)) * (HEAT_STOPS.length - 1);
  const i = Math.min(HEAT_STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [HEAT_STOPS[i], HEAT_STOPS[i + 1]];
  const c = a.map((v, j) => Math.round(v + (b[j] - v) * f));
  return `rgb(${c[0]} ${c[1]} ${c[2]})`;
}

export function splitPiece(piece) {
  const m = /^(\s*)([\s\S]*)$/.exec(piece ?? '');
  return [m[1], m[2]];
}

export class CanvasView {
  /** el: the container; options.compact: small (filmstrip, compare); options.mono: monospace. */
  constructor(el, { compact = false, mono = false, label = 'Diffusion canvas' } = {}) {
    this.el = el;
    el.classList.add('canvas');
    el.classList.toggle('compact', compact);
    el.classList.toggle('mono', mono);
    if (!compact) {
      el.setAttribute('role', 'log');
      el.setAttribute('aria-label', label);
    }
    this.run = null;
    this.heat = false;
    this.step = 0;
    this.highlight = null;
    this.replay = false; // true once a run is over: placeholders then take their tokens' widths
  }

  /** Build the cells for a run. prefix: the prompt, shown muted before the region; fixed: text of
   *  the answer that is given, not generated (an infill template's or a rewrite's start). */
  bind(run, prefix = '', fixed = '') {
    this.run = run;
    this.replay = run.finished;
    this.el.replaceChildren();
    this.prefixEl = document.createElement('span');
    this.prefixEl.className = 'prefix';
    this.prefixEl.textContent = prefix;
    this.el.append(this.prefixEl);
    if (fixed) {
      const given = document.createElement('span');
      given.className = 'tok g';
      given.textContent = fixed;
      this.el.append(given);
    }
    this.cells = [];
    this.spaces = [];
    this.keys = new Array(run.n).fill('');
    const frag = document.createDocumentFragment();
    for (let i = 0; i < run.n; i++) {
      const ws = document.createTextNode('');
      const span = document.createElement('span');
      span.dataset.i = String(i);
      span.style.setProperty('--i', String(i % 29));
      frag.append(ws, span);
      this.spaces.push(ws);
      this.cells.push(span);
    }
    this.el.append(frag);
    this.show(0);
  }

  setHeat(on) {
    this.heat = on;
    this.el.classList.toggle('heat', on);
    if (this.run) this.show(this.step, { animate: false });
  }

  /** Mark region positions [a, b] (inclusive) as the span being rewritten. */
  setHighlight(range) {
    this.highlight = range;
    if (this.run) this.show(this.step, { animate: false });
  }

  /** Render the canvas as it was after step k (0 = before the first model pass). */
  show(k, { animate = true } = {}) {
    const run = this.run;
    if (!run) return;
    // Stepping forward (live, or a replay), a token committed a step or two ago keeps its class
    // until its flash has faded; any other move redraws every highlight from scratch.
    const forward = animate && k > this.step && k - this.step <= 4;
    this.step = k;
    const states = run.states(k);
    const total = Math.max(1, run.totalSteps);
    const known = this.replay && run.finished;
    // A uniform-state run (run.uniform): no flash; the cells the shown pass changed are marked
    // (.ch), and until its canvas is final those it did not accept (.u) are noise that will change.
    const marks = run.passMarks(k);
    for (let i = 0; i < run.n; i++) {
      const state = states[i];
      const s = run.stepAt(i, k);
      const settled = state !== 'given' && state !== 'mask';
      const newlyFresh = !marks && animate && settled && s === k && k > 0;
      const fresh = newlyFresh || (!marks && forward && settled && this.keys[i].includes('f'));
      const rw = this.highlight && i >= this.highlight[0] && i <= this.highlight[1];
      const changed = !!marks && settled && marks.changed.has(i);
      const noise = !!marks && settled && i >= marks.settled && !marks.accepted.has(i);
      const written = marks ? `${s}${changed ? 'c' : ''}${noise ? 'u' : ''}` : '';
      const key = `${state}${fresh ? 'f' : ''}${this.heat ? 'h' : ''}${rw ? 'r' : ''}${known ? 'k' : ''}${written}`;
      if (key === this.keys[i] && !newlyFresh) continue;
      this.keys[i] = key;
      const span = this.cells[i];
      let cls = run.blockStart(i) ? 'tok bb' : 'tok';
      let ghost = ''; // a replayed placeholder's width: its token's text, drawn by CSS (data-w), never in the DOM
      // The piece as drawn: a gap's first token does not repeat the spaces before the gap (run.redraw).
      let [ws, text] = splitPiece(state === 'mask' ? run.drawn[i] : run.drawnAt(i, k));
      if (state === 'given') cls += ' g';
      else if (state === 'mask') {
        cls += ' m';
        // Replaying a finished run, a placeholder takes its token's width, so nothing reflows as
        // tokens resolve; one that will be an end token stays a plain cell (it shows no text).
        // The width comes from a pseudo-element: copying the text or reading it aloud gets a
        // placeholder, not the text it will become.
        if (known && run.drawn[i] != null && text && !run.isEnd(i)) { cls += ' k'; ghost = text; }
        else ws = i > 0 && !run.bare[i] ? ' ' : '';
        text = '';
      } else if (state === 'end') { cls += ' e'; text = ''; ws = ''; }
      else if (state === 'tail') cls += ' t';
      if (fresh) cls += ' f';
      const edited = settled && !marks && run.editedAt[i] === s;
      if (edited) cls += ' ed';
      if (changed) cls += ' ch';
      if (noise) cls += ' u';
      if (rw) cls += ' rw';
      if (newlyFresh && span.classList.contains('f')) {
        span.className = '';
        void span.offsetWidth; // restart the flash
      }
      span.className = cls;
      if (this.heat && settled) span.style.setProperty('--heat', heatColor((s - 1) / Math.max(1, total - 1)));
      else span.style.removeProperty('--heat');
      if (span.textContent !== text) span.textContent = text;
      if ((span.dataset.w ?? '') !== ghost) { if (ghost) span.dataset.w = ghost; else delete span.dataset.w; }
      if (this.spaces[i].data !== ws) this.spaces[i].data = ws;
      const note = `${edited ? ' · edited' : ''}${changed ? ' · changed' : ''}${noise ? ' · not accepted yet' : ''}`;
      const edge = cls.includes(' bb') ? ` · block ${Math.floor((i + run.blockShift) / run.blockLength) + 1} starts here` : '';
      span.title = state === 'mask' ? `masked${edge}` : state === 'given' ? 'fixed text' : `step ${s}${note}${state === 'end' ? ' · end of text' : state === 'tail' ? ' · after the end: not in the answer' : ''}${edge}`;
    }
  }

  /** The region positions [a, b] covered by the current text selection inside this canvas, or null. */
  selectedRange() {
    const sel = document.getSelection();
    if (!sel || sel.isCollapsed || !this.run) return null;
    const range = sel.getRangeAt(0);
    if (!this.el.contains(range.commonAncestorContainer)) return null;
    const picked = [];
    for (const cell of this.cells) {
      const t = cell.firstChild;
      if (!t || !t.length || !range.intersectsNode(cell)) continue;
      const atStart = range.startContainer === t, atEnd = range.endContainer === t;
      // At least one character of the token must be inside, not just a boundary touching it.
      const from = atStart ? range.startOffset : 0;
      const to = atEnd ? range.endOffset : t.length;
      const startIn = atStart || range.comparePoint(t, 0) === 0;
      const endIn = atEnd || range.comparePoint(t, t.length) === 0;
      if (to > from && startIn && endIn) picked.push(Number(cell.dataset.i));
    }
    if (!picked.length) return null;
    return [Math.min(...picked), Math.max(...picked)];
  }
}
