// The studio's only way to the server: same-origin fetches, the /api/diffuse SSE stream, and
// errors turned into sentences a person can act on.

const KEY_STORAGE = 'unmask.apiKey';

export class ApiError extends Error {
  constructor(message, { status = 0, code = null, param = null, type = null, title = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
    this.type = type;
    this.title = title || titleFor(status, code);
  }
}

function titleFor(status, code) {
  if (code === 'network') return 'Can’t reach the unmask server';
  if (status === 401) return 'API key needed';
  if (status === 403) return 'The server refused this page';
  if (status === 404 && code === 'model_not_found') return 'Model not available';
  if (status === 429) return 'The server is busy';
  if (status === 503) return 'The server is not ready';
  if (status >= 500) return 'The server hit a problem';
  if (status === 400 || status === 422) return 'Check the settings';
  return 'Something went wrong';
}

function apiKey() {
  try { return sessionStorage.getItem(KEY_STORAGE); } catch { return null; }
}

export function setApiKey(key) {
  try { key ? sessionStorage.setItem(KEY_STORAGE, key) : sessionStorage.removeItem(KEY_STORAGE); } catch { /* private mode */ }
}

// A key handed over in the URL (`unmask studio` with --api-key) is taken once and removed from it.
(function takeKeyFromUrl() {
  const match = /(?:^|[#&])key=([^&]+)/.exec(location.hash);
  if (match) {
    setApiKey(decodeURIComponent(match[1]));
    history.replaceState(null, '', location.pathname + location.hash.replace(/[#&]?key=[^&]+/, '').replace(/^#?&/, '#'));
  }
})();

let askForKey = null;
/** The app registers how to ask for a key (a dialog); requests answered 401 retry once with it. */
export function onKeyNeeded(fn) { askForKey = fn; }

function headers(extra = {}) {
  const out = { ...extra };
  const key = apiKey();
  if (key) out.Authorization = `Bearer ${key}`;
  return out;
}

async function errorFrom(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  const err = body && body.error ? body.error : {};
  let message = err.message || `${response.status} ${response.statusText}`;
  if (response.status === 403 && err.code === 'forbidden_origin') {
    message = 'This page’s origin is not allowed to call the API. Open the studio from the server’s own address.';
  }
  return new ApiError(message, { status: response.status, code: err.code, param: err.param, type: err.type });
}

function networkError(err) {
  return new ApiError(`No answer from ${location.host}. Is \`unmask serve\` (or \`unmask studio\`) still running?`,
    { code: 'network', title: titleFor(0, 'network') });
}

async function send(path, init, retried = false) {
  let response;
  try {
    response = await fetch(path, { credentials: 'same-origin', cache: 'no-store', ...init, headers: headers(init.headers) });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw networkError(err);
  }
  if (response.status === 401 && !retried && askForKey) {
    const key = await askForKey();
    if (key) {
      setApiKey(key);
      return send(path, init, true);
    }
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

export async function getJSON(path, { signal } = {}) {
  return (await send(path, { method: 'GET', signal })).json();
}

export async function postJSON(path, body, { signal } = {}) {
  return (await send(path, {
    method: 'POST', signal, body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' },
  })).json();
}

/** Parse an SSE byte stream into {event, data} objects (data parsed as JSON). */
export async function* sseFrames(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, '');
        const frame = parseBlock(block);
        if (frame) yield frame;
      }
    }
    const frame = parseBlock(buffer + decoder.decode());
    if (frame) yield frame;
  } finally {
    reader.releaseLock();
  }
}

function parseBlock(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return null;
  const text = data.join('\n');
  try { return { event, data: JSON.parse(text) }; } catch { return { event, data: text }; }
}

/** POST /api/diffuse with stream: true; calls handlers.start/step/done/progress as frames come.
 *  Resolves with the done payload; rejects with ApiError (HTTP or `event: error`) or AbortError. */
export async function generate(body, handlers = {}, { signal } = {}) {
  const response = await send('/api/diffuse', {
    method: 'POST', signal, body: JSON.stringify({ ...body, stream: true }),
    headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
  });
  let done = null;
  try {
    for await (const { event, data } of sseFrames(response.body)) {
      if (event === 'start') handlers.start?.(data);
      else if (event === 'step') handlers.step?.(data);
      else if (event === 'done') { done = data; handlers.done?.(data); }
      else if (event === 'load' || event === 'progress') handlers.progress?.(data);
      else if (event === 'error') {
        const e = data.error || {};
        throw new ApiError(e.message || 'the generation failed', { status: 500, code: e.code, param: e.param, type: e.type });
      }
    }
  } catch (err) {
    if (err instanceof ApiError || err.name === 'AbortError') throw err;
    if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
    throw networkError(err);
  }
  if (!done) throw new ApiError('The stream ended before the generation finished.', { status: 500, code: 'incomplete' });
  return done;
}

let modelsCache = null;
/** GET /api/models, cached until refresh is asked for. */
export async function models({ refresh = false } = {}) {
  if (!modelsCache || refresh) modelsCache = getJSON('/api/models').then(r => r.models || []);
  try {
    return await modelsCache;
  } catch (err) {
    modelsCache = null;
    throw err;
  }
}

/** Keep a generated document on the server for the sandboxed preview: {id, url, tab_url}. */
export function createPreview(html) {
  return postJSON('/api/preview', { html });
}
