// Compare: the same prompt at 2-4 step counts, all running at once (the server batches them),
// so the speed / quality trade-off is seen side by side.

import { CanvasView } from '../canvas.js';
import { STORY_PROMPTS } from '../examples.js';
import { LiveRun, isAbort } from '../live.js';
import { kindOf, ModelPicker } from '../models.js';
import { errorBox, passes } from '../stage.js';
import { atomLoader, formatRate, formatSeconds, h, icon, segmented, toast } from '../ui.js';

const STEP_CHOICES = [4, 8, 16, 32, 64, 128, 256];
const LENGTHS = [32, 64, 128, 256];
const MAX_COLUMNS = 4;

function perStep(length, steps) {
  const n = length / steps;
  return `${Number.isInteger(n) ? n : n.toFixed(1)} token${n === 1 ? '' : 's'} per step`;
}

export class CompareView {
  constructor(root, app) {
    this.app = app;
    this.picker = new ModelPicker({ kinds: ['text', 'chat'], storageKey: 'text', onChange: m => { this.runBtn.disabled = !m; } });
    const saved = JSON.parse(localStorage.getItem('unmask.compare') || 'null') || { length: 64, steps: [8, 64] };
    this.length = saved.length;
    this.chosen = saved.steps;
    this.prompt = h('textarea.prompt-input', { rows: 2, 'aria-label': 'Prompt', placeholder: 'Start a story…' });
    this.prompt.value = STORY_PROMPTS[0];
    this.runBtn = h('button.btn.primary', { type: 'button', onclick: () => this.run() }, icon('sparkle'), 'Compare', h('span.kbd-hint', {}, 'Ctrl ↵'));
    this.stopBtn = h('button.btn', { type: 'button', hidden: true, onclick: () => this.stop() }, icon('stop'), 'Stop');
    this.lengthSeg = segmented(LENGTHS.map(n => ({ value: String(n), label: String(n) })), String(this.length), v => { this.length = Number(v); this.fit(); this.save(); }, 'Length');
    this.stepChips = h('div.chips.step-chips', { role: 'group', 'aria-label': 'Step counts (2 to 4)' });
    this.columns = h('div.compare-grid');
    this.summary = h('div.compare-summary', { hidden: true });
    root.append(
      h('div.card.prompt-card', {},
        h('div.prompt-top', {}, h('h1.view-title', {}, 'Compare'), h('span.view-sub', {}, 'One prompt, several step counts, diffused at the same time.'), this.picker.el),
        this.prompt,
        h('div.compare-controls', {},
          h('div.control', {}, h('span.label', {}, 'Step counts'), this.stepChips),
          h('div.control', {}, h('span.label', {}, 'Length'), this.lengthSeg.el),
          h('div.spacer'), this.stopBtn, this.runBtn)),
      this.summary,
      this.columns);
    this.fit();
    this.columns.append(h('div.empty.compare-empty', {},
      h('h3', {}, 'Fewer steps, more tokens per step'),
      h('p', {}, 'Each step is one pass of the model. Fewer steps are faster but commit more tokens at once, before they can see each other; more steps are slower and usually read better. Pick two to four step counts and press Compare: they are sent together, with the same seed.')));
  }

  fit() {
    this.chosen = this.chosen.filter(s => s <= this.length);
    if (this.chosen.length < 2) this.chosen = [Math.max(4, this.length / 8), this.length];
    this.chosen = [...new Set(this.chosen)].sort((a, b) => a - b).slice(0, MAX_COLUMNS);
    this.stepChips.replaceChildren(...STEP_CHOICES.filter(s => s <= this.length).map(s => h('button.chip', {
      type: 'button', 'aria-pressed': String(this.chosen.includes(s)), dataset: { steps: String(s) },
      title: `${s} steps: ${perStep(this.length, s)}`,
      onclick: () => this.toggle(s),
    }, `${s} steps`)));
  }

  toggle(s) {
    if (this.chosen.includes(s)) {
      if (this.chosen.length <= 2) { toast('Keep at least two', 'A comparison needs two step counts or more.'); return; }
      this.chosen = this.chosen.filter(x => x !== s);
    } else {
      if (this.chosen.length >= MAX_COLUMNS) {
        toast('Four columns at most', `Deselect a step count first, then pick ${s} steps.`);
        return;
      }
      this.chosen.push(s);
    }
    this.chosen.sort((a, b) => a - b);
    this.fit();
    this.save();
  }

  save() {
    try { localStorage.setItem('unmask.compare', JSON.stringify({ length: this.length, steps: this.chosen })); } catch { /* */ }
  }

  setModels(models) { this.picker.setModels(models); }

  stop() { for (const c of this.running || []) c.live.cancel(); }

  run() {
    const info = this.picker.info;
    if (!info) return;
    this.stop();
    const chat = kindOf(info) === 'chat';
    const text = this.prompt.value;
    const seed = Math.floor(Math.random() * 1e9); // one seed for all columns: only the steps differ
    this.columns.replaceChildren();
    this.columns.dataset.count = String(this.chosen.length);
    this.summary.hidden = true;
    this.runBtn.hidden = true;
    this.stopBtn.hidden = false;
    this.running = this.chosen.map(steps => this.column(info, chat, text, steps, seed));
    Promise.allSettled(this.running.map(c => c.promise)).then(() => {
      this.runBtn.hidden = false;
      this.stopBtn.hidden = true;
      this.showSummary();
    });
  }

  column(info, chat, text, steps, seed) {
    const body = { model: info.name, max_new_tokens: this.length, steps, seed };
    if (chat) body.messages = [{ role: 'user', content: text }];
    else body.prompt = text;
    const canvasEl = h('div');
    const canvas = new CanvasView(canvasEl, { label: `Canvas at ${steps} steps` });
    const timeEl = h('b.num', {}, '–'), rateEl = h('b.num', {}, '–'), stepEl = h('b.num', {}, `0 / ${steps}`);
    const bar = h('i');
    const col = h('section.card.compare-col', { dataset: { steps: String(steps) }, 'aria-label': `${steps} steps` },
      h('header.compare-head', {}, h('div', {}, h('strong', {}, `${steps} steps`), h('span.faint', {}, ` · ${perStep(this.length, steps)}`)), h('span.compare-state', {}, 'waiting')),
      h('div.compare-body', {}, canvasEl),
      h('footer.compare-foot', {}, h('span', {}, timeEl, ' time'), h('span', {}, rateEl, ' tok/s'), h('span', {}, stepEl, ' steps'), h('div.time-bar', {}, bar)));
    this.columns.append(col);
    const state = col.querySelector('.compare-state');
    let loader = null;
    const entry = { steps, col, bar, elapsed: null, text: '' };
    entry.live = new LiveRun(body, { prefix: chat ? '' : text, kind: 'text' }, {
      waiting: ms => {
        if (!loader) {
          loader = atomLoader(info.loaded ? 'Queued behind the others…' : `Loading ${info.name}…`, { small: true });
          canvasEl.replaceChildren(loader.el);
          state.textContent = 'queued';
        }
        loader.set(null, `${(ms / 1000).toFixed(1)} s`);
      },
      start: run => { canvas.bind(run, chat ? '' : text); state.textContent = 'diffusing'; col.classList.add('running'); this.app.modelLoaded(info.name); },
      frame: (run, k) => {
        canvas.show(k);
        const f = run.steps[k - 1];
        if (f) { timeEl.textContent = formatSeconds(f.elapsed); rateEl.textContent = formatRate(f.tokens_per_second); stepEl.textContent = `${k} / ${run.totalSteps}`; }
      },
      done: run => {
        // The server's timings: denoising time only (a load or a wait in its queue is not in it).
        const t = run.done.timings || {};
        timeEl.textContent = formatSeconds(t.elapsed);
        rateEl.textContent = formatRate(t.tokens_per_second);
        stepEl.textContent = `${run.lastStep} / ${run.totalSteps}`;
        stepEl.title = `${passes(t, run.lastStep)} model passes`;
        state.textContent = 'done';
        col.classList.remove('running');
        col.classList.add('finished');
        entry.elapsed = t.elapsed;
        entry.text = run.done.text;
      },
      error: (err, run) => {
        col.classList.remove('running');
        state.textContent = isAbort(err) ? 'stopped' : 'error';
        if (!isAbort(err)) col.querySelector('.compare-body').prepend(errorBox(err));
      },
    });
    entry.promise = entry.live.start();
    return entry;
  }

  showSummary() {
    const done = (this.running || []).filter(c => c.elapsed != null);
    if (done.length < 2) return;
    const slowest = Math.max(...done.map(c => c.elapsed));
    for (const c of done) c.bar.style.width = `${Math.max(3, (c.elapsed / slowest) * 100)}%`;
    const fastest = done.reduce((a, b) => (a.elapsed <= b.elapsed ? a : b));
    const most = done[done.length - 1];
    this.summary.hidden = false;
    this.summary.replaceChildren(h('span', {}, h('b', {}, `${fastest.steps} steps`), ` took ${formatSeconds(fastest.elapsed)}; `,
      h('b', {}, `${most.steps} steps`), ` took ${formatSeconds(most.elapsed)}`,
      most.elapsed > 0 && fastest !== most ? ` (${(most.elapsed / Math.max(1e-6, fastest.elapsed)).toFixed(1)}× longer)` : '', '. Read both: where do the fast ones repeat or lose the thread?'));
  }

  show() {}
  primary() { this.run(); }
  escape() { this.stop(); }
  focusPrompt() { this.prompt.focus(); }
  key() { return false; }
}
