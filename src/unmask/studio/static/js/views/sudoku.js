// Sudoku: the grid model fills the 81 cells, most confident first; switch to random order to see
// why the order matters (early guesses that contradict each other cannot be taken back).

import { heatColor } from '../canvas.js';
import { LiveRun, isAbort } from '../live.js';
import { ModelPicker } from '../models.js';
import { errorBox } from '../stage.js';
import { conflicts, isSolved, makePuzzle } from '../sudoku.js';
import { Timeline } from '../timeline.js';
import { atomLoader, formatSeconds, h, icon, segmented, stat, toast } from '../ui.js';

const PER_STEP = [1, 3, 9];

export class SudokuView {
  constructor(root, app) {
    this.app = app;
    this.picker = new ModelPicker({ kinds: ['grid'], storageKey: 'grid', onChange: m => this.modelChanged(m) });
    this.order = 'confidence';
    this.perStep = 3;
    this.givens = 34;
    this.seed = Number(localStorage.getItem('unmask.sudoku.seed') || 7);
    this.results = {};
    this.cells = Array.from({ length: 81 }, (_, i) => h('div.cell', {
      role: 'img', dataset: { i: String(i) },
      class: `cell${i % 9 === 2 || i % 9 === 5 ? ' box-r' : ''}${Math.floor(i / 9) === 2 || Math.floor(i / 9) === 5 ? ' box-b' : ''}`,
    }));
    this.grid = h('div.sudoku-grid', { role: 'group', 'aria-label': 'Sudoku board' }, this.cells);
    this.overlay = h('div.sudoku-overlay', { hidden: true });
    this.orderSeg = segmented([
      { value: 'confidence', label: 'Confidence order', title: 'Fill the cells the model is surest of first' },
      { value: 'random', label: 'Random order', title: 'Fill cells in a random order' },
    ], this.order, v => { this.order = v; }, 'Order');
    this.perStepSeg = segmented(PER_STEP.map(n => ({ value: String(n), label: `${n}` })), String(this.perStep), v => { this.perStep = Number(v); }, 'Cells per step');
    this.givensInput = h('input', { type: 'range', min: '22', max: '50', step: '1', value: String(this.givens), 'aria-label': 'Given cells' });
    this.givensOut = h('output.num', {}, String(this.givens));
    this.givensInput.addEventListener('input', () => { this.givens = Number(this.givensInput.value); this.givensOut.textContent = String(this.givens); this.newPuzzle(false); });
    this.runBtn = h('button.btn.primary', { type: 'button', onclick: () => this.run() }, icon('sparkle'), 'Solve', h('span.kbd-hint', {}, 'Ctrl ↵'));
    this.stopBtn = h('button.btn', { type: 'button', hidden: true, onclick: () => this.live?.cancel() }, icon('stop'), 'Stop');
    this.statusEl = h('div.sudoku-status', { role: 'status', 'aria-live': 'polite' });
    this.resultsEl = h('div.sudoku-results');
    this.stats = { filled: stat('cells filled'), steps: stat('steps'), time: stat('time') };
    this.timelineEl = h('div.stage-timeline');
    this.timeline = new Timeline(this.timelineEl, { onSeek: k => this.render(k) });
    this.emptyNote = h('div.empty.sudoku-missing', { hidden: true },
      h('h3', {}, 'No Sudoku model here'),
      h('p', {}, 'This view needs the embedded `sudoku` grid model. Start the server with it, e.g. ', h('code', {}, 'unmask serve'), ' (it serves the embedded models by default).'));
    root.append(h('div.sudoku-layout', {},
      h('div.sudoku-board', {}, h('div.grid-wrap', {}, this.grid, this.overlay), h('div.stats', {}, Object.values(this.stats).map(s => s.el)), this.timelineEl),
      h('aside.card.sudoku-side', {},
        h('div.prompt-top', {}, h('h1.view-title', {}, 'Sudoku'), this.picker.el),
        h('p.muted', {}, 'The grid model sees all 81 cells at once. Each step it commits the cells it is surest of — the heat colour shows when each was decided. In random order, early guesses can contradict each other and can never be taken back.'),
        h('div.control', {}, h('span.label', {}, 'Order'), this.orderSeg.el),
        h('div.control', {}, h('span.label', {}, 'Cells per step'), this.perStepSeg.el),
        h('div.control', {}, h('div.dial-head', {}, h('span.label', {}, 'Given cells'), this.givensOut), this.givensInput),
        h('div.row-actions', {}, h('button.btn', { type: 'button', onclick: () => this.newPuzzle(true) }, 'New puzzle'), h('div.spacer'), this.stopBtn, this.runBtn),
        this.statusEl, this.resultsEl, this.emptyNote)));
    this.newPuzzle(false);
  }

  setModels(models) { this.picker.setModels(models); }

  modelChanged(info) {
    this.runBtn.disabled = !info;
    this.emptyNote.hidden = !!info;
  }

  newPuzzle(reseed) {
    if (reseed) {
      this.seed = Math.floor(Math.random() * 1e6);
      try { localStorage.setItem('unmask.sudoku.seed', String(this.seed)); } catch { /* */ }
    }
    this.live?.cancel();
    const { puzzle } = makePuzzle(this.seed, this.givens);
    this.puzzle = puzzle;
    this.run_ = null;
    this.timeline.setRun(null);
    this.timelineEl.hidden = true;
    this.results = {};
    this.resultsEl.replaceChildren();
    this.statusEl.textContent = `${81 - this.givens} blanks to fill.`;
    for (const s of Object.values(this.stats)) s.set('–');
    this.cells.forEach((c, i) => {
      const d = puzzle[i];
      c.className = c.className.replace(/\s(given|filled|masked|fresh|bad)\b/g, '');
      c.classList.add(d === '0' ? 'masked' : 'given');
      c.textContent = d === '0' ? '' : d;
      c.style.removeProperty('--heat');
      c.setAttribute('aria-label', `row ${Math.floor(i / 9) + 1}, column ${(i % 9) + 1}: ${d === '0' ? 'blank' : d}`);
    });
  }

  run() {
    const info = this.picker.info;
    if (!info) { toast('No Sudoku model', 'This server serves no grid model.', 'error'); return; }
    this.live?.cancel();
    const blanks = [...this.puzzle].filter(c => c === '0').length;
    const steps = Math.max(1, Math.ceil(blanks / this.perStep));
    const algorithm = this.order === 'random' ? 'random' : (info.defaults?.algorithm && info.defaults.algorithm !== 'random' ? info.defaults.algorithm : 'low_confidence');
    const body = { model: info.name, puzzle: this.puzzle, steps, algorithm, temperature: 0 };
    const order = this.order;
    this.statusEl.textContent = 'Solving…';
    this.grid.parentElement.querySelector('.error-box')?.remove();
    this.runBtn.hidden = true;
    this.stopBtn.hidden = false;
    let loader = null;
    this.live = new LiveRun(body, { kind: 'grid', settings: body }, {
      waiting: ms => {
        if (!loader) { loader = atomLoader(info.loaded ? 'Waiting…' : `Loading ${info.name}…`); this.overlay.replaceChildren(loader.el); this.overlay.hidden = false; }
        loader.set(null, `${(ms / 1000).toFixed(1)} s`);
      },
      start: run => {
        this.overlay.hidden = true;
        this.run_ = run;
        this.timelineEl.hidden = false;
        this.timeline.setRun(run, { live: true });
        this.app.modelLoaded(info.name);
        this.render(0);
      },
      frame: (run, k) => {
        this.timeline.advance(k);
        if (this.timeline.following) this.render(k);
        const f = run.steps[k - 1];
        if (f) this.stats.time.set(formatSeconds(f.elapsed));
      },
      done: run => {
        this.timeline.endLive();
        this.render(this.timeline.current);
        this.finish(run, order);
      },
      error: (err, run) => {
        this.overlay.hidden = true;
        if (run) this.timeline.endLive();
        this.runBtn.hidden = false;
        this.stopBtn.hidden = true;
        if (isAbort(err)) { this.statusEl.textContent = 'Stopped.'; return; }
        this.statusEl.textContent = '';
        this.grid.parentElement.append(errorBox(err));
      },
    });
    this.live.start();
  }

  digits(run, k) {
    return run.pieces.map((p, i) => (run.stepOf[i] <= k && p && /^[1-9]$/.test(p.trim()) ? p.trim() : '0')).join('');
  }

  render(k) {
    const run = this.run_;
    if (!run) return;
    const total = Math.max(1, run.totalSteps);
    const digits = this.digits(run, k);
    const bad = run.finished && k >= run.lastStep ? conflicts(digits) : new Set();
    let filled = 0;
    this.cells.forEach((c, i) => {
      const given = run.given[i];
      const s = run.stepOf[i];
      const d = digits[i];
      const shown = given || s <= k;
      if (shown && d !== '0') filled++;
      c.classList.toggle('given', given);
      c.classList.toggle('masked', !shown);
      c.classList.toggle('filled', shown && !given);
      c.classList.toggle('fresh', !given && s === k && k > 0);
      c.classList.toggle('bad', bad.has(i));
      c.textContent = shown && d !== '0' ? d : '';
      if (shown && !given) c.style.setProperty('--heat', heatColor((s - 1) / Math.max(1, total - 1)));
      else c.style.removeProperty('--heat');
      c.setAttribute('aria-label', `row ${Math.floor(i / 9) + 1}, column ${(i % 9) + 1}: ${shown && d !== '0' ? d : 'blank'}${given ? ' (given)' : shown ? `, step ${s}` : ''}`);
    });
    this.stats.filled.set(`${filled} / 81`);
    this.stats.steps.set(`${k} / ${run.totalSteps}`);
  }

  finish(run, order) {
    this.runBtn.hidden = false;
    this.stopBtn.hidden = true;
    const digits = this.digits(run, run.lastStep);
    const bad = conflicts(digits);
    const keeps = [...this.puzzle].every((c, i) => c === '0' || c === digits[i]);
    const solved = isSolved(digits) && keeps;
    this.stats.time.set(formatSeconds(run.done.timings?.elapsed));
    this.grid.classList.toggle('solved', solved);
    this.statusEl.replaceChildren(solved
      ? h('span.ok', {}, icon('check'), ` Solved: every row, column and box holds 1–9 (${run.lastStep} steps).`)
      : h('span.warn', {}, `Filled all ${[...digits].filter(c => c !== '0').length} cells; ${bad.size} break a rule.`));
    this.results[order] = { solved, bad: bad.size, steps: run.lastStep };
    this.resultsEl.replaceChildren(...['confidence', 'random'].filter(o => this.results[o]).map(o => h('div.result-row', {},
      h('span', {}, o === 'confidence' ? 'Confidence order' : 'Random order'),
      h('b', { class: this.results[o].solved ? 'ok' : 'warn' }, this.results[o].solved ? 'valid' : `${this.results[o].bad} cells in conflict`))));
  }

  show() {}
  primary() { this.run(); }
  escape() { this.live?.cancel(); }
  focusPrompt() {}
  key(e) {
    if (!this.run_) return false;
    const t = this.timeline;
    if (e.key === 'ArrowLeft') t.stepBy(e.shiftKey ? -10 : -1);
    else if (e.key === 'ArrowRight') t.stepBy(e.shiftKey ? 10 : 1);
    else if (e.key === 'Home') t.first();
    else if (e.key === 'End') t.last();
    else if (e.key === ' ') t.toggle();
    else return false;
    return true;
  }
}
