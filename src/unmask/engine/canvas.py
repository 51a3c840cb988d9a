"""Text at the edges of the engine: requests become canvases, canvases become text.

Notable features:
- One place decides how a plain prompt, a chat conversation or an infill template becomes
  prompt ids and a region to denoise, so the CLI, the server and the studio agree.
- Infill templates write gaps as `{{N}}` (N masked tokens). Everything before the first gap is the
  prompt; the region runs from the first gap to the end of the template, fixed text kept as fixed
  tokens; the text is rebuilt from the template's own strings around the decoded gaps
  (completion.py), so every character outside the gaps is kept exactly.
- OpenAI's `suffix` and a Sudoku board are canvases too, so every surface builds them here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

GAP = re.compile(r"\{\{\s*(\d+)\s*\}\}")
MAX_GAP = 4096


class RequestError(ValueError):
    """A request that cannot become a canvas; `field` names the offending input."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass
class Canvas:
    prompt_ids: list[int]
    region: list[int] | None = None  # None: all masks, options.max_new_tokens long
    # Infill only: the template's text before the first gap, and the region's pieces in order:
    # (fixed text, its token count) or (None, gap size).
    prefix_text: str = ""
    segments: list[tuple[str | None, int]] = field(default_factory=list)
    puzzle: bool = False  # a Sudoku board: the region is the 81 cells
    # Per gap (segment index; 0 for a plain prompt's region): the spaces that end the text
    # before it. They are shown as written but not encoded, and a gap's text does not repeat them.
    leads: dict[int, str] = field(default_factory=dict)

    @property
    def is_infill(self) -> bool:
        return bool(self.segments)

    @property
    def fixed_length(self) -> int | None:
        """The region length when the canvas fixes it (infill, a puzzle); None for a prompt."""
        return None if self.region is None else len(self.region)

    @property
    def gaps(self) -> int:
        return sum(1 for text, _ in self.segments if text is None)

    def masked(self, mask_id: int, length: int) -> int:
        """Positions to fill: what the step count is measured against."""
        return length if self.region is None else sum(1 for t in self.region if t == mask_id)


def parse_template(template: str) -> list[str | int]:
    """'a {{3}} b' -> ['a ', 3, ' b'] (empty strings dropped)."""
    pieces: list[str | int] = []
    pos = 0
    for match in GAP.finditer(template):
        if match.start() > pos:
            pieces.append(template[pos : match.start()])
        n = int(match.group(1))
        if not 1 <= n <= MAX_GAP:
            raise RequestError("template", f"a gap must hold 1 to {MAX_GAP} tokens, got {{{{{n}}}}}")
        pieces.append(n)
        pos = match.end()
    if pos < len(template):
        pieces.append(template[pos:])
    if not any(isinstance(p, int) for p in pieces):
        raise RequestError("template", "no gap found; write gaps as {{N}}, e.g. 'Once upon a time {{40}} The end.'")
    return pieces


def chat_or_prompt_ids(model, prompt: str | None = None, messages: list[dict] | None = None) -> list[int]:
    """Prompt ids for a plain completion or a chat conversation."""
    tok = model.tokenizer
    if tok is None:
        raise RequestError("model", "this checkpoint has no tokenizer, so it cannot take text")
    if messages is not None:
        if not messages:
            raise RequestError("messages", "at least one message is needed")
        system = getattr(model, "system_prompt", None)  # a named model's SYSTEM
        if system and not any(m.get("role") == "system" for m in messages):
            messages = [{"role": "system", "content": system}, *messages]
        if not tok.chat_template:
            # A completion model: the conversation's text is the prompt (what Ollama does for
            # models without a template).
            return tok.encode("\n".join(str(m.get("content", "")) for m in messages), add_special_tokens=False)
        return tok.encode_chat(messages)
    return tok.encode(prompt or "", add_special_tokens=False)


def trailing_spaces(text: str) -> tuple[str, str]:
    """'a den. ' -> ('a den.', ' '). Byte-level BPE vocabularies attach a space to the word after
    it (' One'); a prompt encoded with its trailing space ends in a lone space token, after which
    a model writes ' snowy' (a double space) or skips the word it would have begun with the space.
    So the space is left out of the prompt, and the gap's first word brings its own."""
    body = text.rstrip(" ")
    return body, text[len(body) :]


def text_canvas(model, text: str) -> Canvas:
    """The canvas continuing plain text (what `unmask run` and `/v1/completions` send)."""
    if model.tokenizer is None:
        raise RequestError("model", "this checkpoint has no tokenizer, so it cannot take text")
    body, lead = trailing_spaces(text)
    return Canvas(model.tokenizer.encode(body, add_special_tokens=False), leads={0: lead} if lead else {})


def infill_canvas(model, template: str, prefix_ids: list[int] | None = None, prefix_lead: str = "") -> Canvas:
    """The canvas for an infill template (optionally after prefix_ids, e.g. a chat prompt, whose
    text ended in the spaces `prefix_lead`, left out of its ids as `text_canvas` leaves them)."""
    tok = model.tokenizer
    if tok is None:
        raise RequestError("model", "this checkpoint has no tokenizer, so it cannot take text")
    pieces = parse_template(template)
    first_gap = next(i for i, p in enumerate(pieces) if isinstance(p, int))
    prefix_text = "".join(pieces[:first_gap])
    body, lead = trailing_spaces(prefix_text)
    if not body:  # the template starts with its gap: the spaces before it end the prompt
        lead = prefix_lead + lead
    prompt = list(prefix_ids or []) + (tok.encode(body, add_special_tokens=False) if body else [])
    region: list[int] = []
    segments: list[tuple[str | None, int]] = []
    leads: dict[int, str] = {}
    for k, piece in enumerate(pieces[first_gap:]):
        if isinstance(piece, int):
            if lead:
                leads[len(segments)] = lead
            region += [model.ids.mask] * piece
            segments.append((None, piece))
            lead = ""
        else:
            gap_next = first_gap + k + 1 < len(pieces)  # a gap follows (pieces alternate)
            body, lead = trailing_spaces(piece) if gap_next else (piece, "")
            ids = tok.encode(body, add_special_tokens=False) if body else []
            region += ids
            segments.append((piece, len(ids)))
    return Canvas(prompt, region, prefix_text, segments, leads=leads)


def suffix_canvas(model, prompt: Canvas, gap: int, suffix: str) -> Canvas:
    """A prompt, a gap of `gap` masks, then fixed text (OpenAI's `suffix`): infilling whose text is
    the gap alone."""
    ids = model.tokenizer.encode(suffix, add_special_tokens=False)
    segments = [(None, gap), (suffix, len(ids))]
    return Canvas(list(prompt.prompt_ids), [model.ids.mask] * gap + ids, "", segments, leads=dict(prompt.leads))


def puzzle_canvas(model, puzzle: str) -> Canvas:
    """The canvas for a Sudoku board (81 cells, 0 or . for blanks) on a grid model."""
    from ..tasks.sudoku import BLANK, parse_puzzle, solve

    if str(model.config.get("model_type", "")).lower() != "grid":
        raise RequestError("puzzle", "puzzles need a grid (Sudoku) model; this model is not one")
    try:
        grid = parse_puzzle(puzzle)
    except ValueError as err:
        raise RequestError("puzzle", str(err)) from None
    if solve(grid) is None:
        raise RequestError("puzzle", "has no solution: no grid completes these givens")
    tok = model.tokenizer
    if tok is None:
        raise RequestError("model", "this grid model has no tokenizer to map digits to tokens")
    digits = {d: tok.token_id(d) for d in "123456789"}
    if None in digits.values():
        raise RequestError("model", "this grid model's tokenizer has no tokens for the digits 1-9")
    return Canvas([], [model.ids.mask if ch == BLANK else digits[ch] for ch in grid], puzzle=True)


def cut_at_end(ids: list[int], end_ids: list[int]) -> tuple[list[int], str]:
    """Generated ids up to (not including) the first end token, and the finish reason."""
    for i, t in enumerate(ids):
        if t in end_ids:
            return ids[:i], "stop"
    return ids, "length"
