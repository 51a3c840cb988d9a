// The studio's entry point: theme, routing between views, the model list, keyboard shortcuts.

import { models as fetchModels, onKeyNeeded } from './api.js';
import { $, $$, ownsKey, toast, typing } from './ui.js';
import { ChatView } from './views/chat.js';
import { CompareView } from './views/compare.js';
import { DiffuseView } from './views/diffuse.js';
import { InfillView } from './views/infill.js';
import { PreviewView } from './views/preview.js';
import { SudokuView } from './views/sudoku.js';

const VIEWS = { diffuse: DiffuseView, compare: CompareView, infill: InfillView, sudoku: SudokuView, chat: ChatView, preview: PreviewView };
const ORDER = Object.keys(VIEWS);
const THEME_KEY = 'unmask.theme';
const HEALTH_MS = 4000; // how often the status pill asks the server whether it is still there
const HEALTH_TIMEOUT_MS = 3500;

class Studio {
  constructor() {
    this.views = {};
    this.models = [];
    this.current = null;
    this.theme();
    this.keys();
    onKeyNeeded(() => this.askKey());
    addEventListener('hashchange', () => this.route());
    this.route();
    this.loadModels();
    addEventListener('focus', () => this.loadModels({ quiet: true }));
    this.offline = false;
    setInterval(() => this.health(), HEALTH_MS);
  }

  /** Poll /health (public, no key): a server that stopped answering turns the pill red. */
  async health() {
    let ok = false;
    try {
      const reply = await fetch('/health', { cache: 'no-store', credentials: 'same-origin', signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
      ok = reply.ok;
    } catch { ok = false; }
    if (!ok) this.showOffline();
    else if (this.offline) this.loadModels({ quiet: true }); // back: list its models again
  }

  showOffline() {
    this.offline = true;
    const state = $('#server-state');
    state.className = 'server-state bad';
    state.lastElementChild.textContent = 'offline';
    state.title = `No answer from ${location.host}: start the server again (unmask studio, or unmask serve)`;
  }

  theme() {
    let theme = null;
    try { theme = localStorage.getItem(THEME_KEY); } catch { /* */ }
    if (!theme) theme = matchMedia('(prefers-color-scheme: light)').matches ? 'light' : 'dark';
    document.documentElement.dataset.theme = theme;
    $('#theme-btn').addEventListener('click', () => this.toggleTheme());
    $('#shortcuts-btn').addEventListener('click', () => $('#shortcuts-dialog').showModal());
  }

  toggleTheme() {
    const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    try { localStorage.setItem(THEME_KEY, next); } catch { /* */ }
    for (const v of Object.values(this.views)) v.stage?.timeline.drawSpark();
  }

  view(name) {
    if (!this.views[name]) {
      const root = document.getElementById(`view-${name}`);
      this.views[name] = new VIEWS[name](root, this);
      if (this.models.length) this.views[name].setModels?.(this.models);
    }
    return this.views[name];
  }

  route() {
    const [, name = 'diffuse', arg = ''] = /^#\/?([\w-]*)\/?([\w-]*)/.exec(location.hash) || [];
    const key = VIEWS[name] ? name : 'diffuse';
    for (const section of $$('.view')) section.hidden = section.dataset.view !== key;
    for (const tab of $$('.tabs a')) tab.setAttribute('aria-selected', String(tab.dataset.view === key));
    this.revealTab($(`.tabs a[data-view="${key}"]`));
    const view = this.view(key);
    this.current = view;
    document.title = `${key[0].toUpperCase()}${key.slice(1)} · unmask studio`;
    view.route?.(arg);
    view.show?.();
  }

  /** A phone's tab bar scrolls: keep the active tab in it (without scrolling the page). */
  revealTab(tab) {
    const bar = tab?.parentElement;
    if (!bar || bar.scrollWidth <= bar.clientWidth) return;
    const left = tab.offsetLeft - bar.offsetLeft, right = left + tab.offsetWidth;
    if (left < bar.scrollLeft) bar.scrollLeft = Math.max(0, left - 12);
    else if (right > bar.scrollLeft + bar.clientWidth) bar.scrollLeft = right - bar.clientWidth + 12;
  }

  async loadModels({ quiet = false } = {}) {
    const state = $('#server-state');
    clearTimeout(this.retry);
    try {
      this.models = await fetchModels({ refresh: true });
      this.offline = false;
      const loaded = this.models.filter(m => m.loaded).length;
      state.className = 'server-state ok';
      state.lastElementChild.textContent = `${this.models.length} model${this.models.length === 1 ? '' : 's'}${loaded ? ` · ${loaded} loaded` : ''}`;
      state.title = this.models.map(m => `${m.name}${m.loaded ? ' (loaded)' : ''}`).join('\n');
      for (const v of Object.values(this.views)) v.setModels?.(this.models);
    } catch (err) {
      this.showOffline();
      if (!quiet) toast(err.title || 'Can’t list models', err.message, 'error');
      this.retry = setTimeout(() => this.loadModels({ quiet: true }), 5000);
    }
  }

  /** A run started on `name`: it is loaded now. */
  modelLoaded(name) {
    const m = this.models.find(x => x.name === name);
    if (m && !m.loaded) {
      m.loaded = true;
      for (const v of Object.values(this.views)) v.picker?.paint();
      this.loadModels({ quiet: true });
    }
  }

  askKey() {
    const dialog = $('#key-dialog');
    const input = $('#key-input');
    input.value = '';
    dialog.showModal();
    return new Promise(resolve => {
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok' ? input.value.trim() : null), { once: true });
    });
  }

  keys() {
    addEventListener('keydown', e => {
      if ($('dialog[open]')) return;
      const view = this.current;
      if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') { e.preventDefault(); view?.primary?.(); return; }
      if ((e.ctrlKey || e.metaKey) && !e.shiftKey && !e.altKey && (e.key === 'g' || e.key === 'G') && view?.insertGap) {
        e.preventDefault(); // the browser's "find next" otherwise
        view.insertGap();
        return;
      }
      // Ctrl+Z outside a text field (a text field keeps its own undo): undo the latest rewrite.
      if ((e.ctrlKey || e.metaKey) && !e.shiftKey && !e.altKey && (e.key === 'z' || e.key === 'Z') && !typing() && view?.undo) {
        if (view.undo()) e.preventDefault();
        return;
      }
      if (e.key === 'Escape') { view?.escape?.(); if (typing()) document.activeElement.blur(); return; }
      if (typing() || e.ctrlKey || e.metaKey || e.altKey) return;
      // A focused slider, checkbox or button keeps its own keys (← moves the slider, Space ticks the box).
      if (ownsKey(e)) return;
      if (/^[1-6]$/.test(e.key)) { location.hash = `#/${ORDER[Number(e.key) - 1]}`; e.preventDefault(); return; }
      if (e.key === '?') { $('#shortcuts-dialog').showModal(); e.preventDefault(); return; }
      if (e.key === 't' || e.key === 'T') { this.toggleTheme(); return; }
      if (e.key === '/') { e.preventDefault(); view?.focusPrompt?.(); return; }
      if (view?.key?.(e)) e.preventDefault();
    });
  }
}

// A module script runs once the document is parsed.
window.unmaskStudio = new Studio();
