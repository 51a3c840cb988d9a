"""Text at the edges of the engine: requests become canvases, canvases become text.

Notable features:
- One place decides how a plain prompt, a chat conversation or an infill template becomes
  prompt ids and a region to denoise, so the CLI, the server and the studio agree.
- Infill templates write gaps as `{{N}}` (N masked tokens). Everything before the first gap is the
  prompt; the region runs from the first gap to the end of the template, fixed text kept as fixed
  tokens. The finished text is rebuilt from the template's own strings around the decoded gaps,
  so every character outside the gaps is kept exactly.
- Generated text ends at the first end token; `finish_reason` is "stop" then, "length" when the
  canvas ran out first (the OpenAI meanings).
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

    @property
    def is_infill(self) -> bool:
        return bool(self.segments)

    def gap_positions(self) -> list[int]:
        """Region offsets of the gap tokens (what may change)."""
        out, pos = [], 0
        for text, n in self.segments:
            if text is None:
                out.extend(range(pos, pos + n))
            pos += n
        return out


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
        raise RequestError("model", "this checkpoint has no tokenizer.json, so it cannot take text")
    if messages is not None:
        if not messages:
            raise RequestError("messages", "at least one message is needed")
        if not tok.chat_template:
            # A completion model: the conversation's text is the prompt (what Ollama does for
            # models without a template).
            return tok.encode("\n".join(str(m.get("content", "")) for m in messages), add_special_tokens=False)
        return tok.encode_chat(messages)
    return tok.encode(prompt or "", add_special_tokens=False)


def infill_canvas(model, template: str, prefix_ids: list[int] | None = None) -> Canvas:
    """The canvas for an infill template (optionally after prefix_ids, e.g. a chat prompt)."""
    tok = model.tokenizer
    if tok is None:
        raise RequestError("model", "this checkpoint has no tokenizer.json, so it cannot take text")
    pieces = parse_template(template)
    first_gap = next(i for i, p in enumerate(pieces) if isinstance(p, int))
    prefix_text = "".join(pieces[:first_gap])
    prompt = list(prefix_ids or []) + (tok.encode(prefix_text, add_special_tokens=False) if prefix_text else [])
    region: list[int] = []
    segments: list[tuple[str | None, int]] = []
    for piece in pieces[first_gap:]:
        if isinstance(piece, int):
            region += [model.ids.mask] * piece
            segments.append((None, piece))
        else:
            ids = tok.encode(piece, add_special_tokens=False)
            region += ids
            segments.append((piece, len(ids)))
    return Canvas(prompt, region, prefix_text, segments)


def cut_at_end(ids: list[int], end_ids: list[int]) -> tuple[list[int], str]:
    """Generated ids up to (not including) the first end token, and the finish reason."""
    for i, t in enumerate(ids):
        if t in end_ids:
            return ids[:i], "stop"
    return ids, "length"


def region_text(model, canvas: Canvas, region: list[int]) -> tuple[str, str]:
    """The text of a finished region, and why it finished.

    For infill, fixed pieces are copied from the template and each gap decoded on its own; an
    end token inside a gap ends that gap's text only.
    """
    tok = model.tokenizer
    if not canvas.is_infill:
        ids, reason = cut_at_end(region, model.ids.eos)
        return tok.decode(ids), reason
    out, pos = [], 0
    for text, n in canvas.segments:
        if text is None:
            out.append(tok.decode(cut_at_end(region[pos : pos + n], model.ids.eos)[0]))
        else:
            out.append(text)
        pos += n
    return "".join(out), "stop"
