// The stage: where a run is watched. Canvas (or an empty state, the loader, an error), live
// readouts, the timeline, the heat toggle, the filmstrip and the exports. Used by Diffuse and Infill.
// A run of a model that writes code (meta.code: its language) is drawn as a code block instead of
// the token canvas (codeview.js), with the same timeline, selection and rewrite.

import { CanvasView } from './canvas.js';
import { CodeView } from './codeview.js';
import { animatedSVG, htmlReplay, runGIF, runJSON } from './export.js';
import * as history from './history.js';
import { LiveRun, isAbort } from './live.js';
import { Filmstrip, Minimap, Timeline } from './timeline.js';
import { atomLoader, count, download, formatParams, formatRate, formatSeconds, h, icon, prose, segmented, stat, toast } from './ui.js';

const LOAD_SHOWN_S = 0.05; // a wait before the first pass shorter than this is not worth a readout

export class Stage {
  /** view: the name the run history keeps this stage's runs under (none: no history). */
  constructor({ label = 'Diffusion canvas', onDone = () => {}, onStart = () => {}, onShow = () => {}, view = null } = {}) {
    this.onDoneHook = onDone;
    this.onStartHook = onStart;
    this.onShowHook = onShow;
    this.view = view;
    this.live = null;
    this.run = null;
    this.heat = false;
    this.stats = {
      rate: stat('tokens / s'), passes: stat('model passes'), time: stat('time'), steps: stat('steps'), blocks: stat('blocks'),
      settled: stat('settled'), load: stat('load'), revoked: stat('revoked'), edited: stat('edited'),
    };
    this.stats.rate.el.title = 'Tokens of the answer over denoising time: not drafts taken back, not end padding';
    this.stats.time.el.title = 'Denoising time (a model load or a wait in the queue is not in it: see load)';
    this.stats.load.el.title = 'Before the first pass: loading the model, or waiting in the server’s queue';
    this.stats.revoked.el.title = 'Drafts remask took back to decode again';
    this.stats.edited.el.title = 'Written tokens that token editing replaced';
    this.stats.settled.el.title = 'The share of the canvas this pass leaves settled: committed tokens, or, where every cell may change (DiffusionGemma), the tokens the sampler accepted';
    this.viewToggle = segmented([
      { value: 'live', label: 'Tokens', title: 'Tokens as they resolve; the newest highlighted' },
      { value: 'heat', label: 'Heat', title: 'Colour each token by the step it was decided at (H)' },
    ], 'live', v => this.setHeat(v === 'heat'), 'Canvas view');
    this.legend = h('span.heat-legend', { hidden: true }, 'early', h('i'), 'late');
    this.exportBtns = h('div.export', {},
      h('button.btn.small.ghost', { type: 'button', title: 'A self-contained HTML page that replays this run', onclick: () => this.exportHTML() }, icon('download'), 'HTML replay'),
      h('button.btn.small.ghost', { type: 'button', title: 'An animated SVG of this run', onclick: () => this.exportSVG() }, icon('download'), 'Animated SVG'),
      h('button.btn.small.ghost', { type: 'button', title: 'An animated GIF of this run, one frame per step (its settings and seed in the file’s comment)', onclick: () => this.exportGIF() }, icon('download'), 'GIF'),
      h('button.btn.small.ghost', { type: 'button', title: 'The run as JSON: its frames, the options the server resolved, the model and the seed', onclick: () => this.exportJSON() }, icon('download'), 'JSON'));
    this.exportBtns.hidden = true;
    this.canvasEl = h('div.canvas-body');
    this.tokenView = new CanvasView(this.canvasEl, { label });
    this.canvas = this.tokenView; // the view the shown run is drawn in: tokenView, or a CodeView (useCode)
    this.codeEl = h('div.code-body', { hidden: true });
    this.codeView = null;
    this.overlay = h('div.stage-overlay', { hidden: true });
    this.emptyEl = h('div.stage-empty');
    this.status = h('div.sr-only', { role: 'status', 'aria-live': 'polite' });
    this.card = h('div.card.stage-card', {}, this.emptyEl, this.canvasEl, this.codeEl, this.overlay, this.status);
    this.timelineEl = h('div.stage-timeline');
    this.timeline = new Timeline(this.timelineEl, { onSeek: k => this.seek(k) });
    this.minimap = new Minimap(h('div.stage-minimap'), { label: 'Mask map: which cells of the whole canvas are decided at the shown step' });
    this.filmEl = h('div');
    this.film = new Filmstrip(this.filmEl, { onSeek: k => this.timeline.seek(k) });
    this.filmWrap = h('div.film-wrap', { hidden: true }, h('div.section-head', {}, h('h3.panel-title', {}, 'Filmstrip'), h('span.faint', {}, 'a few steps side by side · click one to jump there')), this.filmEl);
    this.bar = h('div.stage-bar', { hidden: true }, h('div.stats', {}, Object.values(this.stats).map(s => s.el)),
      h('div.stage-tools', {}, this.legend, this.viewToggle.el, this.exportBtns));
    this.historyList = h('ol.history-list');
    this.historyWrap = h('section.history-wrap', { hidden: true, 'aria-label': 'Recent runs' },
      h('div.section-head', {}, h('h3.panel-title', {}, 'Recent runs'), h('span.faint', {}, `the last ${history.KEEP}, kept in this browser · open one to replay or export it`)), this.historyList);
    this.el = h('div.stage', {}, this.bar, this.card, this.timelineEl, this.minimap.el, this.filmWrap, this.historyWrap);
    this.canvasEl.hidden = true;
    this.timelineEl.hidden = true;
    this.minimap.el.hidden = true;
    if (view) this.loadHistory({ showLast: true });
  }

  /** List the kept runs; showLast: show the newest (a reload shows the last run again). */
  async loadHistory({ showLast = false } = {}) {
    const rows = await history.list(this.view);
    this.renderHistory(rows);
    if (showLast && rows.length && !this.run && !this.live) this.showRun(history.restore(rows[0]));
  }

  renderHistory(rows) {
    this.historyWrap.hidden = !rows.length;
    const shown = this.run?.historyKey;
    this.historyList.replaceChildren(...rows.map(rec => {
      const when = new Date(rec.savedAt).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
      return h('li.history-item', { dataset: { key: String(rec.key) }, class: `history-item${rec.key === shown ? ' current' : ''}` },
        h('button.history-open', { type: 'button', title: 'Replay this run', onclick: () => this.showRun(history.restore(rec)) },
          h('span.history-label', {}, rec.label || '(empty)'), h('span.faint', {}, `${rec.meta?.rewriting ? 'rewrite · ' : ''}${rec.model} · ${rec.steps} steps · ${when}`)),
        h('button.icon-btn.history-delete', { type: 'button', 'aria-label': 'Delete this run', title: 'Delete this run', onclick: () => this.deleteRun(rec.key) }, icon('trash')));
    }));
  }

  async deleteRun(key) {
    await history.remove(key);
    if (this.run?.historyKey === key) this.run.historyKey = null;
    await this.loadHistory();
  }

  /** Show a finished run (from the history, or an earlier version): replayable and exportable as it was live. */
  showRun(run) {
    this.stop();
    this.prefix = run.meta.prefix || '';
    this.fixed = run.meta.fixed || '';
    this.errorEl?.remove();
    this.card.classList.remove('stale');
    this.el.classList.remove('busy');
    this.bind(run, { live: false });
    this.finishRun(run);
    this.onShowHook(run);
    if (this.view) this.loadHistory();
  }

  setEmpty(node) { this.emptyEl.replaceChildren(node); }

  /** Whether a run is drawn (in either view), rather than the empty state. */
  get showing() { return !this.canvasEl.hidden || !this.codeEl.hidden; }

  /** Draw runs as code in `lang` (a CodeView), or as tokens (lang null); the heat view is the tokens'. */
  useCode(lang) {
    if (lang && this.codeView?.lang !== lang) this.codeView = new CodeView(this.codeEl, lang);
    this.canvas = lang ? this.codeView : this.tokenView;
    this.canvasEl.hidden = !!lang;
    this.codeEl.hidden = !lang;
    this.viewToggle.el.hidden = !!lang;
    this.legend.hidden = !!lang || !this.heat;
  }

  get running() { return !!this.live?.active; }

  /** Start a run: body for /api/diffuse; meta: {prefix, fixed, kind, settings}; model: its /api/models info. */
  start(body, meta, model, { paceMs = 0 } = {}) {
    this.stop();
    this.prefix = meta.prefix || '';
    this.fixed = meta.fixed || '';
    // The model's family tells the Run where its blocks start (run.js CANVAS_BLOCKS).
    const live = new LiveRun(body, { family: model?.family ?? null, ...meta }, {
      waiting: ms => this.showLoader(model, ms),
      progress: data => this.loader?.progress(typeof data.progress === 'number' ? data.progress : null),
      start: run => this.onStart(run),
      frame: (run, k) => this.onFrame(run, k),
      done: run => this.onDone(run),
      error: (err, run) => this.onError(err, run),
    }, { paceMs });
    this.live = live;
    this.errorEl?.remove();
    this.card.classList.remove('stale');
    this.status.textContent = 'Starting…';
    this.el.classList.add('busy');
    return live.start();
  }

  stop() {
    if (this.live?.active) this.live.cancel();
  }

  showLoader(model, ms) {
    if (!this.loader) {
      const name = model?.name || 'the model';
      this.loader = atomLoader(model && !model.loaded ? `Loading ${name}…` : `Waiting for ${name}…`);
      this.overlay.replaceChildren(this.loader.el);
      this.overlay.hidden = false;
      this.card.classList.add('loading'); // tall enough for the whole loader, its text included
      this.emptyEl.hidden = true;
    }
    const params = model?.parameters ? ` · ${formatParams(model.parameters)} parameters` : '';
    this.loader.set(null, `${(ms / 1000).toFixed(1)} s${params}`);
  }

  hideLoader() {
    this.loader = null;
    this.card.classList.remove('loading');
    this.overlay.hidden = true;
    this.overlay.replaceChildren();
  }

  onStart(run) {
    this.bind(run, { live: true });
    this.onStartHook(run);
  }

  bind(run, { live }) {
    this.hideLoader();
    this.bar.hidden = false; // readouts and tools appear with the first run
    this.run = run;
    this.emptyEl.hidden = true;
    this.useCode(run.meta.code || null);
    this.timelineEl.hidden = false;
    this.minimap.el.hidden = false;
    this.canvas.setHighlight(null);
    this.canvas.bind(run, this.prefix, this.fixed);
    this.canvas.setHeat(this.heat);
    this.timeline.setRun(run, { live });
    this.minimap.bind(run);
    this.filmWrap.hidden = true;
    this.exportBtns.hidden = true;
    for (const s of Object.values(this.stats)) s.set('–');
    this.stats.steps.set(`0 / ${run.totalSteps}`);
    // The block size the server runs (start.block_length) and the blocks it makes of the region, one included.
    const blocks = run.blocks;
    this.stats.blocks.set(String(blocks));
    this.stats.blocks.el.title = '';
    this.stats.blocks.el.lastElementChild.textContent = `${blocks === 1 ? 'block' : 'blocks'} of ${run.blockLength} tokens`;
    // The wait before the first pass (a model load, the queue): apart from the denoising time.
    const queued = run.start.queued;
    this.stats.load.el.hidden = !(queued >= LOAD_SHOWN_S);
    this.stats.load.set(formatSeconds(queued));
    this.stats.revoked.el.hidden = !run.start.options?.remask;
    this.stats.edited.el.hidden = !run.start.options?.edit_threshold;
    this.stats.revoked.set('0');
    this.stats.edited.set('0');
    this.status.textContent = `Diffusing ${run.n} tokens in ${run.totalSteps} steps${blocks > 1 ? `, ${blocks} blocks of ${run.blockLength}` : ''}`;
  }

  onFrame(run, k) {
    this.timeline.advance(k);
    if (this.timeline.following) { this.canvas.show(k); this.minimap.show(k); }
    const frame = run.steps[k - 1];
    if (frame) {
      this.stats.rate.set(formatRate(frame.tokens_per_second));
      this.stats.passes.set(String(frame.nfe));
      this.stats.time.set(formatSeconds(frame.elapsed));
      this.stats.steps.set(`${k} / ${run.totalSteps}`);
      this.showSettled(run.settlednessAt(k));
      this.showRevisions(run.revocations, run.edits);
    }
  }

  /** Drafts taken back and tokens edited so far (shown once there are any, or when the options ask for them). */
  showRevisions(revoked, edited) {
    this.stats.revoked.set(String(revoked));
    this.stats.edited.set(String(edited));
    if (revoked) this.stats.revoked.el.hidden = false;
    if (edited && !this.run?.uniform) this.stats.edited.el.hidden = false;
  }

  /** The settled share (the step frame's `settledness`) as a percentage, floored so that 100% means settled. */
  showSettled(share) {
    if (share === null) return;
    this.stats.settled.set(`${Math.floor(share * 100 + 1e-9)}%`);
  }

  onDone(run) {
    this.finishRun(run);
    this.onDoneHook(run);
    if (this.view) history.save(run, this.view).then(key => { run.historyKey = key; return this.loadHistory(); });
  }

  finishRun(run) {
    this.el.classList.remove('busy');
    this.canvas.replay = true;
    this.timeline.endLive();
    if (this.timeline.following) {
      this.timeline.update(run.lastStep);
      this.canvas.show(run.lastStep);
    } else {
      this.canvas.show(this.timeline.current, { animate: false });
    }
    this.minimap.show(this.timeline.current);
    // The server's own accounting: passes run against passes planned, denoising time, its tokens/s.
    const t = run.done.timings || {};
    this.stats.rate.set(formatRate(t.tokens_per_second));
    this.stats.passes.set(passes(t, run.lastStep));
    this.stats.time.set(formatSeconds(t.elapsed));
    this.stats.steps.set(`${run.lastStep} / ${run.totalSteps}`);
    if (run.settlednessAt(run.lastStep) !== null) this.showSettled(1); // done: every cell is final
    this.showRevisions(t.revocations ?? run.revocations, run.uniform ? 0 : t.edits ?? run.edits);
    // An end token may finish the run before its last blocks.
    const used = run.blocksUsed;
    if (used < run.blocks) {
      this.stats.blocks.set(`${used} of ${run.blocks}`);
      this.stats.blocks.el.title = 'The run ended (an end token) before its last blocks';
    }
    this.film.render(run, this.timeline.current);
    this.filmWrap.hidden = false;
    this.exportBtns.hidden = false;
    this.card.classList.add('finished');
    this.status.textContent = `Done: ${count(run.done.usage?.completion_tokens, 'token')} in ${formatSeconds(t.elapsed)}`;
  }

  onError(err, run) {
    this.el.classList.remove('busy');
    this.hideLoader();
    if (run) this.timeline.endLive();
    if (isAbort(err)) {
      this.status.textContent = 'Stopped';
      toast('Stopped', run ? `after ${run.lastStep} of ${run.totalSteps} steps` : '');
      if (!run) this.emptyEl.hidden = this.showing;
      return;
    }
    this.errorEl = errorBox(err);
    // The empty state only when there is no run to show; a run from before stays, marked as not this one's.
    if (!run) {
      this.emptyEl.hidden = this.showing;
      this.card.classList.toggle('stale', this.showing);
    }
    this.card.prepend(this.errorEl);
    this.status.textContent = `Error: ${err.message}`;
    this.onErrorHook?.(err);
  }

  seek(k) {
    this.canvas.show(k);
    this.minimap.show(k);
    this.film.mark(k);
  }

  setHeat(on) {
    this.heat = on;
    this.viewToggle.set(on ? 'heat' : 'live');
    this.legend.hidden = !on || this.canvas !== this.tokenView;
    this.canvas.setHeat(on);
  }

  exportHTML() {
    if (!this.run?.finished) return;
    const name = fileName(this.run, 'html');
    download(name, new Blob([htmlReplay(this.run, `${this.run.model} · ${this.run.lastStep} steps`)], { type: 'text/html' }));
    toast('Saved the HTML replay', name, 'ok');
  }

  exportSVG() {
    if (!this.run?.finished) return;
    const name = fileName(this.run, 'svg');
    download(name, new Blob([animatedSVG(this.run, `${this.run.model} · ${this.run.lastStep} steps`)], { type: 'image/svg+xml' }));
    toast('Saved the animated SVG', name, 'ok');
  }

  exportGIF() {
    if (!this.run?.finished) return;
    const name = fileName(this.run, 'gif');
    download(name, new Blob([runGIF(this.run)], { type: 'image/gif' }));
    toast('Saved the animated GIF', name, 'ok');
  }

  exportJSON() {
    if (!this.run?.finished) return;
    const name = fileName(this.run, 'json');
    download(name, new Blob([JSON.stringify(runJSON(this.run), null, 1)], { type: 'application/json' }));
    toast('Saved the run as JSON', name, 'ok');
  }

  /** Keyboard: the timeline keys, when the stage has a run (app.js keeps a focused control's own keys for it). */
  key(e) {
    if (!this.run) return false;
    const t = this.timeline;
    if (e.key === 'ArrowLeft') t.stepBy(e.shiftKey ? -10 : -1);
    else if (e.key === 'ArrowRight') t.stepBy(e.shiftKey ? 10 : 1);
    else if (e.key === 'Home') t.first();
    else if (e.key === 'End') t.last();
    else if (e.key === ' ') t.toggle();
    else if (e.key === 'h' || e.key === 'H') this.setHeat(!this.heat);
    else return false;
    return true;
  }
}

/** "107 (32 planned)" when the passes run differ from those planned (a cache's refreshes, an early end). */
export function passes(t, fallback) {
  const nfe = t.nfe ?? fallback;
  return t.planned_passes != null && t.planned_passes !== nfe ? `${nfe} (${t.planned_passes} planned)` : String(nfe);
}

function fileName(run, ext) {
  const safe = String(run.model).replace(/[^\w.-]+/g, '-').slice(0, 40);
  return `unmask-${safe}-${run.lastStep}-steps.${ext}`;
}

/** A friendly error: a title, the server's sentence, and what to try. */
export function errorBox(err) {
  const hint = {
    network: 'Start it again with `unmask studio` or `unmask serve`, then retry.',
    model_not_found: 'Pick another model above, or download one with `unmask pull`.',
    queue_full: 'Wait a moment and run again.',
    shutting_down: 'The server is stopping; start it again.',
    sampler_stalled: 'Try more steps or another algorithm.',
    context_length_exceeded: 'Shorten the prompt or the length.',
  }[err.code] || (err.param ? 'The highlighted setting is the one to change.' : '');
  return h('div.error-box', { role: 'alert' }, h('strong', {}, err.title || 'Something went wrong'), h('span', {}, prose(err.message)), hint ? h('span.muted', {}, prose(hint)) : null);
}
