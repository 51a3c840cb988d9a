// Infill: fixed text with gaps ({{N}} = N masked tokens); only the gaps diffuse.

import { Dial } from '../dial.js';
import { INFILL_EXAMPLES } from '../examples.js';
import { ModelPicker } from '../models.js';
import { Stage } from '../stage.js';
import { copyButton, h, icon, toast } from '../ui.js';

const GAP = /\{\{\s*(\d+)\s*\}\}/g;
const GAP_SIZES = [2, 4, 8, 16, 32];

export function parseTemplate(text) {
  const gaps = [...text.matchAll(GAP)].map(m => Number(m[1]));
  const first = text.search(/\{\{\s*\d+\s*\}\}/);
  return { gaps, total: gaps.reduce((a, b) => a + b, 0), prefix: first >= 0 ? text.slice(0, first) : text };
}

export class InfillView {
  constructor(root, app) {
    this.app = app;
    this.picker = new ModelPicker({ kinds: ['text', 'chat'], storageKey: 'text', onChange: m => this.dial.setModel(m) });
    this.editor = h('textarea.infill-input', { rows: 4, spellcheck: 'true', 'aria-label': 'Text with gaps; a gap is written {{N}}' });
    this.editor.value = localStorage.getItem('unmask.infill') || INFILL_EXAMPLES[0].template;
    this.mirror = h('div.infill-mirror', { 'aria-hidden': 'true' });
    this.editor.addEventListener('input', () => this.changed());
    this.editor.addEventListener('scroll', () => { this.mirror.scrollTop = this.editor.scrollTop; });
    this.gapSize = h('select.gap-size', { 'aria-label': 'Gap size in tokens' }, GAP_SIZES.map(n => h('option', { value: String(n) }, `${n} tokens`)));
    this.gapSize.value = '8';
    this.insertBtn = h('button.btn.small', { type: 'button', title: 'Insert a gap at the cursor (Ctrl G)', onclick: () => this.insertGap() }, icon('plus'), 'Insert gap');
    this.count = h('span.faint.gap-count');
    this.runBtn = h('button.btn.primary', { type: 'button', onclick: () => this.run() }, icon('sparkle'), 'Fill the gaps', h('span.kbd-hint', {}, 'Ctrl ↵'));
    this.stopBtn = h('button.btn', { type: 'button', hidden: true, onclick: () => this.stage.stop() }, icon('stop'), 'Stop');
    this.stage = new Stage({ label: 'Infill canvas', view: 'infill', onDone: run => this.finished(run), onStart: () => this.busy(true), onShow: run => { this.busy(false); this.showResult(run); } });
    this.stage.onErrorHook = () => this.busy(false);
    this.stage.setEmpty(h('div.empty', {},
      h('h3', {}, 'Only the gaps diffuse'),
      h('p', {}, 'A diffusion model sees the whole canvas at once, so it can write into the middle of a text: the words after a gap shape what goes into it. Write fixed text, press ', h('b', {}, 'Insert gap'), ' where words should go, then fill.'),
      h('div.chips', {}, INFILL_EXAMPLES.map(ex => h('button.chip', { type: 'button', onclick: () => { this.editor.value = ex.template; this.changed(); this.run(); } }, ex.label)))));
    this.result = h('div.infill-result', { hidden: true });
    const dialEl = h('aside.card.dial-card');
    this.dial = new Dial(dialEl, { key: 'infill', length: false });
    root.append(h('div.diffuse-layout', {},
      h('div.work', {},
        h('div.card.prompt-card', {},
          h('div.prompt-top', {}, h('h1.view-title', {}, 'Infill'), h('span.view-sub', {}, 'Fixed text with gaps; the model fills only the gaps.'), this.picker.el),
          h('div.infill-editor', {}, this.mirror, this.editor),
          h('div.prompt-actions', {}, this.insertBtn, this.gapSize, this.count,
            h('div.chips.examples', {}, INFILL_EXAMPLES.map(ex => h('button.chip', { type: 'button', onclick: () => { this.editor.value = ex.template; this.changed(); } }, ex.label))),
            h('div.spacer'), this.stopBtn, this.runBtn)),
        this.stage.el, this.result),
      dialEl));
    this.changed();
  }

  setModels(models) { this.picker.setModels(models); }

  changed() {
    try { localStorage.setItem('unmask.infill', this.editor.value); } catch { /* */ }
    const text = this.editor.value;
    // The mirror behind the textarea draws each gap as a pill (same text, same wrapping).
    const parts = [];
    let last = 0;
    for (const m of text.matchAll(GAP)) {
      parts.push(text.slice(last, m.index), h('mark.gap-pill', {}, m[0]));
      last = m.index + m[0].length;
    }
    parts.push(text.slice(last), '\n');
    this.mirror.replaceChildren(...parts);
    const { gaps, total } = parseTemplate(text);
    this.count.textContent = gaps.length ? `${gaps.length} gap${gaps.length > 1 ? 's' : ''} · ${total} tokens` : 'no gaps yet';
    this.runBtn.disabled = !gaps.length;
    this.dial.setTemplate(text, total); // the dial asks the server what this template's steps are
  }

  insertGap() {
    const n = Number(this.gapSize.value);
    const { selectionStart: a, selectionEnd: b, value } = this.editor;
    const before = value.slice(0, a), after = value.slice(b);
    const pad = (before && !/\s$/.test(before) ? ' ' : '');
    const token = `${pad}{{${n}}}${!/^[\s.,;:!?]/.test(after) ? ' ' : ''}`;
    this.editor.value = before + token + after;
    const caret = a + token.length;
    this.editor.setSelectionRange(caret, caret);
    this.editor.focus();
    this.changed();
  }

  busy(on) { this.runBtn.hidden = on; this.stopBtn.hidden = !on; }

  run() {
    const info = this.picker.info;
    const template = this.editor.value;
    const { gaps, prefix } = parseTemplate(template);
    if (!info || !this.dial.ready()) return;
    if (!gaps.length) { toast('Add a gap first', 'Press Insert gap, or write {{8}} where 8 tokens should go.'); return; }
    // The template fixes the length; the rest is the dial's preset and the fields set by hand.
    const body = { model: info.name, template, ...this.dial.request() };
    this.result.hidden = true;
    this.busy(true);
    this.stage.start(body, { prefix: '', fixed: prefix, kind: 'text', settings: body }, info, { paceMs: this.dial.paceMs }).then(() => this.busy(false));
  }

  finished(run) {
    this.busy(false);
    this.app.modelLoaded(run.model);
    this.showResult(run);
  }

  /** The filled text under the canvas (a run from the history shows its own). */
  showResult(run) {
    const text = (run.meta.fixed || '') + run.done.text;
    this.result.hidden = false;
    this.result.replaceChildren(h('div.section-head', {}, h('h3.panel-title', {}, 'Result'), copyButton(() => text)), h('p.infill-text', {}, text));
  }

  show() {}
  primary() { this.run(); }
  escape() { this.stage.stop(); }
  focusPrompt() { this.editor.focus(); }
  key(e) {
    return this.stage.key(e);
  }
}
