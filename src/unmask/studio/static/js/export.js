// Exports of a finished run: a self-contained HTML replay (its own small player, no network), an
// animated SVG (CSS keyframes, one per step) that plays in any browser or <img>, and an animated GIF
// (gif.js; one frame per step, or an even sample of a long run). All draw what the canvas draws: the
// prompt, the answer's fixed start, and the pieces as drawn (run.drawn); all carry the settings and seed.

import { encodeGIF } from './gif.js';

const xml = s => String(s).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' }[c]));

function runData(run) {
  const data = run.toJSON();
  data.end = Array.from({ length: run.n }, (_, i) => run.isEnd(i));
  data.commits = run.commitsPerStep();
  return data;
}

/** The seed as said in an export: a number, or that the run drew a random one (not reproducible). */
export function seedText(seed) {
  return seed == null ? 'random (no seed set)' : String(seed);
}

/** The settings every export carries: the model, the seed, the options the server resolved, the request. */
export function runSettings(run) {
  const data = run.toJSON();
  return { model: data.model, seed: data.seed, options: data.options, request: data.settings };
}

/** The JSON export: the run as drawn, its settings, and the frames the server sent (to replay it). */
export function runJSON(run) {
  return { format: 'unmask-run', version: 1, ...runSettings(run), run: runData(run), frames: { start: run.start, steps: run.steps, done: run.done } };
}

/** A standalone HTML page that replays the run with a scrubber, play button and heat view. */
export function htmlReplay(run, title = 'unmask run') {
  const json = JSON.stringify(runData(run)).replace(/</g, '\\u003c').replace(/\u2028|\u2029/g, c => (c === '\u2028' ? '\\u2028' : '\\u2029'));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'">
<title>${xml(title)}</title>
<style>
:root{color-scheme:dark;--bg:#09090b;--panel:#111116;--border:#26262e;--text:#ededf0;--muted:#8b8b98;--accent:#8b5cf6;--fresh:rgba(251,191,36,.35);--ph:#22222b}
body{margin:0;background:var(--bg);color:var(--text);font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif}
main{max-width:860px;margin:0 auto;padding:32px 20px}
h1{font-size:18px;margin:0 0 4px}.meta{color:var(--muted);font-size:13px;margin-bottom:20px}
.canvas{background:var(--panel);border:1px solid var(--border);border-radius:14px;padding:20px 22px;font-size:17px;line-height:1.85;white-space:pre-wrap;word-break:break-word;min-height:120px}
.p{color:var(--muted)}.g{color:#7dd3fc}.m{display:inline-block;min-width:1.6em;height:1em;vertical-align:-.15em;background:var(--ph);border-radius:4px;color:transparent}
.m.k{display:inline;min-width:0;height:auto}.m.k::after{content:attr(data-w);content:attr(data-w) / ""}.f{border-radius:4px;animation:flash .9s ease-out both}@keyframes flash{from{background:var(--fresh)}to{background:transparent}}.e{display:inline-block;width:1.2em;height:.9em;border:1px dashed #444;border-radius:3px;opacity:.5;vertical-align:-.05em}.t{color:var(--muted);text-decoration:line-through}
.bar{display:flex;gap:12px;align-items:center;margin-top:16px}button{background:var(--panel);color:var(--text);border:1px solid var(--border);border-radius:8px;height:32px;padding:0 12px;cursor:pointer;font:inherit}
input[type=range]{flex:1;accent-color:var(--accent)}output{font:13px ui-monospace,monospace;color:var(--muted);min-width:110px;text-align:right}
label{color:var(--muted);font-size:13px;display:flex;gap:6px;align-items:center}
.settings{margin-top:16px;color:var(--muted);font-size:13px}pre{background:var(--panel);border:1px solid var(--border);border-radius:10px;padding:12px;overflow:auto;font:12px/1.5 ui-monospace,monospace}
</style></head><body><main>
<h1>${xml(title)}</h1><div class="meta" id="meta"></div>
<div class="canvas" id="canvas" aria-live="off"></div>
<details class="settings"><summary>Settings</summary><pre id="settings"></pre></details>
<div class="bar"><button id="play" type="button">Play</button><input id="step" type="range" min="0" value="0" aria-label="Step"><output id="out"></output><label><input id="heat" type="checkbox"> heat</label></div>
</main>
<script type="application/json" id="run">${json}</script>
<script>
(function () {
  var run = JSON.parse(document.getElementById('run').textContent);
  var canvas = document.getElementById('canvas'), slider = document.getElementById('step'), out = document.getElementById('out');
  var heat = document.getElementById('heat'), playBtn = document.getElementById('play'), timer = null;
  var stops = [[59,31,143],[123,47,190],[193,63,143],[236,107,86],[249,169,59],[244,227,76]];
  function color(t) { var x = Math.max(0, Math.min(1, t)) * 5, i = Math.min(4, Math.floor(x)), f = x - i, a = stops[i], b = stops[i + 1];
    return 'rgba(' + [0, 1, 2].map(function (j) { return Math.round(a[j] + (b[j] - a[j]) * f); }).join(',') + ',.36)'; } // light text on the brightest (yellow) stays above WCAG AA
  document.getElementById('meta').textContent = run.model + ' · ' + run.steps + ' steps · ' + run.elapsed.toFixed(2) + ' s · ' + run.nfe + ' model passes · seed ' + (run.seed == null ? 'random (no seed set)' : run.seed);
  document.getElementById('settings').textContent = JSON.stringify({ model: run.model, seed: run.seed, options: run.options, request: run.settings }, null, 2);
  slider.max = run.steps;
  var prefix = document.createElement('span'); prefix.className = 'p'; prefix.textContent = run.prefix;
  var fixed = document.createElement('span'); fixed.className = 'g'; fixed.textContent = run.fixed || '';
  var cells = run.pieces.map(function () { return document.createElement('span'); });
  canvas.append(prefix, fixed); cells.forEach(function (c) { canvas.append(c); });
  function show(k) {
    var ended = false;
    for (var i = 0; i < cells.length; i++) {
      var c = cells[i], s = run.stepOf[i], p = run.pieces[i] || '', cls = '', text = p, ghost = '';
      c.style.background = '';
      if (run.given[i]) { cls = 'g'; ended = false; }
      else if (s < 0 || s > k) { cls = 'm' + (p.trim() ? ' k' : ''); ghost = p.trim() ? p : ''; text = ''; }
      else if (run.end[i]) { cls = 'e'; text = ''; ended = true; }
      else {
        cls = ended ? 't' : '';
        // The step's new tokens flash once and fade (an animation), so the last step does not stay lit.
        if (heat.checked) c.style.background = color((s - 1) / Math.max(1, run.steps - 1));
        else if (s === k && k > 0) cls += ' f';
      }
      c.className = cls; c.textContent = text;
      // A placeholder takes its token's width from CSS: a copy or a screen reader gets no future text.
      if (ghost) c.setAttribute('data-w', ghost); else c.removeAttribute('data-w');
    }
    slider.value = k; out.textContent = 'step ' + k + ' / ' + run.steps;
  }
  function stop() { clearInterval(timer); timer = null; playBtn.textContent = 'Play'; }
  function play() {
    var k = Number(slider.value) >= run.steps ? 0 : Number(slider.value);
    playBtn.textContent = 'Pause';
    timer = setInterval(function () { k++; show(k); if (k >= run.steps) stop(); }, Math.max(16, Math.min(90, 5000 / run.steps)));
  }
  playBtn.onclick = function () { timer ? stop() : play(); };
  slider.oninput = function () { stop(); show(Number(slider.value)); };
  heat.onchange = function () { show(Number(slider.value)); };
  show(0); play();
})();
</script></body></html>`;
}

const SVG_FONT = 15; // px
const CHAR_W = SVG_FONT * 0.6; // monospace advance
const LINE_H = SVG_FONT * 1.7;
const SVG_COLS = 64;
const STEP_S = 0.12; // seconds per step in the animation (long runs are compressed)
const MAX_PLAY_S = 8;
const HOLD_S = 2.5; // the finished text stays this long before the loop restarts

/** The run laid out in SVG_COLS columns of monospace cells: items {x, y (line), text, cls, step, isMask}. */
function layout(data) {
  let x = 0, y = 0;
  const items = [];
  const place = (text, cls, step, isMask) => {
    for (let part of text.split(/(\n)/)) {
      if (part === '\n') { x = 0; y++; continue; }
      if (!part) continue;
      if (x + part.trimEnd().length > SVG_COLS && x > 0) {
        // Wrapped: the line starts at the margin, the space before the word stays on the line before.
        x = 0;
        y++;
        part = part.trimStart();
        if (!part) continue;
      }
      items.push({ x, y, text: part, cls, step, isMask });
      x += part.length;
    }
  };
  // Fixed text goes word by word, so a long one wraps like the tokens do.
  const words = text => text.match(/\s*\S+|\s+/g) || [];
  for (const w of words(data.prefix)) place(w, 'p', 0, false);
  for (const w of words(data.fixed)) place(w, 'g', 0, false);
  let ended = false;
  data.pieces.forEach((piece, i) => {
    const p = piece || '';
    if (data.given[i]) { ended = false; place(p, 'g', 0, false); return; }
    if (data.end[i]) { ended = true; return; }
    if (ended || data.stepOf[i] < 0) return;
    place(p, 'w', data.stepOf[i], true);
  });
  return { items, lines: y + 1 };
}

/** An animated SVG of the run: placeholders turning into tokens in the order they were decided. */
export function animatedSVG(run, title = 'unmask run') {
  const data = runData(run);
  const steps = Math.max(1, data.steps);
  const stepS = Math.min(STEP_S, MAX_PLAY_S / steps);
  const total = steps * stepS + HOLD_S;
  const pad = 20;
  const { items, lines } = layout(data);
  const width = pad * 2 + SVG_COLS * CHAR_W;
  const height = pad * 2 + lines * LINE_H + 26;
  const used = [...new Set(items.filter(it => it.isMask).map(it => it.step))].sort((a, b) => a - b);
  const pct = s => ((s * stepS) / total) * 100;
  const frames = used.map(s => {
    const at = pct(s).toFixed(3), before = Math.max(0, pct(s) - 0.01).toFixed(3);
    return `@keyframes a${s}{0%,${before}%{opacity:0}${at}%,100%{opacity:1}}@keyframes b${s}{0%,${before}%{opacity:1}${at}%,100%{opacity:0}}` +
      `.a${s}{animation-name:a${s}}.b${s}{animation-name:b${s}}`;
  }).join('');
  const body = items.map(it => {
    const tx = pad + it.x * CHAR_W, ty = pad + it.y * LINE_H + SVG_FONT;
    const lead = it.text.length - it.text.trimStart().length;
    const visible = it.text.trimStart();
    if (!visible) return '';
    if (!it.isMask) return `<text x="${(tx + lead * CHAR_W).toFixed(1)}" y="${ty.toFixed(1)}" class="${it.cls}">${xml(visible)}</text>`;
    const rx = tx + lead * CHAR_W;
    return `<rect x="${rx.toFixed(1)}" y="${(ty - SVG_FONT + 2).toFixed(1)}" width="${(visible.length * CHAR_W).toFixed(1)}" height="${SVG_FONT}" rx="3" class="m b${it.step}"/>` +
      `<text x="${rx.toFixed(1)}" y="${ty.toFixed(1)}" class="w a${it.step}">${xml(visible)}</text>`;
  }).join('\n');
  const barY = height - pad - 6;
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width.toFixed(0)} ${height.toFixed(0)}" width="${width.toFixed(0)}" height="${height.toFixed(0)}" role="img" aria-label="${xml(title)}">
<title>${xml(title)}</title>
<desc>${xml(`${data.model} · seed ${seedText(data.seed)} · ${data.steps} steps · ${Object.entries(data.options).filter(([, v]) => v != null && typeof v !== 'object').map(([k, v]) => `${k}=${v}`).join(' ')}`)}</desc>
<metadata id="unmask-run">${xml(JSON.stringify(runSettings(run)))}</metadata>
<style>
text{font-family:ui-monospace,"SF Mono",Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:${SVG_FONT}px;white-space:pre}
.p{fill:#8b8b98}.g{fill:#7dd3fc}.w{fill:#ededf0;opacity:0}.m{fill:#2a2a35}
.w,.m{animation-duration:${total.toFixed(2)}s;animation-iteration-count:infinite;animation-timing-function:linear}
.bar{fill:#8b5cf6;transform-origin:${pad}px 0;animation:bar ${total.toFixed(2)}s linear infinite}
@keyframes bar{0%{transform:scaleX(0)}${pct(steps).toFixed(2)}%,100%{transform:scaleX(1)}}
${frames}
</style>
<rect width="100%" height="100%" rx="14" fill="#0e0e12"/>
${body}
<rect x="${pad}" y="${barY}" width="${width - pad * 2}" height="3" rx="1.5" fill="#26262e"/>
<rect x="${pad}" y="${barY}" width="${width - pad * 2}" height="3" rx="1.5" class="bar"/>
<text x="${width - pad}" y="${barY - 8}" text-anchor="end" style="font-size:11px;fill:#5d5d6a">${xml(`${data.model} · ${data.steps} steps · seed ${seedText(data.seed)} · unmask`)}</text>
</svg>`;
}

const GIF_FRAMES = 60; // at most this many frames: a longer run is sampled evenly (its first and last step kept)
const GIF_PLAY_CS = 600; // the steps play in about 6 s…
const GIF_HOLD_CS = 250; // …and the finished text stays 2.5 s before the loop restarts
// What the GIF paints with; antialiased text adds the blends of each ink over its ground (gifPalette).
const GIF_INK = { bg: [14, 14, 18], fresh: [74, 58, 18], m: [42, 42, 53], track: [38, 38, 46], bar: [139, 92, 246], p: [139, 139, 152], g: [125, 211, 252], w: [237, 237, 240], foot: [120, 120, 134] };
const BLENDS = 16;

/** The steps a GIF shows: each one, or an even sample of GIF_FRAMES with the first and last. */
export function gifSteps(steps) {
  if (steps + 1 <= GIF_FRAMES) return Array.from({ length: steps + 1 }, (_, k) => k);
  return [...new Set(Array.from({ length: GIF_FRAMES }, (_, j) => Math.round((j * steps) / (GIF_FRAMES - 1))))];
}

/** The global palette: the solid colours, then each ink blended over the grounds it is drawn on. */
function gifPalette() {
  const c = GIF_INK, out = [c.bg, c.fresh, c.m, c.track, c.bar];
  const mix = (a, b, t) => a.map((v, j) => Math.round(v + (b[j] - v) * t));
  for (const [ink, grounds] of [[c.p, [c.bg]], [c.g, [c.bg]], [c.w, [c.bg, c.fresh]], [c.foot, [c.bg]]]) {
    for (const ground of grounds) for (let t = 1; t <= BLENDS; t++) out.push(mix(ground, ink, t / BLENDS));
  }
  return out;
}

/** An animated GIF of the run (bytes): one frame per step shown, and its settings and seed as a comment. */
export function runGIF(run) {
  const data = runData(run);
  const steps = Math.max(1, data.steps);
  const pad = 20, font = `${SVG_FONT}px ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace`;
  const { items, lines } = layout(data);
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.font = font;
  const cw = ctx.measureText('M').width || CHAR_W;
  const width = Math.ceil(pad * 2 + SVG_COLS * cw), height = Math.ceil(pad * 2 + lines * LINE_H + 26);
  canvas.width = width;
  canvas.height = height;
  const rgb = c => `rgb(${c.join(',')})`;
  const palette = gifPalette();
  const nearest = new Map(); // 24-bit colour -> palette index
  const indexOf = (r, g, b) => {
    const key = (r << 16) | (g << 8) | b;
    let best = nearest.get(key);
    if (best !== undefined) return best;
    let d = Infinity;
    palette.forEach(([pr, pg, pb], i) => {
      const e = (pr - r) ** 2 + (pg - g) ** 2 + (pb - b) ** 2;
      if (e < d) { d = e; best = i; }
    });
    nearest.set(key, best);
    return best;
  };
  const shown = gifSteps(steps);
  const delay = Math.max(2, Math.min(12, Math.round(GIF_PLAY_CS / shown.length)));
  const frames = shown.map((k, j) => {
    ctx.fillStyle = rgb(GIF_INK.bg);
    ctx.fillRect(0, 0, width, height);
    ctx.font = font;
    ctx.textBaseline = 'alphabetic';
    for (const it of items) {
      const lead = it.text.length - it.text.trimStart().length, visible = it.text.trimStart();
      if (!visible) continue;
      const x = pad + (it.x + lead) * cw, y = pad + it.y * LINE_H + SVG_FONT;
      if (it.isMask && it.step > k) {
        ctx.fillStyle = rgb(GIF_INK.m);
        ctx.fillRect(Math.round(x), Math.round(y - SVG_FONT + 2), Math.round(visible.length * cw), SVG_FONT);
        continue;
      }
      // The tokens new since the frame before, lit as on the live canvas; the held last frame is not lit.
      if (it.isMask && j > 0 && j < shown.length - 1 && it.step > shown[j - 1]) {
        ctx.fillStyle = rgb(GIF_INK.fresh);
        ctx.fillRect(Math.round(x), Math.round(y - SVG_FONT + 2), Math.round(visible.length * cw), SVG_FONT);
      }
      ctx.fillStyle = rgb(GIF_INK[it.cls]);
      ctx.fillText(visible, x, y);
    }
    const barY = height - pad - 6, barW = width - pad * 2;
    ctx.fillStyle = rgb(GIF_INK.track);
    ctx.fillRect(pad, barY, barW, 3);
    ctx.fillStyle = rgb(GIF_INK.bar);
    ctx.fillRect(pad, barY, Math.round((barW * k) / steps), 3);
    ctx.fillStyle = rgb(GIF_INK.foot);
    ctx.font = `11px ${font.split('px ')[1]}`;
    ctx.textAlign = 'right';
    ctx.fillText(`${data.model} · step ${k} / ${data.steps} · seed ${seedText(data.seed)} · unmask`, width - pad, barY - 8);
    ctx.textAlign = 'left';
    const px = ctx.getImageData(0, 0, width, height).data;
    const indices = new Uint8Array(width * height);
    for (let i = 0, o = 0; i < indices.length; i++, o += 4) indices[i] = indexOf(px[o], px[o + 1], px[o + 2]);
    return { indices, delay: j === shown.length - 1 ? GIF_HOLD_CS : delay };
  });
  const comment = JSON.stringify({ format: 'unmask-run-gif', version: 1, ...runSettings(run), steps: data.steps, frames: shown });
  return encodeGIF({ width, height, palette, frames, comment });
}
