// Diffuse: one prompt, watched live; the dial beside it; select a span of the answer to rewrite it.
// A model that writes code (its model info's `output`) gets its answers drawn as a code block that
// previews once settled, requests of its own as examples, and rewrites under the prompt as typed.

import { Dial } from '../dial.js';
import { STORY_PROMPTS, CHAT_PROMPTS, WEB_PROMPTS } from '../examples.js';
import * as history from '../history.js';
import { codeLanguage, kindOf, ModelPicker } from '../models.js';
import { Stage } from '../stage.js';
import { h, icon, toast } from '../ui.js';

// A rewrite that keeps greedy decoding would usually choose the same words again.
const REWRITE_TEMPERATURE = 0.8;
const GAP = /\{\{\s*\d+\s*\}\}/;
// A prompt written as a request (a question, an instruction): a completion model continues it, it does not answer.
const REQUEST = /\?\s*$|^\s*(write|explain|give|tell|list|summari[sz]e|translate|describe|please|what|how|why|who|when|where|can|could|would|should|is|are|do|does)\b/i;

export class DiffuseView {
  constructor(root, app) {
    this.app = app;
    this.root = root;
    this.picker = new ModelPicker({ kinds: ['text', 'chat'], storageKey: 'text', onChange: m => this.modelChanged(m) });
    this.prompt = h('textarea.prompt-input', { rows: 3, placeholder: 'Start a story…', 'aria-label': 'Prompt', spellcheck: 'true' });
    this.prompt.value = localStorage.getItem('unmask.prompt') || STORY_PROMPTS[0];
    this.prompt.addEventListener('input', () => { try { localStorage.setItem('unmask.prompt', this.prompt.value); } catch { /* */ } this.paintNote(); this.paintRewrite(); });
    this.runBtn = h('button.btn.primary.run-btn', { type: 'button', onclick: () => this.run() }, icon('sparkle'), 'Diffuse', h('span.kbd-hint', {}, 'Ctrl ↵'));
    this.stopBtn = h('button.btn.stop-btn', { type: 'button', hidden: true, onclick: () => this.stage.stop() }, icon('stop'), 'Stop');
    this.examples = h('div.chips.examples');
    this.stage = new Stage({ view: 'diffuse', onDone: run => this.finished(run), onStart: run => this.started(run), onShow: run => this.shown(run) });
    // Rewrite versions: the runs a rewrite replaced, the latest last; Undo (Ctrl Z) brings one back.
    // Each kept rewrite names the history key of the version it replaced (meta.previous): after a
    // reload, or opened from the history, a rewrite gets its versions back from the kept runs.
    this.versions = [];
    this.undoBtn = h('button.btn.small.ghost.undo-btn', { type: 'button', hidden: true, title: 'Back to the version before this rewrite (Ctrl Z)', 'aria-keyshortcuts': 'Control+Z', onclick: () => this.undo() }, icon('undo'), this.undoText = h('span', {}, 'Undo rewrite'));
    this.stage.bar.querySelector('.stage-tools').prepend(this.undoBtn);
    this.stage.onErrorHook = err => { this.busy(false); if (err.param) this.dial.flag(err.param); };
    this.stage.setEmpty(this.emptyState());
    this.rewriteBtn = h('button.btn.small.rewrite-btn', { type: 'button', hidden: true, title: 'Mask this span and diffuse it again, everything else fixed (R)', onclick: () => this.rewrite() }, icon('rewrite'), this.rewriteText = h('span', {}, 'Rewrite'));
    this.stage.card.append(this.rewriteBtn);
    for (const el of [this.stage.canvasEl, this.stage.codeEl]) {
      for (const ev of ['mouseup', 'keyup']) el.addEventListener(ev, () => setTimeout(() => this.selectionChanged(), 0));
    }
    document.addEventListener('selectionchange', () => { if (!this.rewriteBtn.hidden) this.selectionChanged(); });
    const dialEl = h('aside.card.dial-card');
    this.dial = new Dial(dialEl, { key: 'diffuse' });
    this.chatNote = h('p.faint.chat-note', { hidden: true }, 'A chat model: your prompt is sent as a user message.');
    this.continueNote = h('p.faint.continue-note', { hidden: true, role: 'note' }, 'This is not a chat model: it continues your text as a story, it does not answer it. For answers, pick a chat model (or use Chat).');
    root.append(h('div.diffuse-layout', {},
      h('div.work', {},
        h('div.card.prompt-card', {},
          h('div.prompt-top', {}, h('h1.view-title', {}, 'Diffuse'), h('span.view-sub', {}, 'Text appears out of order, over a number of denoising steps.'), this.picker.el),
          this.prompt,
          h('div.prompt-actions', {}, this.examples, h('div.spacer'), this.stopBtn, this.runBtn),
          this.chatNote, this.continueNote),
        this.stage.el),
      dialEl));
    this.renderExamples();
  }

  emptyState() {
    return h('div.empty', {},
      h('h3', {}, 'Watch a model write out of order'),
      h('p', {}, 'A diffusion language model starts from a row of masked placeholders and, at every step, commits the tokens it is surest of — anywhere in the answer. Press ', h('b', {}, 'Diffuse'), ' and watch the placeholders resolve; then scrub back through the steps, switch on the heat view, or select a span and rewrite it.'),
      h('div.chips', {}, this.examplePrompts().map(p => h('button.chip', { type: 'button', onclick: () => { this.prompt.value = p; this.run(); } }, p))),
      h('p.faint', {}, 'Or try ', h('a', { href: '#/infill' }, 'filling gaps in a story'), ', ', h('a', { href: '#/sudoku' }, 'solving a Sudoku'), ', or ', h('a', { href: '#/compare' }, 'comparing step counts'), '.'));
  }

  /** Prompts that suit the picked model: requests for a code model, questions for a chat model, story openings. */
  examplePrompts() {
    const info = this.picker?.info;
    if (info && codeLanguage(info)) return WEB_PROMPTS;
    return info && kindOf(info) === 'chat' ? CHAT_PROMPTS : STORY_PROMPTS;
  }

  renderExamples() {
    const info = this.picker.info;
    const prompts = this.examplePrompts();
    // Beside the prompt: story openings other than the first (the empty state shows them all), or the first requests.
    const list = prompts === STORY_PROMPTS ? prompts.slice(1, 3) : prompts.slice(0, prompts === WEB_PROMPTS ? 3 : 2);
    if (!this.stage.run && info) this.stage.setEmpty(this.emptyState());
    this.examples.replaceChildren(...list.map(p => h('button.chip', { type: 'button', title: p, onclick: () => { this.prompt.value = p; this.paintNote(); this.prompt.focus(); } }, p.length > 34 ? `${p.slice(0, 32)}…` : p)));
  }

  setModels(models) { this.picker.setModels(models); }

  modelChanged(info) {
    this.dial.setModel(info);
    const chat = info && kindOf(info) === 'chat';
    this.chatNote.hidden = !chat;
    this.paintNote();
    this.prompt.placeholder = chat ? 'Ask something…' : info && codeLanguage(info) ? 'Describe an animation…' : 'Start a story…';
    this.renderExamples();
    this.runBtn.disabled = !info;
  }

  /** The note that a completion model continues a request rather than answering it. */
  paintNote() {
    const info = this.picker.info;
    this.continueNote.hidden = !info || kindOf(info) === 'chat' || !!codeLanguage(info) || !REQUEST.test(this.prompt.value);
  }

  /** The prompt a rewrite of the shown run diffuses under: the prompt box as now typed (blank: the run's own). */
  rewritePrompt(run = this.stage.run) {
    const typed = this.prompt.value;
    return typed.trim() ? typed : run.meta.source.prompt;
  }

  /** The Rewrite button says when it will use a prompt other than the run's (the box was edited since). */
  paintRewrite() {
    const run = this.stage.run;
    const edited = !!run?.meta.source && this.rewritePrompt(run) !== run.meta.source.prompt;
    this.rewriteText.textContent = edited ? 'Rewrite under the edited prompt' : 'Rewrite';
    this.rewriteBtn.title = edited
      ? 'Mask this span and diffuse it again under the prompt as now typed, everything else fixed (R)'
      : 'Mask this span and diffuse it again, everything else fixed (R)';
  }

  busy(on) {
    this.runBtn.hidden = on;
    this.stopBtn.hidden = !on;
    if (on) this.rewriteBtn.hidden = true;
  }

  /** Start a run; options.template / options.fixed / options.source are set by rewrite(). */
  run({ template = null, fixed = '', source = null, steps = null, rewriting = null, previous = null } = {}) {
    const info = this.picker.info;
    if (!info) { toast('No text model', 'This server serves no model that takes text.', 'error'); return; }
    if (!this.dial.ready()) return; // a field refused as typed (the seed): nothing is sent
    const chat = kindOf(info) === 'chat';
    const promptText = source ? source.prompt : this.prompt.value;
    // The dial's preset and the fields set by hand: the server resolves them as it did for the dial.
    const body = { model: info.name, ...this.dial.request() };
    if (chat) body.messages = [{ role: 'user', content: promptText }];
    else body.prompt = promptText;
    if (template != null) {
      body.template = template;
      delete body.max_new_tokens;
      delete body.block_length;
      delete body.cache;
      if (steps != null) body.steps = steps;
      else delete body.steps;
      body.temperature = Math.max(this.dial.options.temperature || 0, REWRITE_TEMPERATURE);
    }
    // A code model's answers are drawn as code (stage.js useCode): the run keeps the language.
    const meta = { prefix: chat ? '' : promptText, fixed, kind: 'text', settings: body, source: { prompt: promptText, chat }, rewriting, previous, code: codeLanguage(info) };
    this.stage.canvas.setHighlight(null);
    this.busy(true);
    this.stage.start(body, meta, info, { paceMs: this.dial.paceMs }).then(() => this.busy(false));
  }

  started(run) {
    this.busy(true);
    // A rewrite keeps the version it replaces; any other run starts a new line of versions.
    if (run.meta.rewriting && this.replacing) this.versions.push(this.replacing);
    else if (!run.meta.rewriting) this.versions = [];
    this.replacing = null;
    this.paintUndo();
    this.app.modelLoaded(run.model);
    // A rewrite's gap is the region's first n positions (its template starts with the gap).
    if (run.meta.rewriting) this.stage.canvas.setHighlight([0, run.meta.rewriting - 1]);
  }

  finished() {
    this.busy(false);
  }

  /** A run shown from the history (or brought back by Undo). */
  shown(run) {
    this.busy(false);
    if (!this.undoing) { this.versions = []; this.restoreVersions(run); }
    this.paintUndo();
  }

  /** The versions a kept rewrite replaced, from the run history: its meta.previous, that one's, … */
  async restoreVersions(run) {
    if (run.meta.previous == null) return;
    const kept = new Map((await history.list('diffuse')).map(rec => [rec.key, rec]));
    if (this.stage.run !== run || this.versions.length) return; // another run is shown by now
    const chain = [];
    let key = run.meta.previous, after = run.historyKey ?? Infinity;
    while (key != null && key < after && kept.has(key)) { // keys only grow: a chain cannot loop
      const rec = kept.get(key);
      chain.unshift(history.restore(rec));
      after = key;
      key = rec.meta?.previous;
    }
    this.versions = chain;
    this.paintUndo();
  }

  paintUndo() {
    this.undoBtn.hidden = !this.versions.length;
    this.undoText.textContent = this.versions.length > 1 ? `Undo rewrite (${this.versions.length})` : 'Undo rewrite';
  }

  /** Restore the version before the latest rewrite; false when there is none (or a run is going). */
  undo() {
    if (!this.versions.length || this.stage.running) return false;
    this.undoing = true;
    try { this.stage.showRun(this.versions.pop()); } finally { this.undoing = false; }
    this.paintUndo();
    this.stage.status.textContent = 'Rewrite undone: the earlier version is back';
    return true;
  }

  /** The whole answer as text: the fixed start (rewrites) and the region, up to its end token. */
  answerText(run = this.stage.run) {
    return (run.meta.fixed || '') + run.text();
  }

  selectionChanged() {
    const run = this.stage.run;
    const range = run?.finished && !this.stage.running ? this.stage.canvas.selectedRange() : null;
    const ok = range && this.rewritable(range);
    this.rewriteBtn.hidden = !ok;
    if (!ok) return;
    this.selected = range;
    this.paintRewrite();
    const rect = document.getSelection().getRangeAt(0).getBoundingClientRect();
    const box = this.stage.card.getBoundingClientRect();
    const width = this.rewriteBtn.offsetWidth || 96;
    this.rewriteBtn.style.left = `${Math.max(8, Math.min(box.width - width - 14, rect.left - box.left + rect.width / 2 - width / 2))}px`;
    this.rewriteBtn.style.top = `${Math.max(4, rect.top - box.top - 40)}px`;
  }

  rewritable([a, b]) {
    const run = this.stage.run;
    const states = run.states(run.lastStep);
    for (let i = a; i <= b; i++) if (states[i] !== 'token' && states[i] !== 'given') return false;
    return states.slice(a, b + 1).includes('token') || states.slice(a, b + 1).includes('given');
  }

  /** Mask the selected span and diffuse it again with everything around it fixed. */
  rewrite(range = this.selected) {
    const run = this.stage.run;
    if (!run?.finished || !range) return;
    const [a, b] = range;
    const states = run.states(run.lastStep);
    // The text as drawn (run.drawn): the fixed text of the rewrite is what the reader sees.
    const piece = i => run.drawn[i] ?? '';
    let before = run.meta.fixed || '';
    for (let i = 0; i < a; i++) if (states[i] === 'token' || states[i] === 'given') before += piece(i);
    let after = '';
    for (let i = b + 1; i < run.n; i++) {
      if (states[i] === 'end') break;
      if (states[i] === 'token' || states[i] === 'given') after += piece(i);
    }
    const n = b - a + 1;
    // Steps set by hand keep their share per token for the span; otherwise the server scales the
    // preset's (or the model's) steps to the positions to fill, as it does for any template.
    const ratio = (this.dial.options.steps || 1) / Math.max(1, this.dial.fill);
    const steps = this.dial.request().steps != null ? Math.max(1, Math.min(n, Math.round(n * ratio))) : null;
    if (GAP.test(before) || GAP.test(after)) {
      toast('Cannot rewrite this answer', 'Its text contains {{N}}, which the infill template would read as a gap.', 'error');
      return;
    }
    document.getSelection().removeAllRanges();
    this.rewriteBtn.hidden = true;
    this.replacing = run;
    // Under the prompt as now typed: edit the request ("red electrons"), select the colour, rewrite.
    const source = { ...run.meta.source, prompt: this.rewritePrompt(run) };
    this.run({ template: `${before}{{${n}}}${after}`, fixed: before, source, steps, rewriting: n, previous: run.historyKey ?? null });
  }

  show() { this.prompt.focus({ preventScroll: true }); }
  primary() { this.run(); }
  escape() { this.stage.stop(); }
  focusPrompt() { this.prompt.focus(); }

  key(e) {
    if ((e.key === 'r' || e.key === 'R') && !this.rewriteBtn.hidden) { this.rewrite(); return true; }
    return this.stage.key(e);
  }
}
