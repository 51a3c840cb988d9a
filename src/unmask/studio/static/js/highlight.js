// A small code highlighter: a sticky-regex scanner per language family. Output is escaped HTML
// with <span class="hl-..."> around comments, strings, keywords, numbers, tags and attributes.

export const MASK_CHAR = '\uE000'; // a still-masked token inside text being rendered

export function escapeHTML(s) {
  return s.replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]))
    .replace(/\uE000/g, '<span class="ph" aria-label="masked"></span>');
}

const words = list => new RegExp(`\\b(?:${list.split(' ').join('|')})\\b`, 'y');

const JS_KEYWORDS = 'await async break case catch class const continue debugger default delete do else export extends finally for from function get if import in instanceof let new of return set static super switch this throw try typeof var void while with yield true false null undefined NaN Infinity interface type enum implements private public protected readonly as';
const PY_KEYWORDS = 'and as assert async await break class continue def del elif else except False finally for from global if import in is lambda None nonlocal not or pass raise return self True try while with yield match case';
const C_KEYWORDS = 'auto break case char const continue default do double else enum extern float for goto if inline int long register return short signed sizeof static struct switch typedef union unsigned void volatile while bool true false nullptr class public private protected virtual override template typename namespace using new delete this throw try catch fn let mut impl trait pub use mod crate self Self match loop where dyn move ref struct enum as in func go chan defer package import type var range map interface select fallthrough string byte rune nil final abstract extends implements package import throws synchronized boolean String';
const SH_KEYWORDS = 'if then else elif fi for while until do done case esac in function return export local readonly echo cd exit set unset source alias';

const STRINGS = [
  [/"(?:[^"\\\n]|\\.)*"?/y, 'str'],
  [/'(?:[^'\\\n]|\\.)*'?/y, 'str'],
];

const RULES = {
  js: [
    [/\/\/[^\n]*/y, 'com'], [/\/\*[\s\S]*?(?:\*\/|$)/y, 'com'],
    [/`(?:[^`\\]|\\[\s\S])*`?/y, 'str'], ...STRINGS,
    [/\b(?:0[xob][\da-f_]+|\d[\d_]*\.?\d*(?:e[+-]?\d+)?n?)\b/iy, 'num'],
    [words(JS_KEYWORDS), 'kw'],
    [/[A-Za-z_$][\w$]*(?=\s*\()/y, 'fn'],
    [/[A-Za-z_$][\w$]*/y, null],
  ],
  py: [
    [/#[^\n]*/y, 'com'],
    [/(?:[rbfu]{0,2})"""[\s\S]*?(?:"""|$)/iy, 'str'], [/(?:[rbfu]{0,2})'''[\s\S]*?(?:'''|$)/iy, 'str'],
    [/[rbfu]{0,2}(?="|')/iy, 'str'], ...STRINGS,
    [/@[\w.]+/y, 'fn'],
    [/\b(?:0[xob][\da-f_]+|\d[\d_]*\.?\d*(?:e[+-]?\d+)?j?)\b/iy, 'num'],
    [words(PY_KEYWORDS), 'kw'],
    [/[A-Za-z_]\w*(?=\s*\()/y, 'fn'],
    [/[A-Za-z_]\w*/y, null],
  ],
  c: [
    [/\/\/[^\n]*/y, 'com'], [/\/\*[\s\S]*?(?:\*\/|$)/y, 'com'], [/#\s*\w+/y, 'kw'],
    ...STRINGS,
    [/\b(?:0x[\da-f]+|\d+\.?\d*(?:e[+-]?\d+)?)[fFuUlL]*\b/iy, 'num'],
    [words(C_KEYWORDS), 'kw'],
    [/[A-Za-z_]\w*!?(?=\s*\()/y, 'fn'],
    [/[A-Za-z_]\w*/y, null],
  ],
  css: [
    [/\/\*[\s\S]*?(?:\*\/|$)/y, 'com'], ...STRINGS,
    [/@[\w-]+/y, 'kw'],
    [/#[\da-f]{3,8}\b/iy, 'num'],
    [/-?\d*\.?\d+(?:%|[a-z]+)?/iy, 'num'],
    [/[\w-]+(?=\s*:[^;{]*[;}])/y, 'attr'],
    [/[\w-]+(?=\()/y, 'fn'],
    [/[\w-]+/y, null],
  ],
  sh: [
    [/#[^\n]*/y, 'com'], ...STRINGS,
    [/\$\{?[\w@#?*]+\}?/y, 'attr'],
    [words(SH_KEYWORDS), 'kw'],
    [/--?[\w-]+/y, 'fn'],
    [/\d+/y, 'num'], [/[\w./-]+/y, null],
  ],
  json: [
    [/"(?:[^"\\\n]|\\.)*"(?=\s*:)/y, 'attr'], [/"(?:[^"\\\n]|\\.)*"?/y, 'str'],
    [/-?\d+\.?\d*(?:e[+-]?\d+)?/iy, 'num'], [/\b(?:true|false|null)\b/y, 'kw'],
  ],
};

const ALIASES = {
  javascript: 'js', jsx: 'js', ts: 'js', tsx: 'js', typescript: 'js', mjs: 'js', node: 'js',
  python: 'py', py3: 'py', python3: 'py',
  html: 'html', htm: 'html', xml: 'html', svg: 'html', xhtml: 'html', vue: 'html',
  css: 'css', scss: 'css', less: 'css',
  bash: 'sh', shell: 'sh', sh: 'sh', zsh: 'sh', console: 'sh', shellscript: 'sh',
  json: 'json', jsonc: 'json',
  c: 'c', h: 'c', cpp: 'c', 'c++': 'c', cc: 'c', java: 'c', rust: 'c', rs: 'c', go: 'c', golang: 'c', cs: 'c', csharp: 'c', kotlin: 'c', swift: 'c',
};

export function languageOf(lang) {
  const key = (lang || '').toLowerCase().trim();
  return ALIASES[key] || (RULES[key] ? key : null);
}

function scan(code, rules) {
  let out = '';
  let pos = 0;
  let plain = '';
  const flush = () => { if (plain) { out += escapeHTML(plain); plain = ''; } };
  while (pos < code.length) {
    let matched = false;
    for (const [re, cls] of rules) {
      re.lastIndex = pos;
      const m = re.exec(code);
      if (m && m[0].length) {
        if (cls) { flush(); out += `<span class="hl-${cls}">${escapeHTML(m[0])}</span>`; }
        else plain += m[0];
        pos += m[0].length;
        matched = true;
        break;
      }
    }
    if (!matched) plain += code[pos++];
  }
  flush();
  return out;
}

function highlightHTML(code) {
  let out = '';
  const re = /<!--[\s\S]*?(?:-->|$)|<(script|style)\b([^>]*)>([\s\S]*?)(<\/\1\s*>|$)|<\/?[A-Za-z][\w:-]*(?:\s+[^\s=>/]+(?:\s*=\s*(?:"[^"]*"?|'[^']*'?|[^\s>]+))?)*\s*\/?>?|<!doctype[^>]*>?/giy;
  let pos = 0;
  let plain = '';
  const flush = () => { if (plain) { out += escapeHTML(plain); plain = ''; } };
  while (pos < code.length) {
    re.lastIndex = pos;
    const m = code[pos] === '<' ? re.exec(code) : null;
    if (!m) { plain += code[pos++]; continue; }
    flush();
    if (m[0].startsWith('<!--')) out += `<span class="hl-com">${escapeHTML(m[0])}</span>`;
    else if (m[1]) {
      const open = `<${m[1]}${m[2]}>`;
      out += tag(open) + (m[1].toLowerCase() === 'script' ? scan(m[3], RULES.js) : scan(m[3], RULES.css)) + (m[4] ? tag(m[4]) : '');
    } else out += tag(m[0]);
    pos += m[0].length;
  }
  flush();
  return out;
}

function tag(text) {
  const re = /^(<\/?)([\w:!-]+)|(\s)([^\s=>/]+)(\s*=\s*)?("[^"]*"?|'[^']*'?|[^\s>]+)?|(\/?>)$/g;
  let out = '';
  let last = 0;
  for (const m of text.matchAll(re)) {
    out += escapeHTML(text.slice(last, m.index)); // whatever lies between the parts, escaped too
    last = m.index + m[0].length;
    const [, lt, name, sp, attr, eq, val, end] = m;
    if (lt) out += `<span class="hl-punct">${escapeHTML(lt)}</span><span class="hl-tag">${escapeHTML(name)}</span>`;
    else if (end) out += `<span class="hl-punct">${escapeHTML(end)}</span>`;
    else out += escapeHTML(sp) + `<span class="hl-attr">${escapeHTML(attr)}</span>` + (eq ? escapeHTML(eq) : '') + (val ? `<span class="hl-str">${escapeHTML(val)}</span>` : '');
  }
  return out + escapeHTML(text.slice(last));
}

/** Highlighted, escaped HTML for `code` in `lang` (plain escaped text for unknown languages). */
export function highlight(code, lang) {
  const family = languageOf(lang);
  if (family === 'html') return highlightHTML(code);
  if (family && RULES[family]) return scan(code, RULES[family]);
  return escapeHTML(code);
}
