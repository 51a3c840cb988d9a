"""`Completion`: one generation's answer, built once from its step events for every surface.

Notable features:
- Fed the same `StepEvent`s whether they come from `Model.stream` (the CLI) or the scheduler
  (the server), it keeps the region, and returns after each step only the text that can no
  longer change: tokens before the sampler's `settled` frontier. Committed tokens are final
  unless remask may still revoke them (until their block is filled), and a masked position
  further left could still become anything; so an OpenAI stream never sends a draft, and the
  concatenated chunks equal the whole text.
- Text ends at the first end token of a continuation; in an infill region each gap is decoded on
  its own and ends at its own end token, and the template's fixed pieces are copied verbatim.
  `fixed_text=False` gives the gaps alone (OpenAI's `suffix`, whose answer excludes the suffix).
- An incomplete UTF-8 tail (U+FFFD) and any tail that could begin a stop string are held back
  until the next token settles them. Stop strings follow the autoregressive meaning: the stop
  that *ends* first wins, and the text is cut where it starts.
- Usage and timings are counted one way everywhere: completion tokens are the tokens of the text
  (before its end or stop), passes are model forward passes, and tokens/s is completion tokens
  over denoising time (not load time, not re-decodes after remask, not end padding).
"""

from __future__ import annotations

from ..options import GenerationOptions
from .canvas import Canvas, cut_at_end
from .events import StepEvent

REPLACEMENT = "\ufffd"
SUDOKU_BLANK = "0"


def first_stop(text: str, stops: list[str]) -> tuple[int, int] | None:
    """(start, end) of the stop occurrence that ends first in text, or None."""
    best = None
    for s in stops:
        i = text.find(s)
        if i >= 0 and (best is None or (i + len(s), i) < (best[1], best[0])):
            best = (i, i + len(s))
    return best


def held_tail(text: str, stops: list[str]) -> int:
    """How many trailing characters could still be the start of a stop string."""
    longest = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), longest, -1):
            if text.endswith(s[:k]):
                longest = k
                break
    return longest


class Completion:
    """Feed it `step(event)` for every step and `finish(region)` at the end; read the answer."""

    def __init__(
        self,
        model,
        canvas: Canvas,
        options: GenerationOptions,
        stops: list[str] | None = None,
        fixed_text: bool = True,
    ):
        self.tokenizer, self.mask_id, self.end_ids = model.tokenizer, model.ids.mask, set(model.ids.eos)
        self.canvas, self.fixed_text = canvas, fixed_text
        self.region = list(canvas.region) if canvas.region is not None else [self.mask_id] * options.max_new_tokens
        self.segments = canvas.segments or [(None, len(self.region))]
        self.fixed_positions = frozenset(i for i, t in enumerate(self.region) if t != self.mask_id)
        self.stops = [s for s in (stops or []) if s]
        self.prompt_tokens = len(canvas.prompt_ids)
        self.planned_passes = options.total_steps
        self.passes, self.elapsed, self.first_step = 0, 0.0, None
        self.commits, self.revocations, self.edits = 0, 0, 0
        self.settled = 0  # region offsets before this one are final
        self.sent = ""  # the final text returned so far
        self.finish_reason: str | None = None  # set once the text is complete
        self.completion_tokens = 0
        self.batch_size = 1

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    @property
    def text(self) -> str:
        return self.sent

    @property
    def decided(self) -> int:
        """Positions to fill that hold a text token now (not a mask, not end padding)."""
        return sum(
            1
            for i, t in enumerate(self.region)
            if t != self.mask_id and t not in self.end_ids and i not in self.fixed_positions
        )

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.elapsed if self.elapsed > 0 else 0.0

    def step(self, event: StepEvent) -> str:
        """Apply one pass; returns the text that became final with it."""
        for p in event.revoked:
            self.region[p] = self.mask_id
        for p, t in zip(event.positions, event.tokens):
            self.region[p] = t
        for p, t in zip(event.edited, event.edit_tokens):
            self.region[p] = t
        self.edits += len(event.edited)
        self.passes, self.elapsed = event.nfe, event.elapsed
        if self.first_step is None:
            self.first_step = event.elapsed
        self.commits += len(event.positions)
        self.revocations += len(event.revoked)
        before, self.settled = self.settled, max(self.settled, event.settled)
        if self.done or self.canvas.puzzle or self.settled == before:
            return ""  # nothing new is final: the text before `settled` cannot have changed
        return self._emit(final=False)

    def finish(self, region: list[int], nfe: int | None = None, elapsed: float | None = None) -> str:
        """The region is complete: returns whatever text is left."""
        self.region[:] = region[: len(self.region)]
        self.settled = len(self.region)
        if nfe is not None:
            self.passes = nfe
        if elapsed is not None:
            self.elapsed = elapsed
        if self.done:
            return ""
        if self.canvas.puzzle:
            self.sent = self._board()
            self.completion_tokens = sum(1 for t in (self.canvas.region or []) if t == self.mask_id)
            self.finish_reason = "stop"
            return self.sent
        return self._emit(final=True)

    # -- text -------------------------------------------------------------------------------

    def _render(self, upto: int) -> tuple[str, int, str | None]:
        """Text of the region's first `upto` positions, its tokens, and the finish reason once
        nothing after it can add text (None while it may still grow)."""
        out: list[str] = []
        tokens, pos, continuation = 0, 0, not self.canvas.is_infill
        for k, (fixed, n) in enumerate(self.segments):
            if pos > upto or (pos == upto and fixed is None):
                return "".join(out), tokens, None
            if fixed is not None:
                if self.fixed_text:
                    out.append(fixed)
                pos += n
                continue
            ids, reason = cut_at_end(self.region[pos : min(pos + n, upto)], self.end_ids)
            tokens += len(ids)
            out.append(self._gap_text(k, ids))
            if reason == "stop" and continuation:
                return "".join(out), tokens, "stop"
            if reason != "stop" and pos + n > upto:
                return "".join(out), tokens, None
            pos += n
        return "".join(out), tokens, "stop" if self.canvas.is_infill else "length"

    def _emit(self, final: bool) -> str:
        text, tokens, reason = self._render(self.settled)
        if final and reason is None:  # a finished region always ends its text
            reason = "stop" if self.canvas.is_infill else "length"
        stop = first_stop(text, self.stops)
        if stop is not None:
            text = text[: stop[0]]
            self.completion_tokens = self._tokens_to_reach(stop[1], tokens)
            self.finish_reason = "stop"
        elif reason is not None:
            self.completion_tokens = tokens
            self.finish_reason = reason
        else:
            keep = len(text.rstrip(REPLACEMENT))
            text = text[: keep - held_tail(text[:keep], self.stops)]
        if not text.startswith(self.sent):
            # Only a decoder that rewrites earlier text could cause this (none of ours do):
            # what was sent stays sent.
            return ""
        delta, self.sent = text[len(self.sent) :], text
        return delta

    def _gap_text(self, k: int, ids: list[int]) -> str:
        """A gap's text, without the spaces the text before it already ends in (canvas.leads)."""
        text = self._decode(ids)
        lead = self.canvas.leads.get(k, "")
        if lead:
            text = text[min(len(lead), len(text) - len(text.lstrip(" "))) :]
        return text

    def _decode(self, ids: list[int]) -> str:
        # A token-level checkpoint (no tokenizer) still gets its usage and timings counted.
        return self.tokenizer.decode(ids) if self.tokenizer is not None else ""

    def _tokens_to_reach(self, chars: int, tokens: int) -> int:
        """Fewest text tokens whose text reaches `chars` characters (a stop string's end)."""
        if self.canvas.is_infill:
            return tokens  # gaps are decoded apart; count them whole
        lo, hi = 1, tokens
        while lo < hi:
            mid = (lo + hi) // 2
            if len(self.tokenizer.decode(self.region[:mid])) >= chars:
                hi = mid
            else:
                lo = mid + 1
        return hi

    def _board(self) -> str:
        cells = [self.tokenizer.piece(t) for t in self.region]
        return "".join(c if len(c) == 1 and c.isdigit() else SUDOKU_BLANK for c in cells)

    # -- reports ----------------------------------------------------------------------------

    def usage(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    def timings(self) -> dict:
        """Denoising time only (a model load or a queue wait is not in it)."""
        return {
            "elapsed": round(self.elapsed, 6),
            "first_step": round(self.first_step if self.first_step is not None else self.elapsed, 6),
            "nfe": self.passes,
            "planned_passes": self.planned_passes,
            "commits": self.commits,
            "revocations": self.revocations,
            "edits": self.edits,
            "tokens_per_second": round(self.tokens_per_second, 3),
            "batch_size": self.batch_size,
        }


def complete(model, canvas: Canvas, options: GenerationOptions, on_step=None, stops=None) -> Completion:
    """Denoise one canvas on `model` in this thread and build its Completion; `on_step(event)`
    sees every step (the CLI's live view). What the scheduler does for the server, for one row."""
    completion = Completion(model, canvas, options, stops)
    rows = [canvas.region] if canvas.region is not None else None
    P, last = len(canvas.prompt_ids), None
    for step in model.stream([canvas.prompt_ids], None, options, canvas=rows):
        event = StepEvent.of(step, 0, P, options.max_new_tokens)
        completion.step(event)
        if on_step is not None:
            on_step(event)
        last = step
        if step.finished[0]:
            break  # what the server's scheduler does: a finished row's later passes (a store pass) are skipped
    completion.finish(last.canvas[0, P:].tolist() if last is not None else list(completion.region))
    return completion
