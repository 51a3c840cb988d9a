"""The canvas drawn live in the terminal: placeholders resolving into text, out of order.

Masked positions are dim dots, tokens committed by the latest pass are highlighted, those of the
pass before are bold (settling), older ones plain; a footer counts steps, the settled share of the
canvas, tokens/s and passes. The last frame is redrawn without highlights and stays on screen.
A uniform-state canvas (DiffusionGemma: a pass writes noise into masked cells, and every cell may
change) draws the cells its last pass did not accept as noise, and those it changed and accepted
as edits, until the canvas is final.
"""

from __future__ import annotations

import math

from rich.console import Group
from rich.text import Text

MASK_GLYPH = "·"
FRESH = "bold black on yellow"
SETTLING = "bold"
EDITED = "bold black on magenta"  # a committed token replaced by another (LLaDA2.1 token editing)
NOISE = "dim italic"  # uniform state: a token the last pass did not accept (renoised; it will change)
DIM = "dim"
# Characters a mask is drawn with when the prompt gives no measure: about one English BPE token,
# so the canvas takes roughly the room its text will take and lines do not reflow as it resolves.
DEFAULT_MASK_WIDTH = 4
MAX_MASK_WIDTH = 8


def passes(n: int, planned: int | None = None) -> str:
    text = f"{n} pass" if n == 1 else f"{n} passes"
    return f"{text} ({planned} planned)" if planned and planned != n else text


def mask_width(tokenizer, prompt_ids: list[int]) -> int:
    """Mean characters per token of the prompt: how wide a mask is drawn."""
    pieces = [tokenizer.piece(t) for t in prompt_ids] if tokenizer is not None else []
    if not pieces:
        return DEFAULT_MASK_WIDTH
    return max(1, min(MAX_MASK_WIDTH, round(sum(len(p) for p in pieces) / len(pieces))))


class CanvasView:
    """Region tokens with the step each was committed at.

    leads: region position -> spaces the text before it already shows (a gap's first token does
    not repeat them; see engine.canvas.trailing_spaces).
    """

    def __init__(
        self,
        model,
        region: list[int],
        prompt_text: str = "",
        fixed_style: str = "cyan",
        planned: int = 0,
        leads: dict[int, str] | None = None,
        width: int = DEFAULT_MASK_WIDTH,
    ):
        self.model, self.tok = model, model.tokenizer
        self.region = list(region)
        self.prompt_text = prompt_text
        self.fixed = {i for i, t in enumerate(region) if t != model.ids.mask}
        self.fixed_style = fixed_style
        self.leads = leads or {}
        self.mask_text = MASK_GLYPH * width
        self.committed_at: dict[int, int] = {}
        self.edited_at: dict[int, int] = {}
        self.uniform = False  # a pass wrote into a masked cell: every cell may change until accepted
        self.settled = 0  # region offsets before this one are final
        self.settledness: float | None = None
        self.step = 0
        self.planned = planned
        self.nfe = 0
        self.elapsed = 0.0
        self.done = False
        self.final_text: str | None = None  # the answer, drawn alone in the last frame
        self.tokens = 0  # the answer's completion tokens, once done

    def apply(self, event) -> None:
        """One engine StepEvent."""
        self.step, self.planned, self.nfe, self.elapsed = event.index + 1, event.planned_steps, event.nfe, event.elapsed
        self.settled, self.settledness = event.settled, event.settledness
        self.uniform = self.uniform or any(self.region[p] == self.model.ids.mask for p in event.edited)
        for p in event.revoked:  # masked again (remask) before this pass's commits
            self.region[p] = self.model.ids.mask
            self.committed_at.pop(p, None)
        for p, t in zip(event.positions, event.tokens):
            self.region[p] = t
            self.committed_at[p] = event.index + 1
        for p, t in zip(event.edited, event.edit_tokens):
            self.region[p] = t
            self.edited_at[p] = event.index + 1

    def finish(self, completion) -> None:
        """The last frame: the completion's text, and its counts."""
        self.done, self.final_text, self.tokens = True, completion.text, completion.completion_tokens
        self.nfe, self.elapsed = completion.passes, completion.elapsed

    @property
    def generated(self) -> int:
        """Text tokens on the canvas now: not masks, not end tokens or what follows them."""
        count, eos = 0, self.model.ids.eos
        for i, t in enumerate(self.region):
            if t in eos and i not in self.fixed:
                break
            count += t != self.model.ids.mask and i not in self.fixed
        return count

    def footer(self) -> Text:
        if self.done:
            rate = self.tokens / self.elapsed if self.elapsed > 0 else 0.0
            shown = f"done · {self.tokens} tokens · {rate:,.0f} tok/s · {passes(self.nfe, self.planned)}"
            return Text(f"{shown} · {self.elapsed:.2f}s", style=DIM)
        if self.step == 0:
            return Text(f"step 0/{self.planned} · starting", style=DIM)
        rate = self.generated / self.elapsed if self.elapsed > 0 else 0.0
        state = f"step {self.step}/{max(self.planned, self.step)}"
        if self.settledness is not None:
            state += f" · settled {math.floor(self.settledness * 100 + 1e-9)}%"  # floored: 100% is settled
        return Text(f"{state} · {rate:,.0f} tok/s · {passes(self.nfe)} · {self.elapsed:.2f}s", style=DIM)

    def piece(self, i: int, t: int) -> str:
        text = self.tok.piece(t)
        lead = self.leads.get(i, "")
        if lead:
            text = text[min(len(lead), len(text) - len(text.lstrip(" "))) :]
        return text

    def body(self) -> Text:
        text = Text()
        if self.prompt_text:
            text.append(self.prompt_text, style=self.fixed_style)
        if self.done and self.final_text is not None:
            text.append(self.final_text)
            return text
        ended = False
        for i, t in enumerate(self.region):
            if t == self.model.ids.mask:
                text.append(self.mask_text, style=DIM)
                continue
            if t in self.model.ids.eos:
                ended = ended or i not in self.fixed
                continue
            if i in self.fixed:
                text.append(self.piece(i, t), style=self.fixed_style)
            else:
                age = self.step - self.committed_at.get(i, -10)
                style = FRESH if age == 0 else SETTLING if age == 1 else (DIM if ended else "")
                if self.edited_at.get(i) == self.step:
                    style = EDITED
                if self.uniform and i >= self.settled:  # a canvas being denoised: noise until accepted
                    if self.committed_at.get(i) != self.step:
                        style = NOISE
                    elif style != EDITED:
                        style = ""  # accepted again, unchanged
                text.append(self.piece(i, t), style=style)
        return text

    def __rich__(self) -> Group:
        return Group(self.body(), self.footer())


class GridView:
    """A Sudoku board filling in: givens bold, new digits highlighted, blanks dotted."""

    def __init__(self, digits_of, cells: list[int], mask_id: int, solved=None):
        self.digit = digits_of  # token id -> "1".."9"
        self.cells, self.mask_id = list(cells), mask_id
        self.givens = {i for i, t in enumerate(cells) if t != mask_id}
        self.solved = solved  # (digit string) -> bool: whether the finished board is a solution
        self.committed_at: dict[int, int] = {}
        self.step, self.nfe, self.elapsed, self.done = 0, 0, 0.0, False

    def apply(self, event) -> None:
        """One engine StepEvent."""
        self.step, self.nfe, self.elapsed = event.index + 1, event.nfe, event.elapsed
        for p in event.revoked:
            self.cells[p] = self.mask_id
            self.committed_at.pop(p, None)
        for p, t in zip(event.positions, event.tokens):
            self.cells[p] = t
            self.committed_at[p] = event.index + 1

    def __rich__(self) -> Group:
        lines = []
        for r in range(9):
            if r and r % 3 == 0:
                lines.append(Text("──────┼───────┼──────", style=DIM))
            line = Text()
            for c in range(9):
                if c and c % 3 == 0:
                    line.append("│ ", style=DIM)
                i = 9 * r + c
                t = self.cells[i]
                if t == self.mask_id:
                    line.append(MASK_GLYPH + " ", style=DIM)
                elif i in self.givens:
                    line.append(self.digit(t) + " ", style="bold cyan")
                else:
                    fresh = not self.done and self.committed_at.get(i) == self.step
                    line.append(self.digit(t), style=FRESH if fresh else "")
                    line.append(" ")
            lines.append(line)
        blanks = sum(1 for t in self.cells if t == self.mask_id)
        if not self.done:
            state = f"step {self.step}"
        elif self.solved is None or self.solved("".join(self.digit(t) for t in self.cells)):
            state = "solved"
        else:
            state = "not a valid solution"
        lines.append(Text(f"{state} · {blanks} blank · {passes(self.nfe)} · {self.elapsed:.2f}s", style=DIM))
        return Group(*lines)
