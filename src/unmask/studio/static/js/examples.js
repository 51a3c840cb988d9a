// Examples that teach: story openings, infill templates, and code to preview.

export const STORY_PROMPTS = [
  'Once upon a time, a little fox',
  'The bear woke up early because',
  'Lily found a shiny key in the garden.',
  'Tom and his dog went to the river',
];

export const CHAT_PROMPTS = [
  'Write a haiku about rain on a tin roof.',
  'Explain diffusion language models in three sentences.',
  'Write an HTML page with a helium atom: two electrons orbiting the nucleus, animated.',
  'Give me a Python function that checks whether a Sudoku grid is valid.',
];

// Requests for a model that writes small animations as code (its model info says `output`, e.g.
// the embedded `web` model): the helium atom first, the scene this project started from.
export const WEB_PROMPTS = [
  'a helium atom with two electrons orbiting the nucleus',
  'three planets orbiting a yellow star',
  'five red balls bouncing around',
  'a loading spinner with eight blue dots',
  'a green hexagon spinning slowly',
  'a clock with a white face and black hands',
];

export const INFILL_EXAMPLES = [
  { label: 'Fox story', template: 'Once upon a time, a little fox {{12}} One day, {{16}} In the end, the fox was happy.' },
  { label: 'Middle of a day', template: 'Lily woke up and looked outside. {{20}} That night, she slept with a smile.' },
  // One-token gaps with the context a story model knows: a name, then a thing to play with.
  { label: 'Fill a word', template: 'Once upon a time, there was a little girl named {{1}}. She loved to play with her {{1}}.' },
  // The first sentence and the last at once: one gap between a fixed opening and a fixed ending;
  // the model writes next to both ends first and meets in the middle.
  { label: 'Any order', template: 'Once upon a time, a little fox {{40}} And they lived happily ever after.' },
];

export const HELIUM_ATOM = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Helium atom</title>
<style>
  html, body { margin: 0; height: 100%; background: radial-gradient(circle at 50% 45%, #1b1530, #07060c 70%); }
  canvas { display: block; width: 100%; height: 100%; }
  p { position: fixed; left: 16px; bottom: 10px; margin: 0; color: #a1a1b5; font: 13px system-ui, sans-serif; }
  b { color: #f4f4f5; }
</style>
</head>
<body>
<canvas id="atom"></canvas>
<p><b>He</b> · helium-4: two protons, two neutrons, two electrons</p>
<script>
const canvas = document.getElementById('atom');
const ctx = canvas.getContext('2d');
let W = 0, H = 0;
function resize() {
  const dpr = window.devicePixelRatio || 1;
  W = canvas.clientWidth; H = canvas.clientHeight;
  canvas.width = W * dpr; canvas.height = H * dpr;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
}
// The canvas follows its element, not the window: a pane can lay the frame out after this runs,
// or resize it, without a window resize event reaching the frame.
new ResizeObserver(resize).observe(canvas);
resize();

// Two orbits, tilted in 3D; each electron goes round once every 2.4 s.
const orbits = [
  { tilt: 1.15, turn: 0.45, phase: 0 },
  { tilt: 1.15, turn: -0.45, phase: Math.PI },
];
const nucleons = [
  { x: -0.35, y: -0.3, proton: true }, { x: 0.38, y: -0.22, proton: false },
  { x: -0.3, y: 0.36, proton: false }, { x: 0.34, y: 0.3, proton: true },
];

function point(o, a, R) {
  const x = Math.cos(a) * R, y0 = Math.sin(a) * R;
  const y = y0 * Math.cos(o.tilt), z = y0 * Math.sin(o.tilt);
  return { x: x * Math.cos(o.turn) - y * Math.sin(o.turn), y: x * Math.sin(o.turn) + y * Math.cos(o.turn), z };
}

function ball(x, y, r, inner, outer) {
  const g = ctx.createRadialGradient(x - r / 3, y - r / 3, r / 5, x, y, r);
  g.addColorStop(0, inner); g.addColorStop(1, outer);
  ctx.fillStyle = g;
  ctx.beginPath(); ctx.arc(x, y, r, 0, Math.PI * 2); ctx.fill();
}

function frame(t) {
  const cx = W / 2, cy = H / 2, R = Math.min(W, H) * 0.38;
  if (!(R > 0)) { requestAnimationFrame(frame); return; } // a frame of no size (closing, hidden): nothing to draw
  ctx.clearRect(0, 0, W, H);
  const electrons = orbits.map(o => ({ o, p: point(o, t / 2400 * Math.PI * 2 + o.phase, R) }));
  for (const o of orbits) {
    ctx.beginPath();
    for (let i = 0; i <= 96; i++) {
      const p = point(o, (i / 96) * Math.PI * 2, R);
      i ? ctx.lineTo(cx + p.x, cy + p.y) : ctx.moveTo(cx + p.x, cy + p.y);
    }
    ctx.strokeStyle = 'rgba(167, 139, 250, 0.35)'; ctx.lineWidth = 1.5; ctx.stroke();
  }
  const drawElectron = ({ p }) => {
    const r = R * 0.045 * (1 + p.z / R * 0.25);
    ctx.shadowColor = '#fbbf24'; ctx.shadowBlur = 18;
    ball(cx + p.x, cy + p.y, r, '#fff7d6', '#f59e0b');
    ctx.shadowBlur = 0;
  };
  electrons.filter(e => e.p.z < 0).forEach(drawElectron);
  const n = R * 0.085, pulse = 1 + Math.sin(t / 500) * 0.03;
  for (const k of nucleons) {
    ball(cx + k.x * n * 2 * pulse, cy + k.y * n * 2 * pulse, n, k.proton ? '#fda4af' : '#e4e4e7', k.proton ? '#be123c' : '#52525b');
  }
  electrons.filter(e => e.p.z >= 0).forEach(drawElectron);
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
</script>
</body>
</html>`;

export const SVG_BADGE = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 240 240" width="240" height="240">
  <defs>
    <linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
      <stop offset="0" stop-color="#8b5cf6"/><stop offset="1" stop-color="#f59e0b"/>
    </linearGradient>
  </defs>
  <rect x="20" y="20" width="200" height="200" rx="48" fill="url(#g)"/>
  <g fill="#fff" font-family="system-ui, sans-serif" font-weight="700" text-anchor="middle">
    <text x="120" y="132" font-size="44">unmask</text>
  </g>
  <circle cx="60" cy="60" r="8" fill="#fff">
    <animate attributeName="r" values="8;14;8" dur="1.6s" repeatCount="indefinite"/>
  </circle>
</svg>`;

export const BOUNCING_JS = `const canvas = document.getElementById('canvas');
const ctx = canvas.getContext('2d');
let x = 80, y = 60, vx = 3.2, vy = 2.4;
function tick() {
  ctx.fillStyle = 'rgba(12, 10, 20, 0.25)';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  x += vx; y += vy;
  if (x < 20 || x > canvas.width - 20) vx = -vx;
  if (y < 20 || y > canvas.height - 20) vy = -vy;
  ctx.fillStyle = '#a78bfa';
  ctx.beginPath(); ctx.arc(x, y, 20, 0, Math.PI * 2); ctx.fill();
  requestAnimationFrame(tick);
}
tick();`;

export const PREVIEW_EXAMPLES = [
  { id: 'helium', label: 'Helium atom', text: 'Here is a helium atom, animated:\n\n```html\n' + HELIUM_ATOM + '\n```\n\nTwo electrons share the first shell; the nucleus holds two protons and two neutrons.' },
  { id: 'svg', label: 'SVG badge', text: '```svg\n' + SVG_BADGE + '\n```' },
  { id: 'bounce', label: 'Bouncing ball (JS)', text: 'A canvas animation in plain JavaScript:\n\n```js\n' + BOUNCING_JS + '\n```' },
];
