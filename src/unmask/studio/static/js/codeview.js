// The answer of a model that writes code (its model info says `output`, e.g. the embedded `web`
// model's "svg"), drawn as it diffuses: one code block (answer.js CodeBlock) whose masked tokens
// are placeholders and whose Preview runs the code in the sandbox once no token of it is masked
// (answer.js's no-flicker rule). It stands in for the token canvas (canvas.js) on the stage, with
// the same bind / show / selectedRange, so a span of the code can be selected and rewritten.

import { CodeBlock } from './answer.js';
import { MASK_CHAR } from './highlight.js';

export class CodeView {
  /** el: the container; lang: the code's language (the model's `output`). */
  constructor(el, lang) {
    this.el = el;
    this.lang = lang;
    this.run = null;
    this.step = 0;
    this.fixed = '';
    this.lead = 0; // white space cut from the start (the model's first token ends the request's line)
    this.highlight = null;
    this.replay = false;
    this.block = null;
  }

  /** A fresh code block for a run; fixed: the answer's given start (a rewrite's text before its span). */
  bind(run, prefix = '', fixed = '') {
    this.run = run;
    this.fixed = fixed;
    this.block = new CodeBlock();
    this.el.replaceChildren(this.block.el);
    this.show(0);
  }

  /** The code as it was after step k: settled (previewable) once none of it is masked. */
  show(k) {
    const run = this.run;
    if (!run) return;
    this.step = k;
    const text = this.fixed + run.text(k, MASK_CHAR);
    this.lead = /^\s*/.exec(text)[0].length;
    const code = text.slice(this.lead).trimEnd();
    // A uniform-state run (DiffusionGemma) may change any token until it is over.
    const settled = !code.includes(MASK_CHAR) && (run.finished || !run.uniform);
    this.block.update({ lang: this.lang, code }, settled);
  }

  setHeat() {} // a heat view is the token canvas's: code keeps its highlighting

  setHighlight(range) { this.highlight = range; }

  /** The region positions [a, b] whose text the selection in the code covers (a token counts
   *  when a character of it other than its leading spaces is selected), or null. */
  selectedRange() {
    const sel = document.getSelection();
    const code = this.block?.codeEl;
    if (!sel || sel.isCollapsed || !sel.rangeCount || !this.run || !code || code.closest('[hidden]')) return null;
    const range = sel.getRangeAt(0);
    if (!range.intersectsNode(code)) return null;
    const length = code.textContent.length;
    const at = (node, offset, outside) => {
      if (!code.contains(node)) return outside;
      const r = document.createRange();
      r.setStart(code, 0);
      r.setEnd(node, offset);
      return r.toString().length;
    };
    const start = at(range.startContainer, range.startOffset, 0);
    const end = at(range.endContainer, range.endOffset, length);
    if (end <= start) return null;
    // Offsets in the shown code: the fixed start first, then the region's pieces (a masked token
    // draws an empty placeholder; end tokens and their tail are not in the code).
    const run = this.run, states = run.states(this.step);
    let pos = this.fixed.length - this.lead;
    const picked = [];
    for (let i = 0; i < run.n; i++) {
      if (states[i] !== 'token' && states[i] !== 'given') continue;
      const piece = run.drawnAt(i, this.step) ?? '';
      const from = pos + piece.length - piece.trimStart().length, to = pos + piece.length;
      if (to > from && from < end && to > start) picked.push(i);
      pos = to;
    }
    return picked.length ? [Math.min(...picked), Math.max(...picked)] : null;
  }
}
