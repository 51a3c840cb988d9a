// A run: the canvas of one generation and the step at which each of its tokens was committed.
// Built from the real stream (start, step..., done); any step can be replayed from it.

// End-of-text pieces (Dream's <|endoftext|>, LLaDA's <|eot_id|>, </s>...), used when the server
// does not name its end ids. The mask token never shows: masked pieces are null.
const SPECIAL_PIECE = /^(<\|[^<>|\s]{1,40}\|>|<\/s>|<\/?eos>|<\|?end_?of_?text\|?>|\[(EOS|SEP|PAD)\])$/i;
const NEVER = Infinity;
// Families whose blocks tile the whole canvas from the prompt's first token (engine/model.py
// `prepare`): the region's first block ends after block - P % block tokens. The 2025 families and
// DiffusionGemma (REGION_BLOCKS there) split the region itself.
const CANVAS_BLOCKS = new Set(['sdar', 'llada2', 'fast-dllm-v2']);

/** How many spaces end a text ('a den. ' -> 1). */
export function trailingSpaces(text) {
  const m = / +$/.exec(text || '');
  return m ? m[0].length : 0;
}

export class Run {
  /** start: the `start` frame; meta: what the view knows (prefix text, request body, kind). */
  constructor(start, meta = {}) {
    this.start = start;
    this.meta = meta;
    this.id = start.id;
    this.model = start.model;
    this.maskId = start.mask_id;
    this.n = start.region.length;
    this.tokens = start.region.slice();
    this.pieces = start.pieces.slice();
    this.given = this.tokens.map(t => t !== this.maskId);
    this.stepOf = this.given.map(g => (g ? 0 : NEVER));
    this.editedAt = {}; // position -> the step that last replaced its token (token editing)
    // A uniform-state run (DiffusionGemma): its first pass writes noise into the masked cells, and
    // every pass may change any cell until the sampler accepts it; each cell then keeps its writes,
    // [step, token, piece], so any step replays as it was.
    this.uniform = false;
    this.writes = this.tokens.map(() => []);
    this.plannedSteps = start.total_steps || 0;
    // The block size the server runs (the region is denoised in blocks of it, left to right), and
    // where in the region each block starts: blockShift tokens of the first block lie before it.
    this.blockLength = start.block_length || start.options?.block_length || this.n;
    this.blockShift = CANVAS_BLOCKS.has(meta.family) ? (start.prompt_tokens || 0) % this.blockLength : 0;
    this.length = Math.min(this.n, start.options?.max_new_tokens ?? this.n);
    this.blocks = Math.max(1, Math.ceil((this.blockShift + this.length) / this.blockLength));
    this.revocations = 0; // drafts remask took back, and tokens an edit replaced, as the frames came
    this.edits = 0;
    this.steps = [];
    this.done = null;
    this.error = null;
    this.endIds = new Set(start.end_ids || start.eos_ids || []);
    this.pieceOf = new Map();
    this.tokens.forEach((t, i) => { if (this.pieces[i] != null) this.pieceOf.set(t, this.pieces[i]); });
    this.receivedAt = [performance.now()];
    // The text drawn before the region: the prompt, then the answer's fixed start (an infill
    // template's text before its first gap, a rewrite's text before its span).
    this.before = (meta.prefix || '') + (meta.fixed || '');
    this.redraw();
  }

  /** The pieces as drawn (`drawn`; `pieces` stay the server's): the engine's rule for a gap after
   *  text that ends in spaces (engine/canvas.py `leads`). That text is not encoded with them, so
   *  the gap's first token brings its own (' One' after 'a den. '); up to as many leading spaces
   *  as the text ends with are dropped from the gap's first tokens, so 'den. One' has one space.
   *  Fixed text (given tokens, the prefix) is drawn exactly as written. `bare[i]`: position i
   *  starts such a gap and is still masked, so its placeholder takes no space before it either. */
  redraw() {
    const drawn = this.pieces.slice();
    const bare = new Array(this.n).fill(false);
    let lead = 0; // spaces still to drop at the start of the current gap
    for (let i = 0; i < this.n; i++) {
      if (this.given[i]) { lead = 0; continue; }
      if (i === 0 || this.given[i - 1]) lead = trailingSpaces(i === 0 ? this.before : this.pieces[i - 1]);
      if (!lead) continue;
      const piece = this.pieces[i];
      if (piece == null) { bare[i] = true; lead = 0; continue; }
      if (this.isEnd(i)) { lead = 0; continue; }
      const cut = Math.min(lead, piece.length - piece.replace(/^ +/, '').length);
      drawn[i] = piece.slice(cut);
      lead = drawn[i] ? 0 : lead - cut; // a lone space token: the next token may repeat the rest
    }
    this.drawn = drawn;
    this.bare = bare;
  }

  /** Whether a block starts at region position i (other than the region's first). */
  blockStart(i) {
    return i > 0 && i < this.length && (i + this.blockShift) % this.blockLength === 0;
  }

  /** Blocks the run really denoised (an end token may finish it before its last ones). */
  get blocksUsed() {
    const seen = new Set(this.steps.filter(s => s.positions.length || (s.edited || []).length).map(s => s.block));
    return Math.max(1, seen.size);
  }

  get stepCount() { return this.steps.length; }
  get lastStep() { return this.steps.length; }
  get finished() { return this.done !== null; }
  get totalSteps() { return Math.max(this.plannedSteps, this.steps.length); }

  apply(frame) {
    this.steps.push(frame);
    // Steps are counted by the frames that changed the canvas: a block family's store passes
    // (a model pass that writes the cache and commits nothing) send no frame.
    const k = this.steps.length;
    this.receivedAt.push(performance.now());
    this.uniform ||= (frame.edited || []).some(p => !this.given[p] && this.tokens[p] === this.maskId);
    this.revocations += (frame.revoked || []).length;
    if (!this.uniform) this.edits += (frame.edited || []).length;
    if (this.uniform) {
      // `edited`: every cell the pass changed, noise included; `positions`: the cells its entropy
      // bound accepted, changed or not (drawn from the frame itself, see passMarks).
      (frame.edited || []).forEach((p, j) => {
        this.tokens[p] = frame.edit_tokens[j];
        this.pieces[p] = frame.edit_texts[j];
        this.stepOf[p] = k;
        this.writes[p].push([k, frame.edit_tokens[j], frame.edit_texts[j]]);
        this.pieceOf.set(frame.edit_tokens[j], frame.edit_texts[j]);
      });
      if (frame.total_steps) this.plannedSteps = frame.total_steps;
      this.redraw();
      return;
    }
    // remask: a revoked draft leaves the canvas before this step's commits; the timeline keeps
    // each position's last commit, so replays show the drafts that stayed, not the ones taken back.
    (frame.revoked || []).forEach(p => {
      this.tokens[p] = this.maskId;
      this.pieces[p] = null;
      this.stepOf[p] = NEVER;
    });
    frame.positions.forEach((p, j) => {
      this.tokens[p] = frame.tokens[j];
      this.pieces[p] = frame.texts[j];
      this.stepOf[p] = k;
      this.pieceOf.set(frame.tokens[j], frame.texts[j]);
    });
    // token editing (LLaDA2.1): a committed token replaced by another; it counts as written at this
    // step, and is drawn as an edit.
    (frame.edited || []).forEach((p, j) => {
      this.tokens[p] = frame.edit_tokens[j];
      this.pieces[p] = frame.edit_texts[j];
      this.stepOf[p] = k;
      this.editedAt[p] = k;
      this.pieceOf.set(frame.edit_tokens[j], frame.edit_texts[j]);
    });
    if (frame.total_steps) this.plannedSteps = frame.total_steps;
    this.redraw();
  }

  /** The done frame; positions the server filled without a step (the tail after an end token,
   *  which is final once the end is) get the last step. */
  finish(done) {
    this.done = done;
    const last = Math.max(1, this.steps.length);
    (done.region || []).forEach((t, i) => {
      if ((this.stepOf[i] === NEVER || (this.uniform && !this.given[i] && this.tokens[i] !== t)) && t !== this.maskId) {
        this.tokens[i] = t;
        this.pieces[i] = this.pieceOf.get(t) ?? null;
        this.stepOf[i] = last;
        if (this.uniform) this.writes[i].push([last, t, this.pieces[i]]);
        if (this.pieces[i] == null) this.endIds.add(t);
      }
    });
    this.redraw();
  }

  /** A uniform run's last write to cell i at or before step k ([step, token, piece]), or null. */
  writeAt(i, k) {
    const w = this.writes[i];
    for (let j = w.length - 1; j >= 0; j--) if (w[j][0] <= k) return w[j];
    return null;
  }

  /** The step that wrote cell i as shown at step k (NEVER: not yet written). */
  stepAt(i, k) {
    if (!this.uniform) return this.stepOf[i];
    return this.given[i] ? 0 : this.writeAt(i, k)?.[0] ?? NEVER;
  }

  /** The piece of cell i as drawn at step k: a uniform run's cells change from step to step. */
  drawnAt(i, k) {
    if (!this.uniform || this.given[i]) return this.drawn[i];
    return this.writeAt(i, k)?.[2] ?? null;
  }

  /** A uniform run's pass k: the cells it changed, those it accepted, and the region offset before
   *  which the canvas is final (a finished canvas's cells are accepted for good). */
  passMarks(k) {
    const frame = this.steps[Math.min(k, this.steps.length) - 1];
    if (!this.uniform || !frame) return null;
    return { changed: new Set(frame.edited || []), accepted: new Set(frame.positions), settled: frame.settled ?? 0 };
  }

  /** The settled share of the region after step k (the server's `settledness`), or null. */
  settlednessAt(k) {
    const frame = this.steps[Math.min(k, this.steps.length) - 1];
    return frame && typeof frame.settledness === 'number' ? frame.settledness : null;
  }

  /** Whether cell i holds an end token (at step k for a uniform run, whose cells change). */
  isEnd(i, k = null) {
    const w = k === null || !this.uniform || this.given[i] ? null : this.writeAt(i, k);
    const [t, piece] = w ? [w[1], w[2]] : [this.tokens[i], this.pieces[i]];
    if (t === this.maskId || (w === null && k !== null && this.uniform && !this.given[i])) return false;
    if (this.endIds.size) return this.endIds.has(t);
    return piece != null && SPECIAL_PIECE.test(piece);
  }

  committed(i, k) { return this.stepOf[i] <= k; }

  /** Per position at step k: 'given' | 'mask' | 'token' | 'end' | 'tail' (after an end token, up to
   *  the next given token: text the answer will not contain). */
  states(k) {
    const out = new Array(this.n);
    let ended = false;
    for (let i = 0; i < this.n; i++) {
      if (this.given[i]) { out[i] = 'given'; ended = false; continue; }
      if (this.stepAt(i, k) > k) { out[i] = 'mask'; continue; }
      if (this.isEnd(i, k)) { out[i] = 'end'; ended = true; continue; }
      out[i] = ended ? 'tail' : 'token';
    }
    return out;
  }

  /** Fraction of generated positions still masked at step k (a uniform run: not yet settled). */
  maskedFraction(k) {
    const settled = this.uniform && k > 0 ? this.settlednessAt(k) : null;
    if (settled !== null) return 1 - settled;
    let gen = 0, masked = 0;
    for (let i = 0; i < this.n; i++) {
      if (this.given[i]) continue;
      gen++;
      if (this.stepOf[i] > k) masked++;
    }
    return gen ? masked / gen : 0;
  }

  /** Commits per step (index 0 = step 1), for the sparkline. */
  commitsPerStep() { return this.steps.map(s => s.positions.length); }

  /** The region's text at step k as drawn: masked positions as `mask` (a string, or null to
   *  skip), end tokens and their tails left out. */
  text(k = this.lastStep, mask = '') {
    const states = this.states(k);
    let out = '';
    for (let i = 0; i < this.n; i++) {
      const s = states[i];
      if (s === 'given' || s === 'token') out += this.drawnAt(i, k) ?? '';
      else if (s === 'mask' && mask !== null) out += mask;
    }
    return out;
  }

  /** Positions of the answer proper at the end (not given, not end/tail): what can be rewritten. */
  answerRange() {
    const states = this.states(this.lastStep);
    let last = -1;
    for (let i = 0; i < this.n; i++) if (states[i] === 'token') last = i;
    return last;
  }

  elapsedAt(k) {
    if (k <= 0) return 0;
    const frame = this.steps[Math.min(k, this.steps.length) - 1];
    return frame ? frame.elapsed : 0;
  }

  /** Everything needed to replay this run elsewhere (exports): the pieces as drawn, the text the
   *  server sent (done.text) once there is one. */
  toJSON() {
    return {
      id: this.id, model: this.model, prefix: this.meta.prefix || '', fixed: this.meta.fixed || '', kind: this.meta.kind || 'text',
      pieces: this.drawn, given: this.given, stepOf: this.stepOf.map(s => (s === NEVER ? -1 : s)),
      states: this.states(this.lastStep), steps: this.steps.length, settings: this.meta.settings || {},
      elapsed: this.done?.timings?.elapsed ?? this.elapsedAt(this.lastStep), nfe: this.done?.timings?.nfe ?? this.steps.length,
      text: this.done?.text ?? this.text(),
      // How to run it again: the options the server resolved (start.options), the request, the seed.
      options: this.start.options || {}, seed: this.start.options?.seed ?? null,
    };
  }
}

/** A Run from recorded frames (start, steps, done), e.g. for tests and replays. */
export function runFromFrames(start, steps = [], done = null, meta = {}) {
  const run = new Run(start, meta);
  for (const s of steps) run.apply(s);
  if (done) run.finish(done);
  return run;
}
