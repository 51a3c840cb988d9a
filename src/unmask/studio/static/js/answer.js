// An answer rendered as Markdown while it diffuses: masked tokens are placeholders inside the
// text; code blocks are highlighted, with Copy and, for HTML/SVG/JS, a Preview tab that appears
// only once the block has settled (no masked token left in it), so nothing flickers.

import { highlight, MASK_CHAR } from './highlight.js';
import { render } from './markdown.js';
import { mountPreview, previewDocument, previewKind } from './preview.js';
import { copyButton, h, icon, toast } from './ui.js';

export class CodeBlock {
  constructor({ autoPreview = true } = {}) {
    this.autoPreview = autoPreview;
    this.lang = '';
    this.code = '';
    this.settled = false;
    this.tab = 'code';
    this.userChoseTab = false;
    this.preview = null; // {iframe, tabUrl, code}
    this.codeEl = h('code');
    this.pre = h('pre', {}, this.codeEl);
    this.frameBox = h('div.preview-box', { hidden: true });
    this.langEl = h('span.code-lang');
    this.tabs = h('div.code-tabs', { role: 'tablist', hidden: true });
    this.codeTab = h('button', { type: 'button', role: 'tab', 'aria-selected': 'true', onclick: () => this.choose('code') }, 'Code');
    this.previewTab = h('button', { type: 'button', role: 'tab', 'aria-selected': 'false', onclick: () => this.choose('preview') }, 'Preview');
    this.tabs.append(this.codeTab, this.previewTab);
    this.openLink = h('a.btn.small.ghost.open-tab', { target: '_blank', rel: 'noopener noreferrer', hidden: true, title: 'Open the preview in a new tab (its own sandboxed page)' }, icon('external'), h('span', {}, 'Open'));
    this.el = h('div.codeblock', {},
      h('div.code-head', {}, this.langEl, this.tabs, h('div.code-actions', {}, this.openLink, copyButton(() => this.code.replaceAll(MASK_CHAR, '')))),
      this.pre, this.frameBox);
  }

  update({ lang, code }, settled) {
    const changed = code !== this.code || lang !== this.lang;
    this.lang = lang;
    this.code = code;
    this.langEl.textContent = lang || 'text';
    if (changed) this.codeEl.innerHTML = highlight(code, lang); // escaped by highlight()
    this.el.classList.toggle('diffusing', !settled);
    const kind = previewKind(lang, code.replaceAll(MASK_CHAR, ''));
    const wasSettled = this.settled;
    this.settled = settled && !!kind;
    this.tabs.hidden = !this.settled;
    if (!this.settled) {
      if (this.tab === 'preview') this.show('code');
      return;
    }
    if (this.preview && this.preview.code !== code) this.preview = null;
    if (!wasSettled && this.autoPreview && !this.userChoseTab) this.show('preview');
    else if (this.tab === 'preview' && !this.preview) this.show('preview');
  }

  choose(tab) {
    this.userChoseTab = true;
    this.show(tab);
  }

  async show(tab) {
    this.tab = tab;
    this.codeTab.setAttribute('aria-selected', String(tab === 'code'));
    this.previewTab.setAttribute('aria-selected', String(tab === 'preview'));
    this.pre.hidden = tab !== 'code';
    this.frameBox.hidden = tab !== 'preview';
    this.openLink.hidden = tab !== 'preview' || !this.preview;
    if (tab !== 'preview' || this.preview) return;
    const code = this.code;
    const kind = previewKind(this.lang, code);
    if (!kind) return;
    this.frameBox.replaceChildren(h('div.preview-wait', {}, 'Starting the preview…'));
    try {
      const { iframe, tabUrl } = await mountPreview(this.frameBox, previewDocument(kind, code));
      if (this.code !== code) return;
      this.preview = { iframe, tabUrl, code };
      this.openLink.href = tabUrl;
      this.openLink.hidden = this.tab !== 'preview';
    } catch (err) {
      this.frameBox.replaceChildren(h('div.preview-wait', {}, 'The preview could not start.'));
      toast(err.title || 'Preview failed', err.message, 'error');
    }
  }
}

export class AnswerView {
  constructor(el, { autoPreview = true } = {}) {
    this.el = el;
    this.autoPreview = autoPreview;
    el.classList.add('md');
    this.blocks = [];
    this.lastText = null;
  }

  /** Show `text` (MASK_CHAR marks masked tokens); final: the run is over, so every block has settled. */
  update(text, final = false) {
    if (text === this.lastText && !final) return;
    this.lastText = text;
    const { html, blocks } = render(text);
    const parsed = document.createElement('template');
    parsed.innerHTML = html; // escaped Markdown (see markdown.js)
    blocks.forEach((info, j) => {
      const block = this.blocks[j] || (this.blocks[j] = new CodeBlock({ autoPreview: this.autoPreview }));
      block.update(info, (final || info.closed) && !info.code.includes(MASK_CHAR));
    });
    this.blocks.length = blocks.length;
    // Code blocks nested in lists or quotes go into their slot; top-level ones are patched in place.
    for (const slot of parsed.content.querySelectorAll('* .md-code')) slot.replaceWith(this.blocks[Number(slot.dataset.block)].el);
    this.patch([...parsed.content.childNodes]);
  }

  /** Make the container's children match `nodes`, leaving unchanged nodes and every top-level
   *  code block where they are: an iframe that is detached and re-attached reloads (flicker). */
  patch(nodes) {
    let cursor = this.el.firstChild;
    for (const node of nodes) {
      const slot = node.nodeType === 1 && node.classList.contains('md-code') ? this.blocks[Number(node.dataset.block)].el : null;
      if (slot) {
        if (cursor === slot) { cursor = cursor.nextSibling; continue; }
        if (slot.isConnected && this.el.moveBefore) this.el.moveBefore(slot, cursor);
        else this.el.insertBefore(slot, cursor);
        continue;
      }
      if (cursor && !isCodeBlock(cursor) && cursor.nodeType === node.nodeType &&
          (node.nodeType === 1 ? cursor.outerHTML === node.outerHTML : cursor.data === node.data)) {
        cursor = cursor.nextSibling;
        continue;
      }
      if (cursor && !isCodeBlock(cursor)) {
        const next = cursor.nextSibling;
        this.el.replaceChild(node, cursor);
        cursor = next;
      } else {
        this.el.insertBefore(node, cursor);
      }
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
  }
}

/** Text of a run at step k with masked tokens as MASK_CHAR (for AnswerView). */
export function answerText(run, k) {
  return run.text(k, MASK_CHAR);
}

function isCodeBlock(node) {
  return node.nodeType === 1 && node.classList.contains('codeblock');
}
