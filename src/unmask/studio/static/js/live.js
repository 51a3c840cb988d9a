// A live run: the /api/diffuse stream feeding a Run, shown one step per animation frame so every
// step is seen even when the model is faster than the screen (the readouts keep the real timings).

import { generate } from './api.js';
import { Run } from './run.js';

const CATCH_UP_AFTER = 24; // steps behind the stream before the display skips ahead
const CATCH_UP_FRAMES = 12; // ...to be back in step within about this many frames
const WAITING_DELAY_MS = 250; // show the loader only when the first frame is this late

export class LiveRun {
  /**
   * body: the /api/diffuse request. meta: stored on the Run (prefix, kind, settings).
   * handlers: waiting(ms) until the start frame, start(run), frame(run, k), done(run), error(err, run),
   * progress(data) for model-load frames. paceMs: the least time each step stays on screen.
   */
  constructor(body, meta = {}, handlers = {}, { paceMs = 0 } = {}) {
    this.body = body;
    this.meta = meta;
    this.handlers = handlers;
    this.paceMs = paceMs;
    this.controller = new AbortController();
    this.run = null;
    this.shown = 0;
    this.doneReceived = false;
    this.finished = false;
    this.raf = null;
    this.lastShownAt = 0;
    this.ended = new Promise(resolve => { this.end = resolve; });
  }

  get active() { return !this.finished; }

  /** Resolves with the Run (or null) once it is over: shown to the end, failed or stopped. */
  async start() {
    const t0 = performance.now();
    const waiting = setInterval(() => {
      const ms = performance.now() - t0;
      if (!this.run && ms >= WAITING_DELAY_MS) this.handlers.waiting?.(ms);
    }, 100);
    try {
      await generate(this.body, {
        start: data => {
          clearInterval(waiting);
          this.run = new Run(data, this.meta);
          this.run.requestedAt = t0;
          this.handlers.start?.(this.run);
          this.loop();
        },
        step: data => this.run?.apply(data),
        done: data => { this.run?.finish(data); this.doneReceived = true; },
        progress: data => this.handlers.progress?.(data),
      }, { signal: this.controller.signal });
    } catch (err) {
      this.fail(err);
    } finally {
      clearInterval(waiting);
    }
    await this.ended;
    return this.run;
  }

  cancel() {
    this.controller.abort();
  }

  fail(err) {
    if (this.finished) return;
    this.finished = true;
    if (this.raf) cancelAnimationFrame(this.raf);
    if (this.run) {
      this.run.error = err;
      this.shown = this.run.lastStep;
      this.handlers.frame?.(this.run, this.shown);
    }
    this.handlers.error?.(err, this.run);
    this.end();
  }

  loop() {
    const tick = now => {
      if (this.finished) return;
      const run = this.run;
      const lag = run.lastStep - this.shown;
      if (lag > 0 && now - this.lastShownAt >= this.paceMs) {
        this.shown += lag > CATCH_UP_AFTER && !this.paceMs ? Math.ceil(lag / CATCH_UP_FRAMES) : 1;
        this.lastShownAt = now;
        this.handlers.frame?.(run, this.shown);
      }
      if (this.doneReceived && this.shown >= run.lastStep) {
        this.finished = true;
        this.handlers.done?.(run);
        this.end();
        return;
      }
      this.raf = requestAnimationFrame(tick);
    };
    this.raf = requestAnimationFrame(tick);
  }
}

/** Whether an error is the user pressing Stop. */
export function isAbort(err) {
  return err && (err.name === 'AbortError' || err.code === 20);
}
