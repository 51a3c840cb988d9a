// Small DOM helpers shared by the views: element builder, icons, toasts, the atom loader, formats.

/** h('div.card#id', {onclick, dataset, attrs...}, ...children) -> HTMLElement. Text children are
 *  text nodes, never parsed as HTML. */
export function h(tag, props = {}, ...children) {
  const [name, ...rest] = tag.split(/(?=[.#])/);
  const el = document.createElement(name || 'div');
  for (const part of rest) {
    if (part[0] === '.') el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An icon from the sprite in index.html. */
export function icon(name, cls = '') {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('aria-hidden', 'true');
  if (cls) svg.setAttribute('class', cls);
  const use = document.createElementNS(SVG_NS, 'use');
  use.setAttribute('href', `#i-${name}`);
  svg.append(use);
  return svg;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** A toast: kind is 'error', 'ok' or ''; it goes away by itself unless it is an error. */
export function toast(title, detail = '', kind = '') {
  const box = document.getElementById('toasts');
  const close = h('button.icon-btn', { type: 'button', 'aria-label': 'Dismiss' }, '×');
  const el = h(`div.toast${kind ? '.' + kind : ''}`, { role: kind === 'error' ? 'alert' : 'status' },
    h('span.dot'), h('div', {}, h('strong', {}, title), detail ? h('p', {}, prose(detail)) : null), close);
  close.addEventListener('click', () => el.remove());
  box.append(el);
  while (box.children.length > 4) box.firstElementChild.remove();
  if (kind !== 'error') setTimeout(() => el.remove(), 4200);
  return el;
}

/** The helium-atom loader: nucleus and two electrons. Returns {el, set(title, detail), progress(f)}. */
export function atomLoader(title = 'Loading model…', { small = false } = {}) {
  const el = document.getElementById('atom-template').content.firstElementChild.cloneNode(true);
  if (small) el.classList.add('small');
  const titleEl = el.querySelector('.atom-title');
  const detailEl = el.querySelector('.atom-detail');
  const bar = el.querySelector('.atom-progress');
  titleEl.textContent = title;
  if (matchMedia('(prefers-reduced-motion: reduce)').matches) {
    requestAnimationFrame(() => el.querySelector('svg').pauseAnimations?.());
  }
  return {
    el,
    set(t, d) { if (t != null) titleEl.textContent = t; if (d != null) detailEl.textContent = d; },
    progress(f) {
      bar.hidden = f == null;
      if (f != null) bar.firstElementChild.style.width = `${Math.round(Math.max(0, Math.min(1, f)) * 100)}%`;
    },
  };
}

export function formatSeconds(s) {
  if (s == null || !isFinite(s)) return '–';
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  return `${Math.floor(s / 60)}m ${Math.round(s % 60)}s`;
}

/** `n word`, the word in the plural unless n is 1 ("1 token", "27 tokens"); '' for no count. */
export function count(n, word) {
  return n == null ? '' : `${n} ${n === 1 ? word : `${word}s`}`;
}

export function formatRate(r) {
  if (r == null || !isFinite(r)) return '–';
  return r >= 100 ? Math.round(r).toLocaleString() : r.toFixed(1);
}

export function formatParams(n) {
  if (!n) return '';
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)}M`;
  if (n >= 1e3) return `${Math.round(n / 1e3)}K`;
  return String(n);
}

/** A stat card (value + label) whose value can be updated: stat.set(v). */
export function stat(label) {
  const value = h('b', {}, '–');
  const el = h('div.stat', {}, value, h('span', {}, label));
  return { el, set(v) { value.textContent = v; } };
}

/** A segmented control: options [{value, label, title}], onChange(value). */
export function segmented(options, value, onChange, label = '') {
  const el = h('div.segmented', { role: 'group', 'aria-label': label });
  const buttons = options.map(o => h('button', {
    type: 'button', title: o.title || '', 'aria-pressed': String(o.value === value), dataset: { value: o.value },
    onclick: () => { set(o.value); onChange(o.value); },
  }, o.label));
  el.append(...buttons);
  function set(v) { for (const b of buttons) b.setAttribute('aria-pressed', String(b.dataset.value === String(v))); }
  return { el, set };
}

/** Keep a range input's filled part in step with its value (the track gradient reads --fill). */
export function paintRange(input) {
  const min = Number(input.min || 0), max = Number(input.max || 100);
  const f = max > min ? (Number(input.value) - min) / (max - min) : 0;
  input.style.setProperty('--fill', `${(f * 100).toFixed(1)}%`);
}

/** Copy text; resolves true when it worked. Falls back to a hidden textarea. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h('textarea', { readonly: true, 'aria-hidden': 'true' });
    area.value = text;
    area.style.position = 'fixed';
    area.style.opacity = '0';
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    area.remove();
    return ok;
  }
}

/** A copy button that shows a check for a moment after copying. */
export function copyButton(getText, label = 'Copy') {
  const btn = h('button.btn.small.ghost.copy-btn', { type: 'button', title: label, 'aria-label': label }, icon('copy'), h('span', {}, label));
  btn.addEventListener('click', async () => {
    const ok = await copyText(getText());
    btn.classList.toggle('copied', ok);
    btn.replaceChildren(icon(ok ? 'check' : 'copy'), h('span', {}, ok ? 'Copied' : 'Copy failed'));
    setTimeout(() => { btn.classList.remove('copied'); btn.replaceChildren(icon('copy'), h('span', {}, label)); }, 1400);
  });
  return btn;
}

/** Save a Blob as a file download. */
export function download(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 4000);
}

/** A sentence as nodes, its `backticked` parts as <code> (server messages and hints name commands so). */
export function prose(text) {
  return String(text ?? '').split(/`([^`\n]+)`/).map((part, i) => (i % 2 ? h('code', {}, part) : part)).filter(p => p !== '');
}

// The keys a focused control uses itself: a slider its arrows, Home and End; a checkbox, button or
// link its Space and Enter; a select and a radio group their arrows too.
const RANGE_KEYS = new Set(['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Home', 'End', 'PageUp', 'PageDown']);
const PRESS_KEYS = new Set([' ', 'Enter']);

/** Whether the focused element acts on this key itself (so a page shortcut must leave it alone). */
export function ownsKey(e, target = document.activeElement) {
  if (!target || target === document.body || target === document.documentElement) return false;
  const tag = target.tagName;
  const type = tag === 'INPUT' ? target.type : '';
  if (type === 'range') return RANGE_KEYS.has(e.key);
  if (type === 'radio' || tag === 'SELECT') return RANGE_KEYS.has(e.key) || PRESS_KEYS.has(e.key);
  if (type === 'checkbox' || tag === 'BUTTON' || tag === 'SUMMARY' || (tag === 'A' && target.hasAttribute('href'))) return PRESS_KEYS.has(e.key);
  const role = target.getAttribute('role');
  if (role === 'button' || role === 'tab' || role === 'checkbox' || role === 'slider') return PRESS_KEYS.has(e.key) || (role === 'slider' && RANGE_KEYS.has(e.key));
  return false;
}

/** Whether keyboard focus is in a text field (where single-key shortcuts must not fire). */
export function typing(target = document.activeElement) {
  if (!target) return false;
  const tag = target.tagName;
  return tag === 'TEXTAREA' || tag === 'SELECT' || target.isContentEditable ||
    (tag === 'INPUT' && !['range', 'checkbox', 'radio', 'button'].includes(target.type));
}
