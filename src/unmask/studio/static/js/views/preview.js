// Preview: paste HTML, SVG or JavaScript (or a whole Markdown answer) and run it in the sandbox
// that chat answers use: an opaque-origin frame with no network.

import { AnswerView } from '../answer.js';
import { PREVIEW_EXAMPLES } from '../examples.js';
import { h, icon } from '../ui.js';

/** Pasted text as Markdown: bare code gets a fence of the right language. */
export function asAnswer(text) {
  const t = text.trim();
  if (!t || /^(```|~~~)/m.test(t)) return text;
  const head = t.slice(0, 200).toLowerCase();
  if (head.startsWith('<svg')) return '```svg\n' + t + '\n```';
  if (head.startsWith('<')) return '```html\n' + t + '\n```';
  if (/\b(const|let|function|document\.|=>)\b/.test(t)) return '```js\n' + t + '\n```';
  return text;
}

export class PreviewView {
  constructor(root) {
    this.input = h('textarea.code-input', { rows: 10, spellcheck: 'false', 'aria-label': 'Code or answer to preview', placeholder: 'Paste HTML, SVG or JavaScript — or a whole answer with a ```html code block.' });
    this.input.value = localStorage.getItem('unmask.preview') || '';
    this.input.addEventListener('input', () => { try { localStorage.setItem('unmask.preview', this.input.value); } catch { /* */ } });
    this.out = h('div.preview-answer');
    this.answer = new AnswerView(this.out);
    this.renderBtn = h('button.btn.primary', { type: 'button', onclick: () => this.render() }, icon('play'), 'Render', h('span.kbd-hint', {}, 'Ctrl ↵'));
    root.append(h('div.preview-layout', {},
      h('div.card.prompt-card', {},
        h('div.prompt-top', {}, h('h1.view-title', {}, 'Preview'), h('span.view-sub', {}, 'Generated code runs in a sandbox: its own origin, no network, no access to the studio.')),
        h('div.chips.examples', {}, h('span.label', {}, 'Examples'), PREVIEW_EXAMPLES.map(ex => h('button.chip', { type: 'button', dataset: { example: ex.id }, onclick: () => this.example(ex.id) }, ex.label))),
        this.input,
        h('div.prompt-actions', {},
          h('ul.sandbox-notes', {},
            h('li', {}, h('code', {}, 'sandbox="allow-scripts"'), ' without allow-same-origin'),
            h('li', {}, 'CSP: ', h('code', {}, "connect-src 'none'"), ', no external images, scripts, styles, forms or frames'),
            h('li', {}, '“Open” serves it from a separate, opaque origin')),
          h('div.spacer'), this.renderBtn)),
      this.out));
    if (this.input.value.trim()) this.render();
    else this.out.replaceChildren(h('div.empty', {}, h('h3', {}, 'Nothing to preview yet'), h('p', {}, 'Pick an example above — the helium atom is a good start — or paste code. When a chat answer contains a code block like this, it gets the same Preview tab once the block has finished diffusing.')));
  }

  example(id) {
    const ex = PREVIEW_EXAMPLES.find(e => e.id === id);
    if (!ex) return;
    this.input.value = ex.text;
    try { localStorage.setItem('unmask.preview', ex.text); } catch { /* */ }
    this.render();
  }

  render() {
    if (!this.input.value.trim()) return;
    this.out.replaceChildren();
    this.answer = new AnswerView(this.out);
    this.answer.update(asAnswer(this.input.value), true);
  }

  route(arg) { if (arg) this.example(arg); }
  show() {}
  primary() { this.render(); }
  escape() {}
  focusPrompt() { this.input.focus(); }
  key() { return false; }
}
