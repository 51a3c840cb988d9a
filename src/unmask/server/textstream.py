"""Append-only text from a canvas that is denoised in any order (OpenAI streams).

Notable features:
- Text is final only for the longest contiguous committed prefix of the region: committed tokens
  never change, but a masked position further left could still become anything. So a chunk is
  sent when the prefix grows (for semi-autoregressive blocks that is block by block), never a
  draft.
- The prefix is decoded whole each time it grows, so the sent text is exactly a prefix of the
  final decode; an incomplete UTF-8 tail (U+FFFD) and any tail that could begin a stop string
  are held back until the next token settles them.
- Stop strings follow the autoregressive meaning: the stop that *ends* first in the text wins,
  and the text is cut where it starts. Streaming and non-streaming use this same class, so the
  concatenated chunks equal the non-streamed text (tests/server/test_openai_sdk.py).
"""

from __future__ import annotations

REPLACEMENT = "\ufffd"


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


class FinalText:
    """Feeds on commits to a region of `length` positions; `push` returns newly final text."""

    def __init__(self, tokenizer, length: int, mask_id: int, end_ids: list[int], stops: list[str] | None = None):
        self.tokenizer, self.mask_id, self.end_ids = tokenizer, mask_id, set(end_ids)
        self.stops = [s for s in (stops or []) if s]
        self.ids = [mask_id] * length
        self.frontier = 0  # committed prefix length, not counting an end token
        self.text = ""  # everything sent so far
        self.finish_reason: str | None = None  # set once the text is complete
        self.completion_tokens = 0

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    def push(self, positions: list[int], tokens: list[int]) -> str:
        if self.done:
            return ""
        for p, t in zip(positions, tokens):
            if 0 <= p < len(self.ids):
                self.ids[p] = t
        start = self.frontier
        ended = self._advance()
        if self.frontier == start and not ended:
            return ""
        return self._emit(final=ended or self.frontier == len(self.ids))

    def finish(self, region: list[int]) -> str:
        """The region is complete: send whatever is left."""
        if self.done:
            return ""
        self.ids[:] = region[: len(self.ids)]
        self._advance()
        return self._emit(final=True)

    def _advance(self) -> bool:
        """Move the frontier over committed tokens; True once it reached an end token."""
        while self.frontier < len(self.ids):
            token = self.ids[self.frontier]
            if token in self.end_ids:
                return True
            if token == self.mask_id:
                return False
            self.frontier += 1
        return False

    def _emit(self, final: bool) -> str:
        ended = self.frontier < len(self.ids) and self.ids[self.frontier] in self.end_ids
        text = self.tokenizer.decode(self.ids[: self.frontier])
        stop = first_stop(text, self.stops)
        if stop is not None:
            text, final = text[: stop[0]], True
            self.completion_tokens = self._tokens_to_reach(stop[1])
            self.finish_reason = "stop"
        elif final:
            self.completion_tokens = self.frontier
            self.finish_reason = "stop" if ended else "length"
        else:
            keep = len(text.rstrip(REPLACEMENT))
            text = text[: keep - held_tail(text[:keep], self.stops)]
        if not text.startswith(self.text):
            # A decoder rewrote earlier text (none of ours do); what was sent stays sent.
            return ""
        delta, self.text = text[len(self.text) :], text
        return delta

    def _tokens_to_reach(self, chars: int) -> int:
        """Fewest prefix tokens whose text reaches `chars` characters (the stop string's end)."""
        lo, hi = 1, self.frontier
        while lo < hi:
            mid = (lo + hi) // 2
            if len(self.tokenizer.decode(self.ids[:mid])) >= chars:
                hi = mid
            else:
                lo = mid + 1
        return hi
