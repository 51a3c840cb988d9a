// Which served models suit which view, and the model picker.

import { formatParams, h } from './ui.js';

/** 'grid' (Sudoku), 'chat' (has a chat template), 'text' (completion) or 'tokens' (no tokenizer). */
export function kindOf(model) {
  if (model.model_type === 'grid') return 'grid';
  if (model.tokenizer === false) return 'tokens';
  if (model.chat_template) return 'chat';
  return 'text';
}

/** The language of the code a model writes ("svg", "html", "js"), as its generation_config's
 *  "unmask" section declares it (the server's model info `output`); null for a model of prose. */
export function codeLanguage(model) {
  const out = model?.output;
  return typeof out === 'string' && out && out !== 'text' ? out : null;
}

export function describe(model) {
  const bits = [model.family, formatParams(model.parameters)].filter(Boolean);
  return bits.join(' · ');
}

export class ModelPicker {
  /** kinds: the model kinds this view can use, in order of preference. */
  constructor({ kinds, storageKey, onChange = () => {}, label = 'Model' }) {
    this.kinds = kinds;
    this.storageKey = `unmask.model.${storageKey}`;
    this.onChange = onChange;
    this.models = [];
    this.select = h('select.model-select', { 'aria-label': label });
    this.select.addEventListener('change', () => {
      try { localStorage.setItem(this.storageKey, this.select.value); } catch { /* private mode */ }
      this.paint();
      this.onChange(this.info);
    });
    this.dot = h('i.model-dot', { title: '' });
    this.el = h('label.model-picker', {}, this.dot, this.select);
  }

  /** A fresh model list; onChange runs when the chosen model changes (not on every refresh). */
  setModels(all) {
    const before = this.models.length ? this.select.value : null;
    const usable = all.filter(m => m.available !== false && this.kinds.includes(kindOf(m)));
    usable.sort((a, b) => this.kinds.indexOf(kindOf(a)) - this.kinds.indexOf(kindOf(b)) || (b.default - a.default));
    this.models = usable;
    const previous = this.select.value || (() => { try { return localStorage.getItem(this.storageKey); } catch { return null; } })();
    this.select.replaceChildren(...usable.map(m => h('option', { value: m.name }, `${m.name}${describe(m) ? ` — ${describe(m)}` : ''}`)));
    if (usable.some(m => m.name === previous)) this.select.value = previous;
    else if (usable.length) this.select.value = (usable.find(m => m.default) || usable[0]).name;
    this.el.hidden = !usable.length;
    this.paint();
    if (!this.initialised || this.select.value !== before) {
      this.initialised = true;
      this.onChange(this.info);
    }
  }

  paint() {
    const m = this.info;
    this.dot.classList.toggle('loaded', !!m?.loaded);
    this.dot.title = m ? (m.loaded ? `${m.name} is loaded` : `${m.name} loads on first use`) : '';
  }

  get value() { return this.select.value; }
  get info() { return this.models.find(m => m.name === this.select.value) || null; }
  get empty() { return !this.models.length; }
}
