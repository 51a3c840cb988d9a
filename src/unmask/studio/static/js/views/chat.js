// Chat: multi-turn conversations with chat models. The answer diffuses in place as Markdown
// (placeholders inside the text), then settles; code blocks get Copy and, for HTML/SVG/JS, Preview.

import { AnswerView, answerText } from '../answer.js';
import { CHAT_PROMPTS } from '../examples.js';
import { LiveRun, isAbort } from '../live.js';
import { ModelPicker } from '../models.js';
import { errorBox } from '../stage.js';
import { atomLoader, copyButton, count, formatRate, formatSeconds, h, icon, paintRange, toast } from '../ui.js';

const STORE = 'unmask.chats';
const MAX_CHATS = 30;
const LENGTHS = [32, 64, 128, 256, 512];

function loadChats() {
  try { return JSON.parse(localStorage.getItem(STORE) || '[]'); } catch { return []; }
}

export class ChatView {
  constructor(root, app) {
    this.app = app;
    this.chats = loadChats();
    this.current = null;
    this.live = null;
    this.picker = new ModelPicker({ kinds: ['chat'], storageKey: 'chat', label: 'Chat model', onChange: m => this.modelChanged(m) });
    this.list = h('nav.chat-list', { 'aria-label': 'Conversations' });
    this.messages = h('div.messages', { role: 'log', 'aria-live': 'polite', 'aria-label': 'Conversation' });
    this.input = h('textarea.chat-input', { rows: 1, placeholder: 'Message…  (Enter to send, Shift+Enter for a new line)', 'aria-label': 'Message' });
    this.input.addEventListener('input', () => this.grow());
    this.input.addEventListener('keydown', e => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.send(); }
    });
    this.sendBtn = h('button.icon-btn.send-btn', { type: 'button', 'aria-label': 'Send (Enter)', title: 'Send (Enter)', onclick: () => this.send() }, icon('send'));
    this.stopBtn = h('button.icon-btn.send-btn.stop', { type: 'button', hidden: true, 'aria-label': 'Stop (Esc)', title: 'Stop (Esc)', onclick: () => this.live?.cancel() }, icon('stop'));
    this.length = h('select', { 'aria-label': 'Answer length in tokens' }, LENGTHS.map(n => h('option', { value: String(n) }, `${n} tokens`)));
    this.length.value = localStorage.getItem('unmask.chat.length') || '128';
    this.length.addEventListener('change', () => { try { localStorage.setItem('unmask.chat.length', this.length.value); } catch { /* */ } });
    this.stepsRatio = h('input', { type: 'range', min: '1', max: '4', step: '1', value: localStorage.getItem('unmask.chat.ratio') || '2', 'aria-label': 'Tokens per step' });
    this.ratioOut = h('output.num');
    const ratioChanged = () => { this.ratioOut.textContent = `${this.stepsRatio.value} tok/step`; paintRange(this.stepsRatio); try { localStorage.setItem('unmask.chat.ratio', this.stepsRatio.value); } catch { /* */ } };
    this.stepsRatio.addEventListener('input', ratioChanged);
    ratioChanged();
    this.noModel = h('div.empty.chat-missing', { hidden: true },
      h('h3', {}, 'No chat model yet'),
      h('p', {}, 'Chat needs an instruct model with a chat template. Download one once, then restart the studio:'),
      h('pre.cmd', {}, 'unmask pull dream      # Dream-v0-Instruct-7B\nunmask pull llada      # LLaDA-8B-Instruct'),
      h('p', {}, 'Meanwhile, see what a code answer looks like in ', h('a', { href: '#/preview' }, 'Preview'), ', or watch the story model in ', h('a', { href: '#/diffuse' }, 'Diffuse'), '.'));
    this.composer = h('div.composer', {},
      h('div.composer-box', {}, this.input, this.sendBtn, this.stopBtn),
      h('div.composer-tools', {}, this.picker.el, this.length, h('label.ratio', {}, this.stepsRatio, this.ratioOut), h('span.faint.hint', {}, 'Esc stops · Ctrl ↵ sends')));
    root.append(h('div.chat-layout', {},
      h('aside.chat-side', {},
        h('button.btn.new-chat', { type: 'button', onclick: () => this.newChat() }, icon('plus'), 'New chat'),
        this.list),
      h('div.chat-main', {}, this.noModel, this.messages, this.composer)));
    this.open(this.chats[0]?.id || null);
  }

  setModels(models) { this.picker.setModels(models); }

  modelChanged(info) {
    this.noModel.hidden = !!info;
    this.composer.classList.toggle('disabled', !info);
    this.input.disabled = !info;
    this.sendBtn.disabled = !info;
    if (!info) this.messages.replaceChildren();
    else this.open(this.current?.id || null);
  }

  grow() {
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(220, this.input.scrollHeight)}px`;
  }

  save() {
    try { localStorage.setItem(STORE, JSON.stringify(this.chats.slice(0, MAX_CHATS))); } catch { /* full or private */ }
    this.renderList();
  }

  renderList() {
    this.list.replaceChildren(...this.chats.map(c => h('div.chat-item', { class: `chat-item${c.id === this.current?.id ? ' current' : ''}` },
      h('button.chat-open', { type: 'button', onclick: () => this.open(c.id), title: c.title }, c.title || 'New chat'),
      h('button.icon-btn.chat-del', { type: 'button', 'aria-label': `Delete “${c.title || 'chat'}”`, onclick: () => this.remove(c.id) }, icon('trash')))));
  }

  newChat() {
    this.live?.cancel();
    this.current = null;
    this.open(null);
    this.input.focus();
  }

  remove(id) {
    this.chats = this.chats.filter(c => c.id !== id);
    if (this.current?.id === id) this.current = null;
    this.save();
    this.open(this.current?.id || null);
  }

  open(id) {
    this.current = this.chats.find(c => c.id === id) || null;
    this.renderList();
    this.messages.replaceChildren();
    if (!this.current) {
      if (this.picker.empty) return;
      this.messages.append(h('div.empty.chat-empty', {},
        h('h3', {}, 'Ask anything'),
        h('p', {}, 'The answer is written the diffusion way: a block of placeholders that resolves, out of order, into Markdown. Code blocks settle, then an HTML one gets a live Preview.'),
        h('div.chips', {}, CHAT_PROMPTS.map(p => h('button.chip', { type: 'button', onclick: () => { this.input.value = p; this.send(); } }, p))),
        h('p.faint', {}, 'Or ', h('a', { href: '#/preview/helium' }, 'see a code answer with a live preview'), '.')));
      return;
    }
    for (const m of this.current.messages) this.messages.append(this.bubble(m));
    this.scroll();
  }

  bubble(message) {
    if (message.role === 'user') {
      return h('div.msg.user', {}, h('div.msg-body', {}, message.content), h('div.msg-actions', {}, copyButton(() => message.content)));
    }
    const body = h('div.msg-body');
    const view = new AnswerView(body);
    view.update(message.content, true);
    const meta = message.stats ? h('span.faint.msg-meta', {}, message.stats) : null;
    return h('div.msg.assistant', {}, body, h('div.msg-actions', {}, copyButton(() => message.content), meta));
  }

  scroll() {
    const el = document.scrollingElement;
    const near = el.scrollHeight - el.scrollTop - el.clientHeight < 240;
    if (near) window.scrollTo({ top: el.scrollHeight });
  }

  send() {
    const text = this.input.value.trim();
    const info = this.picker.info;
    if (!text || !info) return;
    if (this.live?.active) { toast('Still answering', 'Stop the current answer first (Esc).'); return; }
    if (!this.current) {
      this.current = { id: `c${Date.now().toString(36)}`, title: text.slice(0, 60), model: info.name, messages: [] };
      this.chats.unshift(this.current);
      this.open(this.current.id);
    }
    const chat = this.current;
    chat.messages.push({ role: 'user', content: text });
    this.messages.querySelector('.chat-empty')?.remove();
    this.messages.append(this.bubble({ role: 'user', content: text }));
    this.input.value = '';
    this.grow();
    this.save();

    const length = Number(this.length.value);
    const ratio = Number(this.stepsRatio.value);
    const body = { model: info.name, messages: chat.messages.map(m => ({ role: m.role, content: m.content })), max_new_tokens: length, steps: Math.max(1, Math.round(length / ratio)) };
    const answerEl = h('div.msg-body');
    const view = new AnswerView(answerEl);
    const meta = h('span.faint.msg-meta');
    const msg = h('div.msg.assistant.diffusing', {}, answerEl, h('div.msg-actions', {}, meta));
    this.messages.append(msg);
    this.scroll();
    let loader = null;
    this.sendBtn.hidden = true;
    this.stopBtn.hidden = false;
    const finish = () => { this.sendBtn.hidden = false; this.stopBtn.hidden = true; msg.classList.remove('diffusing'); };
    this.live = new LiveRun(body, { kind: 'chat' }, {
      waiting: ms => {
        if (!loader) { loader = atomLoader(info.loaded ? 'Thinking…' : `Loading ${info.name}…`, { small: true }); answerEl.replaceChildren(loader.el); }
        loader.set(null, `${(ms / 1000).toFixed(1)} s`);
      },
      start: () => { answerEl.replaceChildren(); this.app.modelLoaded(info.name); },
      frame: (run, k) => {
        view.update(answerText(run, k));
        const f = run.steps[k - 1];
        if (f) meta.textContent = `step ${k} / ${run.totalSteps} · ${formatRate(f.tokens_per_second)} tok/s`;
        this.scroll();
      },
      done: run => {
        finish();
        const text = run.done.text;
        view.update(text, true);
        const t = run.done.timings || {};
        // The server's accounting, as Diffuse and Compare show it: the answer's tokens over denoising time.
        const stats = `${count(run.done.usage?.completion_tokens, 'token')} · ${formatRate(t.tokens_per_second)} tok/s · ${run.lastStep} steps · ${formatSeconds(t.elapsed)} · ${info.name}`;
        meta.textContent = stats;
        msg.querySelector('.msg-actions').prepend(copyButton(() => text));
        chat.messages.push({ role: 'assistant', content: text, stats });
        this.save();
      },
      error: (err, run) => {
        finish();
        if (isAbort(err)) {
          meta.textContent = 'stopped';
          if (!run) msg.remove();
          return;
        }
        if (!run) answerEl.replaceChildren();
        msg.append(errorBox(err));
        chat.messages.pop(); // the question stays in the box to retry
        this.input.value = text;
        this.save();
      },
    });
    this.live.start();
  }

  show() { if (!this.input.disabled) this.input.focus({ preventScroll: true }); }
  primary() { this.send(); }
  escape() { this.live?.cancel(); }
  focusPrompt() { this.input.focus(); }
  key() { return false; }
}
