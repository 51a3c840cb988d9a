// Previews of generated HTML / SVG / JavaScript. The document is kept by the server and shown in
// <iframe sandbox="allow-scripts"> (never allow-same-origin): it gets an opaque origin, and the
// server's Content-Security-Policy for /preview/ allows no network at all. The studio's own CSP
// only lets frames show /preview/, so a preview cannot navigate itself anywhere else either.

import { createPreview } from './api.js';
import { h } from './ui.js';

const HTML_LANGS = new Set(['html', 'htm', 'xhtml']);
const SVG_LANGS = new Set(['svg']);
const JS_LANGS = new Set(['js', 'javascript', 'mjs']);

/** 'html' | 'svg' | 'js' | null: whether (and how) a code block can be previewed. */
export function previewKind(lang, code) {
  const l = (lang || '').toLowerCase();
  const head = code.trimStart().slice(0, 200).toLowerCase();
  if (SVG_LANGS.has(l) || (l === 'xml' && head.startsWith('<svg'))) return 'svg';
  if (HTML_LANGS.has(l)) return 'html';
  if (JS_LANGS.has(l)) return /\b(document|canvas|requestanimationframe|getelementbyid|queryselector)\b/i.test(code) ? 'js' : null;
  if (!l && (head.startsWith('<!doctype html') || head.startsWith('<html'))) return 'html';
  if (!l && head.startsWith('<svg')) return 'svg';
  return null;
}

const BASE_STYLE = 'html,body{margin:0;min-height:100%}body{font:15px/1.5 system-ui,sans-serif}';

/** A complete document for a code block of the given kind. */
export function previewDocument(kind, code) {
  if (kind === 'svg') {
    return `<!doctype html><html><head><meta charset="utf-8"><style>${BASE_STYLE}html,body{height:100%}body{display:grid;place-items:center;background:#fff}svg{max-width:100%;max-height:100vh}</style></head><body>${code}</body></html>`;
  }
  if (kind === 'js') {
    const script = code.replace(/<\/script/gi, '<\\/script');
    return `<!doctype html><html><head><meta charset="utf-8"><style>${BASE_STYLE}</style></head><body><canvas id="canvas" width="600" height="400"></canvas><script>${script}</script></body></html>`;
  }
  if (/<html[\s>]|<body[\s>]|<!doctype/i.test(code)) return code;
  return `<!doctype html><html><head><meta charset="utf-8"><style>${BASE_STYLE}</style></head><body>${code}</body></html>`;
}

/** Show `html` in a sandboxed frame inside `container`; resolves {iframe, tabUrl}. */
export async function mountPreview(container, html, { title = 'Preview of generated code' } = {}) {
  const { url, tab_url: tabUrl } = await createPreview(html);
  const iframe = h('iframe.preview-frame', {
    sandbox: 'allow-scripts',
    src: url,
    title,
    referrerpolicy: 'no-referrer',
    allow: '',
  });
  container.replaceChildren(iframe);
  return { iframe, tabUrl };
}
