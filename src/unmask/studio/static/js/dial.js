// The dial: the decoding settings that matter for diffusion (length, steps, block length,
// algorithm, temperature, spread, remask, threshold), with presets matching the CLI's --preset. Until the
// user touches it, the dial shows the model's own decoding defaults (its generation_config).

import { h, paintRange, segmented } from './ui.js';

export const ALGORITHMS = [
  { value: 'low_confidence', label: 'Confidence', title: 'Commit the tokens the model is surest of (LLaDA)' },
  { value: 'maskgit_plus', label: 'MaskGIT+', title: 'Top-1 probability (Dream’s maskgit_plus)' },
  { value: 'topk_margin', label: 'Margin', title: 'Gap between the two likeliest tokens' },
  { value: 'entropy', label: 'Entropy', title: 'Lowest entropy first (Dream’s default)' },
  { value: 'random', label: 'Random', title: 'Any order: shows why the order matters' },
  { value: 'origin', label: 'Origin', title: 'Dream’s original random-transfer sampler (Dream only)' },
];
const THRESHOLD_ALGORITHMS = new Set(['maskgit_plus', 'low_confidence', 'topk_margin']);
const FAST_THRESHOLD = 0.9; // Fast-dLLM's value (arXiv:2505.22618), as the CLI's fast preset
const BLOCK_SIZES = [4, 8, 16, 32, 64, 128, 256];
const STORAGE = 'unmask.dial';

export function roundSteps(steps, blocks) {
  return Math.max(blocks, Math.round(steps / blocks) * blocks);
}

export const PRESETS = {
  fast: { label: 'Fast', title: 'A quarter of the steps, committing every token above 90% confidence (Fast-dLLM)' },
  balanced: { label: 'Balanced', title: 'Two tokens per step' },
  best: { label: 'Best', title: 'One token per step' },
};

/** The preset's settings for a length and block length (what `unmask run --preset` does). */
export function presetSettings(name, length, block, family) {
  const blocks = length / (block || length);
  if (name === 'fast') {
    return { steps: roundSteps(Math.floor(length / 4), blocks), threshold: FAST_THRESHOLD,
      algorithm: family === 'dream' ? 'maskgit_plus' : 'low_confidence', cache: block ? 'dual' : 'none' };
  }
  if (name === 'balanced') return { steps: roundSteps(Math.floor(length / 2), blocks), threshold: null, cache: 'none' };
  return { steps: length, threshold: null, cache: 'none' };
}

export class Dial {
  /** el: container. options.length: whether length is a setting (infill and Sudoku fix it). */
  constructor(el, { key = 'diffuse', onChange = () => {}, length = true, maxLength = 512 } = {}) {
    this.key = key;
    this.onChange = onChange;
    this.hasLength = length;
    this.family = 'llada';
    this.state = { preset: 'balanced', max_new_tokens: 64, steps: 32, block_length: null, algorithm: 'low_confidence',
      temperature: 0, spread: 0, remask: 0, threshold: null, seed: null, cache: 'none', slow: false };
    try { Object.assign(this.state, JSON.parse(localStorage.getItem(`${STORAGE}.${key}`) || '{}')); } catch { /* fresh */ }
    this.maxLength = maxLength;
    this.build(el);
    this.sync();
  }

  build(el) {
    el.classList.add('dial');
    this.controls = {};
    this.presets = segmented(Object.entries(PRESETS).map(([value, p]) => ({ value, label: p.label, title: p.title })),
      this.state.preset, v => this.applyPreset(v), 'Presets');
    const row = (label, control, out, param, hint) => {
      const wrap = h('div.dial-row', { dataset: { param } }, h('div.dial-head', {}, h('label', {}, label), out || null), control, hint || null);
      this.controls[param] = wrap;
      return wrap;
    };
    this.lengthOut = h('output.num');
    this.length = h('input', { type: 'range', min: '8', max: String(this.maxLength), step: '8', 'aria-label': 'Length in tokens' });
    this.length.addEventListener('input', () => { this.state.max_new_tokens = Number(this.length.value); this.fitToLength(); this.custom(); });
    this.stepsOut = h('output.num');
    this.steps = h('input', { type: 'range', min: '1', step: '1', 'aria-label': 'Steps (model passes)' });
    this.steps.addEventListener('input', () => { this.state.steps = Number(this.steps.value); this.fitSteps(); this.custom(); });
    this.block = h('select', { 'aria-label': 'Block length' });
    this.block.addEventListener('change', () => { this.state.block_length = Number(this.block.value) || null; this.fitSteps(); this.custom(); });
    this.algorithm = h('select', { 'aria-label': 'Algorithm' }, ALGORITHMS.map(a => h('option', { value: a.value, title: a.title }, a.label)));
    this.algorithm.addEventListener('change', () => { this.state.algorithm = this.algorithm.value; if (!THRESHOLD_ALGORITHMS.has(this.state.algorithm)) this.state.threshold = null; this.custom(); });
    this.tempOut = h('output.num');
    this.temp = h('input', { type: 'range', min: '0', max: '1.5', step: '0.05', 'aria-label': 'Temperature' });
    this.temp.addEventListener('input', () => { this.state.temperature = Number(this.temp.value); this.custom(); });
    this.spreadOut = h('output.num');
    this.spread = h('input', { type: 'range', min: '0', max: '8', step: '1', 'aria-label': 'Spread' });
    this.spread.addEventListener('input', () => { this.state.spread = Number(this.spread.value); this.custom(); });
    this.remaskOut = h('output.num');
    this.remask = h('input', { type: 'range', min: '0', max: '0.5', step: '0.05', 'aria-label': 'Remask' });
    this.remask.addEventListener('input', () => { this.state.remask = Number(this.remask.value); this.custom(); });
    this.thresholdOn = h('input', { type: 'checkbox', 'aria-label': 'Use a confidence threshold' });
    this.thresholdOn.addEventListener('change', () => { this.state.threshold = this.thresholdOn.checked ? FAST_THRESHOLD : null; if (this.state.threshold && !THRESHOLD_ALGORITHMS.has(this.state.algorithm)) this.state.algorithm = 'low_confidence'; this.custom(); });
    this.threshold = h('input', { type: 'range', min: '0.5', max: '0.99', step: '0.01', 'aria-label': 'Threshold' });
    this.threshold.addEventListener('input', () => { this.state.threshold = Number(this.threshold.value); this.custom(); });
    this.thresholdOut = h('output.num');
    this.seed = h('input', { type: 'number', min: '0', step: '1', placeholder: 'random', 'aria-label': 'Seed' });
    this.seed.addEventListener('change', () => { this.state.seed = this.seed.value === '' ? null : Math.max(0, Math.floor(Number(this.seed.value))); this.save(); this.onChange(); });
    this.slow = h('input', { type: 'checkbox', 'aria-label': 'Slow motion' });
    this.slow.addEventListener('change', () => { this.state.slow = this.slow.checked; this.save(); });
    this.perStep = h('span.dial-hint');

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
      h('div.dial-pair', {}, row('Seed', this.seed, null, 'seed'),
        h('label.toggle', { title: 'Hold every step on screen for a moment' }, this.slow, h('span', {}, 'Slow motion'))),
    ].filter(Boolean));
    this.el = el;
  }

  /** Take a model's defaults (from /api/models) and family. */
  setModel(info) {
    const fam = info?.family || 'llada';
    this.family = fam;
    const originOption = this.algorithm.querySelector('option[value="origin"]');
    originOption.disabled = fam !== 'dream';
    if (this.state.algorithm === 'origin' && fam !== 'dream') this.state.algorithm = 'entropy';
    if (!this.state.touched && info?.defaults) {
      const d = info.defaults;
      if (d.algorithm) this.state.algorithm = d.algorithm;
      this.state.temperature = d.temperature ?? 0;
      this.state.spread = d.spread ?? 0;
      this.state.remask = d.remask ?? 0;
      if (this.hasLength && d.max_new_tokens) this.state.max_new_tokens = Math.min(this.maxLength, d.max_new_tokens);
      if (this.hasLength) this.state.block_length = d.block_length || null; // dropped if it does not divide
    }
    this.fitToLength();
    this.sync();
  }

  /** Fix the length (infill: the gaps; Sudoku: the blanks) for the steps slider. */
  setFixedLength(n) {
    this.fixedLength = n;
    this.fitToLength();
    this.sync();
  }

  get length_() { return this.hasLength ? this.state.max_new_tokens : (this.fixedLength || 16); }

  applyPreset(name) {
    this.state.preset = name;
    Object.assign(this.state, presetSettings(name, this.length_, this.hasLength ? this.state.block_length : null, this.family));
    this.state.touched = true;
    this.fitSteps();
    this.sync();
    this.save();
    this.onChange();
  }

  custom() {
    this.state.touched = true;
    const p = this.state.preset;
    if (p && p !== 'custom') {
      const want = presetSettings(p, this.length_, this.hasLength ? this.state.block_length : null, this.family);
      if (want.steps !== this.state.steps || (want.threshold ?? null) !== (this.state.threshold ?? null)) this.state.preset = 'custom';
    }
    this.sync();
    this.save();
    this.onChange();
  }

  fitToLength() {
    const L = this.state.max_new_tokens;
    if (this.state.block_length && (L % this.state.block_length || this.state.block_length >= L)) this.state.block_length = null;
    if (this.state.preset && this.state.preset !== 'custom') {
      Object.assign(this.state, presetSettings(this.state.preset, this.length_, this.hasLength ? this.state.block_length : null, this.family));
    }
    this.fitSteps();
  }

  fitSteps() {
    const L = this.length_;
    const blocks = this.hasLength && this.state.block_length ? L / this.state.block_length : 1;
    this.state.steps = Math.min(L, roundSteps(this.state.steps || L, blocks));
  }

  sync() {
    const s = this.state;
    const L = this.length_;
    this.presets.set(s.preset);
    this.length.value = String(s.max_new_tokens);
    this.lengthOut.textContent = `${s.max_new_tokens} tokens`;
    const blocks = this.hasLength && s.block_length ? L / s.block_length : 1;
    this.steps.min = String(blocks);
    this.steps.max = String(L);
    this.steps.step = String(blocks);
    this.steps.value = String(s.steps);
    this.stepsOut.textContent = String(s.steps);
    const per = L / s.steps;
    this.perStep.textContent = `${Number.isInteger(per) ? per : per.toFixed(1)} token${per === 1 ? '' : 's'} per step${s.threshold ? ' (at most; the threshold may finish sooner)' : ''}`;
    this.block.replaceChildren(h('option', { value: '' }, 'One block'),
      ...BLOCK_SIZES.filter(b => b < s.max_new_tokens && s.max_new_tokens % b === 0).map(b => h('option', { value: String(b) }, `${b} tokens · ${s.max_new_tokens / b} blocks`)));
    this.block.value = s.block_length ? String(s.block_length) : '';
    this.algorithm.value = s.algorithm;
    this.el.querySelector('.algo-hint').textContent = ALGORITHMS.find(a => a.value === s.algorithm)?.title || '';
    this.temp.value = String(s.temperature);
    this.tempOut.textContent = s.temperature ? s.temperature.toFixed(2) : 'greedy';
    this.spread.value = String(s.spread || 0);
    this.spreadOut.textContent = s.spread ? String(s.spread) : 'off';
    this.remask.value = String(s.remask || 0);
    this.remaskOut.textContent = s.remask ? s.remask.toFixed(2) : 'off';
    this.remask.disabled = s.threshold != null;
    this.el.querySelector('.remask-hint').textContent = s.threshold != null
      ? 'Off while a threshold decides how many tokens each step commits.'
      : 'Tokens the model later doubts below this probability are decoded again, when steps commit several.';
    const canThreshold = THRESHOLD_ALGORITHMS.has(s.algorithm);
    this.thresholdOn.checked = s.threshold != null;
    this.thresholdOn.disabled = false;
    this.threshold.disabled = s.threshold == null;
    this.threshold.value = String(s.threshold ?? FAST_THRESHOLD);
    this.thresholdOut.textContent = s.threshold != null ? s.threshold.toFixed(2) : 'off';
    this.el.querySelector('.threshold-hint').textContent = canThreshold
      ? 'Also commit every token at least this confident (parallel decoding).'
      : 'Turning it on switches the algorithm to Confidence.';
    this.seed.value = s.seed == null ? '' : String(s.seed);
    this.slow.checked = !!s.slow;
    for (const r of [this.length, this.steps, this.temp, this.spread, this.remask, this.threshold]) paintRange(r);
    for (const c of Object.values(this.controls)) c.classList.remove('invalid');
  }

  save() {
    try { localStorage.setItem(`${STORAGE}.${this.key}`, JSON.stringify(this.state)); } catch { /* private mode */ }
  }

  /** The request fields for /api/generate. */
  values() {
    const s = this.state;
    const out = { steps: s.steps, algorithm: s.algorithm, temperature: s.temperature, spread: s.spread || 0 };
    if (this.hasLength) {
      out.max_new_tokens = s.max_new_tokens;
      if (s.block_length) out.block_length = s.block_length;
      if (s.cache && s.cache !== 'none' && s.block_length) out.cache = s.cache;
    }
    if (s.threshold != null && THRESHOLD_ALGORITHMS.has(s.algorithm)) out.threshold = s.threshold;
    else out.remask = s.remask || 0; // with a threshold it is left out, and the model's default gives way
    if (s.seed != null) out.seed = s.seed;
    return out;
  }

  get paceMs() { return this.state.slow ? 140 : 0; }

  /** Point at the control an error names (the server's `param`). */
  flag(param) {
    const key = { max_tokens: 'max_new_tokens', max_new_tokens: 'max_new_tokens' }[param] || param;
    const row = this.controls[key];
    if (!row) return false;
    row.classList.add('invalid');
    row.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    return true;
  }
}
