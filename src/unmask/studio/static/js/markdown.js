// A small Markdown renderer for model answers: headings, paragraphs, emphasis, inline code, links,
// lists, block quotes, tables, rules and fenced code. Everything is escaped first; raw HTML in
// an answer shows as text. Fenced code blocks are left as placeholders
// (<div class="md-code" data-block="N">) for the caller to fill; `blocks` describes them.

import { MASK_CHAR, escapeHTML } from './highlight.js';

const SAFE_URL = /^(https?:|mailto:)/i;
const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)[^`]*$/;

/** render(markdown) -> {html, blocks: [{lang, code, closed}]} */
export function render(markdown) {
  const blocks = [];
  const html = renderBlocks(markdown.replace(/\r\n?/g, '\n').split('\n'), blocks);
  return { html, blocks };
}

function renderBlocks(lines, blocks) {
  let out = '';
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = FENCE.exec(line);
    if (fence) {
      const marker = fence[1];
      const body = [];
      i++;
      let closed = false;
      while (i < lines.length) {
        if (lines[i].trim().startsWith(marker[0].repeat(marker.length)) && /^ {0,3}(`{3,}|~{3,})\s*$/.test(lines[i])) { closed = true; i++; break; }
        body.push(lines[i]);
        i++;
      }
      blocks.push({ lang: fence[2].replace(/[^\w+#.-]/g, ''), code: body.join('\n'), closed });
      out += `<div class="md-code" data-block="${blocks.length - 1}"></div>`;
      continue;
    }
    if (!line.trim()) { i++; continue; }
    const heading = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      const n = heading[1].length;
      out += `<h${n}>${inline(heading[2])}</h${n}>`;
      i++;
      continue;
    }
    if (/^ {0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) { out += '<hr>'; i++; continue; }
    if (/^ {0,3}>/.test(line)) {
      const quoted = [];
      while (i < lines.length && /^ {0,3}>/.test(lines[i])) quoted.push(lines[i++].replace(/^ {0,3}> ?/, ''));
      out += `<blockquote>${renderBlocks(quoted, blocks)}</blockquote>`;
      continue;
    }
    if (isTableStart(lines, i)) {
      const [html, next] = table(lines, i);
      out += html;
      i = next;
      continue;
    }
    const item = LIST_ITEM.exec(line);
    if (item) {
      const [html, next] = list(lines, i, blocks);
      out += html;
      i = next;
      continue;
    }
    const para = [];
    while (i < lines.length && lines[i].trim() && !startsBlock(lines, i)) para.push(lines[i++]);
    if (!para.length) para.push(lines[i++]);
    out += `<p>${para.map((l, j) => inline(l.replace(/^\s+/, '').replace(/(\s{2,}|\\)$/, j < para.length - 1 ? '\u0001' : ''))).join('\n').replace(/\u0001/g, '<br>')}</p>`;
  }
  return out;
}

const LIST_ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;

function startsBlock(lines, i) {
  const l = lines[i];
  return FENCE.test(l) || /^ {0,3}#{1,6}\s/.test(l) || /^ {0,3}>/.test(l) || LIST_ITEM.test(l) ||
    /^ {0,3}([-*_])(\s*\1){2,}\s*$/.test(l) || isTableStart(lines, i);
}

function list(lines, i, blocks) {
  const first = LIST_ITEM.exec(lines[i]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const start = ordered ? parseInt(first[2], 10) : 1;
  const items = [];
  while (i < lines.length) {
    const m = LIST_ITEM.exec(lines[i]);
    if (!m || m[1].length !== indent || /\d/.test(m[2]) !== ordered) break;
    const body = [m[3]];
    i++;
    while (i < lines.length) {
      const l = lines[i];
      if (!l.trim()) {
        const next = lines[i + 1];
        if (next !== undefined && next.trim() && /^\s+/.exec(next)?.[0].length > indent) { body.push(''); i++; continue; }
        break;
      }
      const sub = LIST_ITEM.exec(l);
      if (sub && sub[1].length <= indent) break;
      if (!sub && !/^\s/.test(l) && startsBlock(lines, i)) break;
      body.push(l.replace(new RegExp(`^ {0,${indent + 4}}`), ''));
      i++;
    }
    items.push(body);
  }
  const tagName = ordered ? 'ol' : 'ul';
  const startAttr = ordered && start !== 1 ? ` start="${start}"` : '';
  const inner = items.map(body => {
    const task = /^\[( |x|X)\]\s+/.exec(body[0]);
    const prefix = task ? `<input type="checkbox" disabled${task[1] !== ' ' ? ' checked' : ''}> ` : '';
    if (task) body[0] = body[0].slice(task[0].length);
    const simple = body.length === 1 || body.slice(1).every(l => !l.trim() || !startsBlockLike(l)) && !body.includes('');
    const content = simple ? inline(body.join(' ').trim()) : renderBlocks(body, blocks);
    return `<li>${prefix}${content}</li>`;
  }).join('');
  return [`<${tagName}${startAttr}>${inner}</${tagName}>`, i];
}

function startsBlockLike(l) {
  return LIST_ITEM.test(l) || FENCE.test(l) || /^ {0,3}(#{1,6}\s|>)/.test(l);
}

function isTableStart(lines, i) {
  return i + 1 < lines.length && lines[i].includes('|') && /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/.test(lines[i + 1]);
}

function cells(line) {
  let l = line.trim();
  if (l.startsWith('|')) l = l.slice(1);
  if (l.endsWith('|') && !l.endsWith('\\|')) l = l.slice(0, -1);
  return l.split(/(?<!\\)\|/).map(c => c.trim().replace(/\\\|/g, '|'));
}

function table(lines, i) {
  const head = cells(lines[i]);
  const aligns = cells(lines[i + 1]).map(c => (c.startsWith(':') && c.endsWith(':') ? 'center' : c.endsWith(':') ? 'right' : c.startsWith(':') ? 'left' : ''));
  const cls = a => (a ? ` class="al-${a}"` : '');
  let html = `<div class="md-table"><table><thead><tr>${head.map((c, j) => `<th${cls(aligns[j])}>${inline(c)}</th>`).join('')}</tr></thead><tbody>`;
  i += 2;
  while (i < lines.length && lines[i].includes('|') && lines[i].trim()) {
    const row = cells(lines[i]);
    html += `<tr>${head.map((_, j) => `<td${cls(aligns[j])}>${inline(row[j] ?? '')}</td>`).join('')}</tr>`;
    i++;
  }
  return [`${html}</tbody></table></div>`, i];
}

/** Inline Markdown to HTML. Code spans are cut out first so nothing inside them is formatted. */
export function inline(text) {
  const codes = [];
  let s = text.replace(/(`+)([\s\S]*?[^`])\1(?!`)/g, (_, ticks, code) => {
    codes.push(code.replace(/^ (.*) $/, '$1'));
    return `\uE010${codes.length - 1}\uE011`;
  });
  const links = [];
  // Links before escaping (their URL is checked, then escaped); images are not loaded: no network.
  s = s.replace(/(!?)\[([^\]\n]*)\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g, (all, bang, label, url) => {
    if (bang) links.push(`<span class="md-img" title="images are not loaded">[image${label ? `: ${escapeHTML(label)}` : ''}]</span>`);
    else if (SAFE_URL.test(url)) links.push(`<a href="${escapeHTML(url)}" target="_blank" rel="noopener noreferrer nofollow">${inlineMarks(escapeHTML(label))}</a>`);
    else links.push(inlineMarks(escapeHTML(label)));
    return `\uE012${links.length - 1}\uE013`;
  });
  s = inlineMarks(escapeHTML(s));
  s = s.replace(/\b(https?:\/\/[^\s<>"')\]]+[^\s<>"').,;:!?\]])/g, url => `<a href="${url}" target="_blank" rel="noopener noreferrer nofollow">${url}</a>`);
  s = s.replace(/\uE012(\d+)\uE013/g, (_, n) => links[Number(n)]);
  return s.replace(/\uE010(\d+)\uE011/g, (_, n) => `<code>${escapeHTML(codes[Number(n)])}</code>`);
}

function inlineMarks(s) {
  return s
    .replace(/\\([\\`*_{}[\]()#+\-.!|~])/g, (_, c) => `&#${c.charCodeAt(0)};`)
    .replace(/(\*\*|__)(?=\S)([\s\S]*?\S)\1/g, '<strong>$2</strong>')
    .replace(/(^|[^\w*])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?!\*)/g, '$1<em>$2</em>')
    .replace(/(^|[^\w_])_(?=[^\s_])([^_\n]*?[^\s_])_(?![\w_])/g, '$1<em>$2</em>')
    .replace(/~~(?=\S)([\s\S]*?\S)~~/g, '<del>$1</del>');
}

export { MASK_CHAR };
