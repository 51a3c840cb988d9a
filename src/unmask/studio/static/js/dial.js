// The dial: the decoding settings that matter for diffusion (length, steps, block length,
// algorithm, temperature, spread, remask, threshold) and the CLI's presets. It works none of them
// out itself: the fields the user set and the preset picked go to POST /api/resolve, and the dial
// shows the server's answer. A run sends the very same fields (request()), so what the dial shows
// is what the run uses (the start frame's `options`). Untouched, it shows the model's defaults.

import { postJSON } from './api.js';
import { h, paintRange, prose, segmented } from './ui.js';

export const ALGORITHMS = [
  { value: 'low_confidence', label: 'Confidence', title: 'Commit the tokens the model is surest of (LLaDA)' },
  { value: 'maskgit_plus', label: 'MaskGIT+', title: 'Top-1 probability (Dream’s maskgit_plus)' },
  { value: 'topk_margin', label: 'Margin', title: 'Gap between the two likeliest tokens' },
  { value: 'entropy', label: 'Entropy', title: 'Lowest entropy first (Dream’s default)' },
  { value: 'random', label: 'Random', title: 'Any order: shows why the order matters' },
  { value: 'origin', label: 'Origin', title: 'Dream’s original random-transfer sampler (Dream only)' },
  { value: 'sequential', label: 'Left to right', title: 'The first masks of the block first (SDAR only)' },
];
// Families that denoise blocks left to right over the whole canvas, with an exact cache of the
// finished ones: any block length fits, and they rank by confidence only (SDAR also left to right).
export const BLOCK_FAMILIES = new Set(['sdar', 'llada2', 'fast-dllm-v2', 'diffusion-gemma']);
const BLOCK_ALGORITHMS = { sdar: ['low_confidence', 'sequential'], llada2: ['low_confidence'], 'fast-dllm-v2': ['low_confidence'], 'diffusion-gemma': ['entropy'] };
// The rankings a threshold can use (the server refuses the others beside one). Only used to keep
// the user's own choices compatible; which ranking runs is the server's choice.
const THRESHOLD_ALGORITHMS = new Set(['maskgit_plus', 'low_confidence', 'topk_margin']);
const BLOCK_SIZES = [4, 8, 16, 32, 64, 128, 256];
const STORAGE = 'unmask.dial.v2'; // v1 kept resolved values; v2 keeps only what the user set
const RESOLVE_DELAY_MS = 120; // a dragged slider asks once it rests, not at every pixel
// What a preset decides: setting one of these by hand makes the dial custom.
const PRESET_FIELDS = ['steps', 'threshold', 'factor', 'cache'];
// Fields that change no other option: set on an untouched dial, they need no answer from the server.
const LOCAL_FIELDS = new Set(['seed', 'temperature', 'spread', 'remask']);
// Shown only before any answer and without a model description (no server yet).
const PLACEHOLDER = { max_new_tokens: 64, steps: 32, block_length: null, algorithm: 'low_confidence', temperature: 0,
  spread: 0, remask: 0, threshold: null, factor: null, cache: 'none', seed: null };
const START_THRESHOLD = 0.9; // the threshold slider's start before the server has named fast's

// The numbers in each title come from the server's answer (see presetTitles), not from here.
export const PRESETS = {
  default: { label: 'Default', title: 'The model’s own decoding settings (its generation_config)' },
  fast: { label: 'Fast', title: 'Few steps; every token confident enough is committed early (Fast-dLLM)' },
  balanced: { label: 'Balanced', title: 'About two tokens per step' },
  best: { label: 'Best', title: 'About one step per token' },
};

/** Blocks an options object runs in (one when its block length does not divide the length; block
 *  diffusion families tile any length, the last block partly past it). */
export function blocksOf(o, family = null) {
  const L = o.max_new_tokens, b = o.block_length;
  if (BLOCK_FAMILIES.has(family)) return b ? Math.ceil(L / b) : 1;
  return b && b < L && L % b === 0 ? L / b : 1;
}

export class Dial {
  /** el: container. options.length: whether length is a setting (infill and Sudoku fix it). */
  constructor(el, { key = 'diffuse', onChange = () => {}, length = true, maxLength = 512 } = {}) {
    this.key = key;
    this.onChange = onChange;
    this.hasLength = length;
    this.maxLength = maxLength;
    this.model = null; // the /api/models entry
    this.template = null; // infill: the template, which fixes the length
    this.positions = null; // infill: the masked tokens to fill
    this.preset = 'default'; // the preset the fields sit on ('default': none, the model's own)
    this.set = {}; // the fields the user set, by GenerationOptions name
    this.slow = false;
    this.resolved = null; // the latest /api/resolve answer for this model
    this.error = null; // the latest /api/resolve refusal
    this.seq = 0;
    this.timer = null;
    this.asking = false;
    this.waiters = [];
    try {
      const saved = JSON.parse(localStorage.getItem(`${STORAGE}.${key}`) || '{}');
      if (PRESETS[saved.preset]) this.preset = saved.preset;
      if (saved.set && typeof saved.set === 'object') this.set = saved.set;
      this.slow = !!saved.slow;
    } catch { /* fresh */ }
    try { localStorage.removeItem(`unmask.dial.${key}`); } catch { /* v1's resolved copy, no longer read */ }
    this.build(el);
    this.sync();
  }

  build(el) {
    el.classList.add('dial');
    this.controls = {};
    this.presets = segmented(Object.entries(PRESETS).map(([value, p]) => ({ value, label: p.label, title: p.title })),
      this.pressed, v => this.applyPreset(v), 'Presets');
    const row = (label, control, out, param, hint) => {
      const wrap = h('div.dial-row', { dataset: { param } }, h('div.dial-head', {}, h('label', {}, label), out || null), control, hint || null);
      this.controls[param] = wrap;
      return wrap;
    };
    this.lengthOut = h('output.num');
    this.length = h('input', { type: 'range', min: '8', max: String(this.maxLength), step: '8', 'aria-label': 'Length in tokens' });
    this.length.addEventListener('input', () => this.setLength(Number(this.length.value)));
    this.stepsOut = h('output.num');
    this.steps = h('input', { type: 'range', min: '1', step: '1', 'aria-label': 'Steps (model passes)' });
    this.steps.addEventListener('input', () => this.change({ steps: Number(this.steps.value) }));
    this.block = h('select', { 'aria-label': 'Block length' });
    this.block.addEventListener('change', () => this.setBlock(Number(this.block.value) || 0));
    this.algorithm = h('select', { 'aria-label': 'Algorithm' }, ALGORITHMS.map(a => h('option', { value: a.value, title: a.title }, a.label)));
    this.algorithm.addEventListener('change', () => this.setAlgorithm(this.algorithm.value));
    this.tempOut = h('output.num');
    this.temp = h('input', { type: 'range', min: '0', max: '1.5', step: '0.05', 'aria-label': 'Temperature' });
    this.temp.addEventListener('input', () => this.change({ temperature: Number(this.temp.value) }));
    this.spreadOut = h('output.num');
    this.spread = h('input', { type: 'range', min: '0', max: '8', step: '1', 'aria-label': 'Spread' });
    this.spread.addEventListener('input', () => this.change({ spread: Number(this.spread.value) }));
    this.remaskOut = h('output.num');
    this.remask = h('input', { type: 'range', min: '0', max: '0.5', step: '0.05', 'aria-label': 'Remask' });
    this.remask.addEventListener('input', () => this.change({ remask: Number(this.remask.value) }));
    this.thresholdOn = h('input', { type: 'checkbox', 'aria-label': 'Use a confidence threshold' });
    this.thresholdOn.addEventListener('change', () => this.setThreshold(this.thresholdOn.checked));
    this.threshold = h('input', { type: 'range', min: '0.5', max: '0.99', step: '0.01', 'aria-label': 'Threshold' });
    this.threshold.addEventListener('input', () => this.change({ threshold: Number(this.threshold.value) }));
    this.thresholdOut = h('output.num');
    this.editOut = h('output.num');
    this.edit = h('input', { type: 'range', min: '0', max: '0.95', step: '0.01', 'aria-label': 'Token editing' });
    this.edit.addEventListener('input', () => this.change({ edit_threshold: Number(this.edit.value) || null }));
    this.seed = h('input', { type: 'number', min: '0', step: '1', placeholder: 'random', 'aria-label': 'Seed' });
    this.seedError = null; // what is wrong with the seed typed, while it is wrong (nothing is sent then)
    this.seed.addEventListener('input', () => this.takeSeed(false));
    this.seed.addEventListener('change', () => this.takeSeed(true));
    this.slowBox = h('input', { type: 'checkbox', 'aria-label': 'Slow motion' });
    this.slowBox.addEventListener('change', () => { this.slow = this.slowBox.checked; this.save(); });
    this.perStep = h('span.dial-hint');
    this.statusEl = h('p.dial-hint.dial-status', { role: 'status', 'aria-live': 'polite' });

    el.append(...[
      h('div.dial-top', {}, h('h2.panel-title', {}, 'Dial'), this.presets.el),
      this.hasLength ? row('Length', this.length, this.lengthOut, 'max_new_tokens') : null,
      row('Steps', this.steps, this.stepsOut, 'steps', this.perStep),
      this.hasLength ? row('Block length', this.block, null, 'block_length', h('span.dial-hint', {}, 'Blocks are denoised left to right; inside a block, any order.')) : null,
      row('Algorithm', this.algorithm, null, 'algorithm', h('span.dial-hint.algo-hint')),
      row('Temperature', this.temp, this.tempOut, 'temperature'),
      row('Spread', this.spread, this.spreadOut, 'spread',
        h('span.dial-hint', {}, 'Tokens committed in the same step stay more than this many positions apart, so neighbours see each other first.')),
      row('Remask', this.remask, this.remaskOut, 'remask',
        h('span.dial-hint.remask-hint')),
      row(h('span.inline-check', {}, this.thresholdOn, ' Threshold'), this.threshold, this.thresholdOut, 'threshold',
        h('span.dial-hint.threshold-hint')),
      row('Token editing', this.edit, this.editOut, 'edit_threshold',
        h('span.dial-hint', {}, 'LLaDA2.1: a written token is replaced when the model is surer than this of another.')),
      h('div.dial-pair', {}, row('Seed', this.seed, null, 'seed'),
        h('label.toggle', { title: 'Hold every step on screen for a moment' }, this.slowBox, h('span', {}, 'Slow motion'))),
      this.statusEl,
    ].filter(Boolean));
    this.el = el;
  }

  // --- what the user does -------------------------------------------------------------------

  /** A preset decides steps, threshold and cache again; the user's other fields stay beside it. */
  applyPreset(name) {
    this.preset = name;
    for (const f of PRESET_FIELDS) delete this.set[f];
    this.update(0);
  }

  /** Fields set by hand (null: back to the model's). */
  change(fields, delay = RESOLVE_DELAY_MS) {
    for (const [k, v] of Object.entries(fields)) {
      if (v == null) delete this.set[k];
      else this.set[k] = v;
    }
    this.update(delay);
  }

  /** The seed field: empty = random; a whole number 0 or more is the seed; anything else is
   *  refused where it was typed (the field keeps it, outlined, and no run starts until it is fixed). */
  takeSeed(commit) {
    const raw = this.seed.value.trim();
    const ok = !this.seed.validity.badInput && (raw === '' || (/^\d+$/.test(raw) && Number(raw) <= Number.MAX_SAFE_INTEGER));
    const was = this.seedError;
    this.seedError = ok ? null : `Seed: a whole number, 0 or more (${Number.MAX_SAFE_INTEGER} at most), or empty for a random one; “${raw || this.seed.value || 'that'}” is not one.`;
    if (ok && commit) this.change({ seed: raw === '' ? null : Number(raw) });
    else if (was !== this.seedError || !ok) this.sync();
  }

  /** Whether a run may start with these fields; if not, the field at fault is pointed at. */
  ready() {
    if (!this.seedError) return true;
    this.sync();
    this.flag('seed');
    this.seed.focus();
    return false;
  }

  setLength(n) {
    const b = this.set.block_length;
    const aligned = BLOCK_FAMILIES.has(this.model?.family);
    // The block sizes offered divide the length (block diffusion: any block up to the length).
    if (b && (aligned ? b > n : n % b || b >= n)) delete this.set.block_length;
    delete this.set.steps; // the server sets steps for the new length (the preset's share, or the model's)
    this.change({ max_new_tokens: n });
  }

  /** b: tokens per block; 0 = one block, as long as the canvas. */
  setBlock(b) {
    delete this.set.steps; // steps come in whole steps per block: the server sets them again
    this.change({ block_length: b }, 0);
  }

  setAlgorithm(value) {
    if (!THRESHOLD_ALGORITHMS.has(value) && this.thresholdInEffect()) this.leaveThreshold();
    this.change({ algorithm: value }, 0);
  }

  setThreshold(on) {
    if (on) {
      // The ranking follows on the server: a threshold needs a confidence score (the family's).
      if (this.set.algorithm && !THRESHOLD_ALGORITHMS.has(this.set.algorithm)) delete this.set.algorithm;
      this.change({ threshold: this.presetOf('fast')?.threshold ?? START_THRESHOLD }, 0);
    } else {
      this.leaveThreshold();
      this.update(0);
    }
  }

  /** Drop the threshold. A preset's cannot be unset beside it, so the dial leaves the preset and
   *  keeps what it showed (steps, cache) as set by hand. */
  leaveThreshold() {
    delete this.set.threshold;
    delete this.set.factor;
    const p = this.preset !== 'default' ? this.presetOf(this.preset) : null;
    if (p && (p.threshold != null || p.factor != null)) {
      const shown = this.options;
      this.preset = 'default';
      this.set.steps = shown.steps;
      if (shown.cache && shown.cache !== 'none') this.set.cache = shown.cache;
    }
  }

  /** Take a model's description (from /api/models): its name for the server, its family, its defaults. */
  setModel(info) {
    this.model = info || null;
    this.resolved = null; // an answer was for the model before
    this.error = null;
    const family = info?.family || null;
    const allowed = BLOCK_ALGORITHMS[family] || ALGORITHMS.map(a => a.value).filter(a => a !== 'sequential' && (a !== 'origin' || family === 'dream'));
    for (const option of this.algorithm.options) option.disabled = option.hidden = !allowed.includes(option.value);
    if (this.set.algorithm && !allowed.includes(this.set.algorithm)) delete this.set.algorithm;
    // Block diffusion takes neither spread nor remask; only LLaDA2 edits tokens.
    const block = BLOCK_FAMILIES.has(family);
    for (const f of ['spread', 'remask']) {
      this.controls[f].hidden = block;
      if (block) delete this.set[f];
    }
    this.controls.edit_threshold.hidden = family !== 'llada2';
    // DiffusionGemma accepts by an entropy bound: no confidence threshold.
    this.controls.threshold.hidden = family === 'diffusion-gemma';
    if (family === 'diffusion-gemma') delete this.set.threshold;
    if (family !== 'llada2') delete this.set.edit_threshold;
    this.update(0, { save: false, notify: false });
  }

  /** Infill: the template (it fixes the length) and the positions to fill in it. */
  setTemplate(template, positions) {
    this.template = positions > 0 ? template : null;
    this.positions = positions;
    this.update(RESOLVE_DELAY_MS, { save: false, notify: false });
  }

  // --- what goes to the server -----------------------------------------------------------------

  /** The preset and the fields the user set: the body of /api/resolve, and of /api/diffuse
   *  (with the text), so the run resolves exactly what the dial shows. */
  request() {
    const out = {};
    if (this.preset !== 'default') out.preset = this.preset;
    for (const [k, v] of Object.entries(this.set)) if (v != null) out[k] = v;
    if (!this.hasLength) {
      delete out.max_new_tokens;
      delete out.block_length;
    } else if (out.block_length === 0) {
      out.block_length = out.max_new_tokens ?? this.base.max_new_tokens; // one block, as long as the canvas
    }
    if (this.thresholdInEffect(out)) {
      delete out.remask; // kept for later: remask needs a step count per pass, a threshold decides instead
      if (out.algorithm && !THRESHOLD_ALGORITHMS.has(out.algorithm)) delete out.algorithm;
    }
    return out;
  }

  /** Whether a threshold (or factor) decides the commits: set by hand, or by the preset (as the server said). */
  thresholdInEffect(fields = { preset: this.preset !== 'default' ? this.preset : undefined, ...this.set }) {
    if (fields.threshold != null || fields.factor != null) return true;
    const p = fields.preset ? this.presetOf(fields.preset) : null;
    return !!p && (p.threshold != null || p.factor != null);
  }

  presetOf(name) { return this.resolved?.presets?.[name] || null; }

  /** Whether the shown values need an answer: a model's defaults from /api/models are its
   *  resolved options for no fields, so an untouched dial on a model not loaded yet does not ask
   *  (/api/resolve would load it). */
  needsServer() {
    if (!this.model) return false;
    if (this.model.loaded || this.template != null || this.preset !== 'default' || !this.model.defaults) return true;
    return Object.keys(this.set).some(k => !LOCAL_FIELDS.has(k));
  }

  update(delay, { save = true, notify = true } = {}) {
    if (save) this.save();
    clearTimeout(this.timer);
    this.timer = null;
    if (this.needsServer()) this.timer = setTimeout(() => this.ask(), delay);
    else this.seq++; // an answer still on its way is for other fields
    this.sync();
    if (notify) this.onChange();
    this.idle();
  }

  /** Ask /api/resolve; only the answer to the latest question is shown (slider moves do not race). */
  async ask() {
    this.timer = null;
    const seq = ++this.seq;
    this.controller?.abort();
    const controller = this.controller = new AbortController();
    let fields = this.request();
    let body = { model: this.model.name, ...fields };
    if (this.template != null) body.template = this.template;
    this.asking = true;
    this.el.setAttribute('aria-busy', 'true');
    try {
      let answer = null;
      for (let tries = 0; !answer; tries++) {
        try {
          answer = await postJSON('/api/resolve', body, { signal: controller.signal });
        } catch (err) {
          // /api/resolve also works out every preset with these fields, so a field that one preset
          // cannot take (remask, or a ranking no threshold can use, beside fast's threshold) fails
          // the whole answer. request() has left out what the chosen preset cannot take; ask again
          // without it: it changes no other option, and it is shown as set.
          if (err.status === 400 && tries < 2 && (err.param === 'remask' || err.param === 'algorithm') && err.param in body) {
            body = { ...body };
            delete body[err.param];
            continue;
          }
          throw err;
        }
      }
      if (seq !== this.seq) return;
      // Steps set by hand that are not whole steps per block (set before the blocks changed) come
      // back rounded up by the server (engine/resolve.py); the dial shows and sends that count.
      const steps = answer.options?.steps;
      if (this.set.steps != null && steps != null && steps !== this.set.steps) {
        this.set.steps = steps;
        this.save();
        fields = this.request();
      }
      this.resolved = { ...answer, fields };
      this.error = null;
      // The first answer names what each preset sets (a threshold or not); if that changes what to send, ask again.
      if (JSON.stringify(this.request()) !== JSON.stringify(fields)) {
        this.timer = setTimeout(() => this.ask(), 0);
      }
    } catch (err) {
      if (err.name === 'AbortError' || seq !== this.seq) return;
      this.error = err;
    } finally {
      if (seq === this.seq) {
        this.asking = false;
        this.el.removeAttribute('aria-busy');
        this.sync();
        this.idle();
      }
    }
  }

  /** Whether an answer is still to come. */
  get pending() { return !!this.timer || (this.asking && this.needsServer()); }

  /** Resolves once the dial shows the answer to its latest fields. */
  settled() { return this.pending ? new Promise(resolve => this.waiters.push(resolve)) : Promise.resolve(); }

  idle() {
    if (this.pending) return;
    if (!this.needsServer()) {
      this.asking = false; // an answer still on its way is for fields no longer shown
      this.el.removeAttribute('aria-busy');
    }
    for (const w of this.waiters.splice(0)) w();
  }

  // --- what the dial shows -------------------------------------------------------------------------

  /** The options before the fields just set: the server's answer, or the model's defaults. */
  get base() { return this.resolved?.options || this.model?.defaults || PLACEHOLDER; }

  /** What the dial shows: the server's answer, with what was just set on top until its answer comes
   *  (the server keeps every field set, so the two agree once it does). */
  get options() {
    const now = this.request();
    const out = { ...PLACEHOLDER, ...this.base };
    // A field the answer was for and since cleared (threshold unticked): the model's own meanwhile.
    for (const k of Object.keys(this.resolved?.fields || {})) {
      if (!(k in now) && k in out) out[k] = this.model?.defaults?.[k] ?? PLACEHOLDER[k];
    }
    Object.assign(out, now);
    delete out.preset;
    return out;
  }

  /** The button to show pressed: the preset, unless something it decides was set by hand ('custom'). */
  get pressed() { return PRESET_FIELDS.some(f => this.set[f] != null) ? 'custom' : this.preset; }

  /** Positions to fill: the length, or (infill) the gaps. */
  get fill() { return this.hasLength ? this.options.max_new_tokens : (this.positions || this.options.max_new_tokens); }

  sync() {
    const o = this.options;
    const L = this.fill;
    const family = this.model?.family || null;
    const aligned = BLOCK_FAMILIES.has(family);
    const blocks = this.hasLength ? blocksOf(o, family) : 1;
    this.presets.set(this.pressed);
    this.presetTitles();
    this.length.value = String(o.max_new_tokens);
    this.lengthOut.textContent = `${o.max_new_tokens} tokens`;
    this.steps.min = String(blocks);
    this.steps.max = String(Math.max(L, o.steps));
    this.steps.step = String(blocks);
    this.steps.value = String(o.steps);
    this.stepsOut.textContent = String(o.steps);
    const per = L / o.steps;
    const decides = o.threshold != null || o.factor != null;
    this.perStep.textContent = `${Number.isInteger(per) ? per : per.toFixed(1)} token${per === 1 ? '' : 's'} per step${decides ? ' (at most; the threshold may finish sooner)' : ''}${blocks > 1 ? ` · ${blocks} blocks` : ''}`;
    const sizes = new Set(BLOCK_SIZES);
    if (o.block_length) sizes.add(o.block_length);
    const len = o.max_new_tokens;
    const fits = b => (aligned ? b <= len : b < len && len % b === 0);
    this.block.replaceChildren(...(aligned ? [] : [h('option', { value: '' }, 'One block')]),
      ...[...sizes].sort((a, b) => a - b).filter(fits).map(b => h('option', { value: String(b) }, `${b} tokens · ${Math.ceil(len / b)} blocks`)));
    this.block.value = blocks > 1 ? String(o.block_length) : '';
    this.algorithm.value = o.algorithm;
    this.el.querySelector('.algo-hint').textContent = ALGORITHMS.find(a => a.value === o.algorithm)?.title || '';
    this.temp.value = String(o.temperature ?? 0);
    this.tempOut.textContent = o.temperature ? o.temperature.toFixed(2) : 'greedy';
    this.spread.value = String(o.spread || 0);
    this.spreadOut.textContent = o.spread ? String(o.spread) : 'off';
    this.remask.value = String(o.remask || 0);
    this.remaskOut.textContent = o.remask ? o.remask.toFixed(2) : 'off';
    this.remask.disabled = decides;
    this.el.querySelector('.remask-hint').textContent = decides
      ? 'Off while a threshold decides how many tokens each step commits.'
      : 'Tokens the model later doubts below this probability are decoded again, when steps commit several.';
    this.thresholdOn.checked = o.threshold != null;
    this.threshold.disabled = o.threshold == null;
    this.threshold.value = String(o.threshold ?? this.presetOf('fast')?.threshold ?? START_THRESHOLD);
    this.thresholdOut.textContent = o.threshold != null ? o.threshold.toFixed(2) : 'off';
    this.edit.value = String(o.edit_threshold || 0);
    this.editOut.textContent = o.edit_threshold ? o.edit_threshold.toFixed(2) : 'off';
    this.el.querySelector('.threshold-hint').textContent = THRESHOLD_ALGORITHMS.has(o.algorithm)
      ? 'Also commit every token at least this confident (parallel decoding).'
      : 'Turning it on switches to the model family’s confidence ranking.';
    // Not while it is being typed in: an answer arriving meanwhile would wipe the digits.
    // Nor while it holds a seed refused (the field keeps what was typed, outlined, until it is fixed).
    if (document.activeElement !== this.seed && !this.seedError) this.seed.value = o.seed == null ? '' : String(o.seed);
    this.slowBox.checked = this.slow;
    for (const r of [this.length, this.steps, this.temp, this.spread, this.remask, this.threshold, this.edit]) paintRange(r);
    for (const c of Object.values(this.controls)) c.classList.remove('invalid');
    const problem = this.seedError || this.error?.message || '';
    this.statusEl.replaceChildren(...prose(problem));
    this.statusEl.hidden = !problem;
    if (this.error?.param) this.flag(this.error.param, { scroll: false });
    if (this.seedError) this.flag('seed', { scroll: false });
  }

  /** Each preset's tooltip says what the server resolves it to here (steps, threshold, cache). */
  presetTitles() {
    for (const button of this.presets.el.querySelectorAll('button[data-value]')) {
      const name = button.dataset.value;
      const p = name === 'default' ? null : this.presetOf(name);
      const bits = p ? [`${p.steps} steps`, p.threshold != null ? `threshold ${p.threshold}` : null, p.cache && p.cache !== 'none' ? `${p.cache} cache` : null] : [];
      button.title = PRESETS[name].title + (p ? ` · here: ${bits.filter(Boolean).join(', ')}` : '');
    }
  }

  save() {
    try { localStorage.setItem(`${STORAGE}.${this.key}`, JSON.stringify({ preset: this.preset, set: this.set, slow: this.slow })); } catch { /* private mode */ }
  }

  get paceMs() { return this.slow ? 140 : 0; }

  /** Point at the control an error names (the server's `param`). */
  flag(param, { scroll = true } = {}) {
    const key = { max_tokens: 'max_new_tokens', max_new_tokens: 'max_new_tokens' }[param] || param;
    const row = this.controls[key];
    if (!row) return false;
    row.classList.add('invalid');
    if (scroll) row.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    return true;
  }
}
