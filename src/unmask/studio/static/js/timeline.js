// Timeline: a scrubber over a run's steps (live while it streams, replayable after), with a
// sparkline of how many tokens each step committed; and the filmstrip of a few steps side by side.

import { h, icon, paintRange } from './ui.js';

const PLAY_STEP_MS = 70; // replay speed: one step per this many ms (long runs are compressed)
const PLAY_MAX_MS = 6000; // a replay never takes longer than this

export class Timeline {
  /** onSeek(k): show step k. onLive(): follow the live run again. */
  constructor(el, { onSeek, label = 'Step' } = {}) {
    this.onSeek = onSeek;
    this.run = null;
    this.live = false;
    this.following = true;
    this.playing = null;
    this.current = 0;
    this.playBtn = h('button.play', { type: 'button', 'aria-label': 'Play the replay (Space)', title: 'Play (Space)', onclick: () => this.toggle() }, icon('play'));
    this.range = h('input', { type: 'range', min: '0', max: '0', value: '0', step: '1', 'aria-label': `${label} to show`, class: 'scrubber' });
    this.range.addEventListener('input', () => {
      this.stop();
      const k = Number(this.range.value);
      if (this.live && this.run && k >= this.run.lastStep) { this.follow(); return; } // dragged to the run's edge: follow it
      this.following = false;
      this.seek(k);
    });
    this.range.addEventListener('keydown', e => e.stopPropagation());
    this.spark = h('canvas.spark', { 'aria-hidden': 'true' });
    this.readout = h('div.readout', { 'aria-live': 'off' });
    this.liveBadge = h('button.live-badge', { type: 'button', hidden: true, 'aria-pressed': 'true', title: 'Follow the live run', onclick: () => this.follow() }, 'live');
    el.classList.add('timeline');
    el.append(this.playBtn, h('div.track', {}, this.range, this.spark), h('div.readout-wrap', {}, this.readout, this.liveBadge));
    this.el = el;
    this.resize = new ResizeObserver(() => this.drawSpark());
    this.resize.observe(this.spark);
    this.setRun(null);
  }

  setRun(run, { live = false } = {}) {
    this.stop();
    this.run = run;
    this.live = live;
    this.following = true;
    this.liveBadge.hidden = !live;
    this.el.classList.toggle('empty', !run);
    this.range.disabled = !run;
    this.playBtn.disabled = !run;
    this.update(0);
  }

  /** A new step was displayed live. */
  advance(k) {
    if (!this.run) return;
    if (this.following) this.update(k);
    else this.update(this.current);
  }

  endLive() {
    this.live = false;
    this.liveBadge.hidden = true;
    this.update(this.current);
  }

  follow() {
    this.following = true;
    this.liveBadge.setAttribute('aria-pressed', 'true');
    if (this.run) this.seek(this.run.lastStep);
  }

  update(k) {
    const run = this.run;
    // Live, the track is the whole run (its planned steps), so the thumb is where the run is;
    // once it is over, the steps it took. Either way no step past the last one received is shown.
    const max = !run ? 0 : this.live ? Math.max(run.totalSteps, run.lastStep) : run.lastStep;
    this.current = Math.min(k, run ? run.lastStep : 0);
    this.range.max = String(max);
    this.range.value = String(this.current);
    this.range.setAttribute('aria-valuetext', `step ${this.current} of ${run ? run.totalSteps : 0}`);
    paintRange(this.range);
    this.liveBadge.setAttribute('aria-pressed', String(this.following));
    const total = run ? run.totalSteps : 0;
    this.readout.replaceChildren('step ', h('b', {}, String(this.current)), ` / ${total}`);
    this.drawSpark();
  }

  seek(k) {
    if (!this.run) return;
    k = Math.max(0, Math.min(this.run.lastStep, k));
    if (this.live && k < this.run.lastStep) this.following = false;
    this.update(k);
    this.onSeek?.(k);
  }

  stepBy(d) { this.following = false; this.stop(); this.seek(this.current + d); }
  first() { this.following = false; this.stop(); this.seek(0); }
  last() { this.stop(); this.seek(this.run ? this.run.lastStep : 0); if (this.live) this.following = true; }

  toggle() { this.playing ? this.stop() : this.play(); }

  play() {
    const run = this.run;
    if (!run || !run.lastStep) return;
    this.following = false;
    let k = this.current >= run.lastStep ? 0 : this.current;
    const per = Math.min(PLAY_STEP_MS, PLAY_MAX_MS / Math.max(1, run.lastStep));
    let last = performance.now();
    let acc = 0;
    this.seek(k);
    this.playBtn.replaceChildren(icon('pause'));
    this.playBtn.setAttribute('aria-label', 'Pause (Space)');
    const tick = now => {
      acc += now - last;
      last = now;
      while (acc >= per && k < run.lastStep) { acc -= per; k++; }
      if (k !== this.current) this.seek(k);
      if (k >= run.lastStep) { this.stop(); return; }
      this.playing = requestAnimationFrame(tick);
    };
    this.playing = requestAnimationFrame(tick);
  }

  stop() {
    if (this.playing) cancelAnimationFrame(this.playing);
    this.playing = null;
    this.playBtn.replaceChildren(icon('play'));
    this.playBtn.setAttribute('aria-label', 'Play the replay (Space)');
  }

  drawSpark() {
    const c = this.spark;
    const w = c.clientWidth, hgt = c.clientHeight;
    if (!w || !hgt) return;
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(w * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(hgt * dpr); }
    const ctx = c.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, hgt);
    const run = this.run;
    if (!run || !run.lastStep) return;
    const counts = run.commitsPerStep();
    const total = Math.max(run.totalSteps, counts.length);
    const peak = Math.max(1, ...counts);
    const style = getComputedStyle(document.documentElement);
    const accent = style.getPropertyValue('--accent').trim() || '#a78bfa';
    const faint = style.getPropertyValue('--border-strong').trim() || '#444';
    const bw = w / total;
    for (let i = 0; i < counts.length; i++) {
      const bh = Math.max(1.5, (counts[i] / peak) * (hgt - 4));
      ctx.fillStyle = i < this.current ? accent : faint;
      ctx.globalAlpha = i === this.current - 1 ? 1 : 0.75;
      ctx.fillRect(i * bw + (bw > 3 ? 0.5 : 0), hgt - bh, Math.max(1, bw - (bw > 3 ? 1 : 0)), bh);
    }
    ctx.globalAlpha = 1;
  }
}

/** Evenly spread steps to show in a filmstrip: always the first and the last. */
export function filmSteps(last, count) {
  if (last <= 0) return [];
  if (last <= count) return Array.from({ length: last }, (_, i) => i + 1);
  const out = new Set();
  for (let j = 0; j < count; j++) out.add(Math.max(1, Math.round(1 + (j * (last - 1)) / (count - 1))));
  return [...out];
}

export class Filmstrip {
  constructor(el, { onSeek, count = 6 } = {}) {
    this.el = el;
    this.onSeek = onSeek;
    this.count = count;
    el.classList.add('filmstrip');
    el.setAttribute('aria-label', 'Filmstrip: a few steps side by side');
  }

  render(run, current = null) {
    this.el.replaceChildren();
    if (!run || !run.lastStep) return;
    for (const k of filmSteps(run.lastStep, this.count)) {
      const body = h('div');
      const pct = Math.round((1 - run.maskedFraction(k)) * 100);
      const frame = h('button.frame', { type: 'button', title: `Show step ${k}`, dataset: { step: String(k) }, onclick: () => this.onSeek?.(k) },
        h('div.frame-label', {}, h('span', {}, `step ${k}`), h('span', {}, `${pct}%`)), body);
      // The whole canvas as a mask map: late frames differ where the late tokens are, wherever they are.
      const map = new Minimap(body, { label: `Step ${k}: the cells decided` });
      map.bind(run);
      map.show(k);
      this.el.append(frame);
    }
    this.mark(current);
  }

  mark(k) {
    for (const f of this.el.children) f.classList.toggle('current', Number(f.dataset.step) === k);
  }
}

/** A mask map of the whole canvas: one small cell per region position, decided (.d), fixed (.g),
 *  an end token or its tail (.e) or still masked, at the shown step; block starts are marked (.bb). */
export class Minimap {
  constructor(el, { label = 'Mask map' } = {}) {
    this.el = el;
    el.classList.add('minimap');
    el.setAttribute('role', 'img');
    el.setAttribute('aria-label', label);
    this.label = label;
    this.run = null;
    this.cells = [];
  }

  bind(run) {
    this.run = run;
    this.cells = Array.from({ length: run.n }, (_, i) => h('i', { class: run.blockStart(i) ? 'bb' : '' }));
    this.el.replaceChildren(...this.cells);
    this.show(0);
  }

  show(k) {
    const run = this.run;
    if (!run) return;
    const states = run.states(k);
    let decided = 0;
    states.forEach((state, i) => {
      const cls = state === 'given' ? 'g' : state === 'mask' ? '' : state === 'token' ? 'd' : 'e';
      if (cls === 'd' || cls === 'e') decided++;
      const full = run.blockStart(i) ? `${cls} bb`.trim() : cls;
      if (this.cells[i].className !== full) this.cells[i].className = full;
    });
    this.el.setAttribute('aria-label', `${this.label}: ${decided} of ${states.filter(s => s !== 'given').length}`);
  }
}
