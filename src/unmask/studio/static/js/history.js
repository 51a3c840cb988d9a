// Run history: the recent finished runs of a view, kept across reloads in IndexedDB (the frames the
// server sent, so each replays, scrubs and exports as it did live), the newest first, at most KEEP.

import { runFromFrames } from './run.js';

const DB = 'unmask-studio';
const STORE = 'runs';
export const KEEP = 20;

let opened = null;

function db() {
  opened ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => {
      const store = req.result.createObjectStore(STORE, { keyPath: 'key', autoIncrement: true });
      store.createIndex('view', 'view');
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return opened;
}

function done(req) {
  return new Promise((resolve, reject) => { req.onsuccess = () => resolve(req.result); req.onerror = () => reject(req.error); });
}

async function store(mode) {
  return (await db()).transaction(STORE, mode).objectStore(STORE);
}

/** The frames and meta of a finished run: what runFromFrames needs to build it again. */
export function record(run, view) {
  const text = ((run.meta.fixed || '') + (run.done?.text ?? run.text())).trim();
  return {
    view, savedAt: Date.now(), model: run.model, steps: run.lastStep,
    label: text.length > 80 ? `${text.slice(0, 78)}…` : text,
    start: run.start, frames: run.steps, done: run.done, meta: run.meta,
  };
}

/** Keep a finished run of `view`; the oldest beyond KEEP go. Resolves with its key (null if not kept). */
export async function save(run, view) {
  try {
    const s = await store('readwrite');
    const key = await done(s.add(structuredClone(record(run, view))));
    const keys = await done(s.index('view').getAllKeys(view));
    for (const old of keys.sort((a, b) => a - b).slice(0, Math.max(0, keys.length - KEEP))) s.delete(old);
    return key;
  } catch {
    return null; // private windows and full disks: the run is just not kept
  }
}

/** The kept runs of `view`, the newest first. */
export async function list(view) {
  try {
    const rows = await done((await store('readonly')).index('view').getAll(view));
    return rows.sort((a, b) => b.key - a.key);
  } catch {
    return [];
  }
}

export async function remove(key) {
  try { await done((await store('readwrite')).delete(key)); } catch { /* already gone */ }
}

/** A kept record as a Run again. */
export function restore(rec) {
  const run = runFromFrames(rec.start, rec.frames, rec.done, rec.meta);
  run.historyKey = rec.key;
  return run;
}
