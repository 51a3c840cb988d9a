"""The canvas drawn live in the terminal: placeholders resolving into text, out of order.

Masked positions are dim dots, tokens committed by the latest pass are highlighted, those of the
pass before are bold (settling), older ones plain; a footer counts steps, tokens/s and passes.
The last frame is redrawn without highlights and stays on screen.
"""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

MASK_GLYPH = "·"
FRESH = "bold black on yellow"
SETTLING = "bold"
DIM = "dim"


class CanvasView:
    """Region tokens with the step each was committed at."""

    def __init__(self, model, region: list[int], prompt_text: str = "", fixed_style: str = "cyan"):
        self.model, self.tok = model, model.tokenizer
        self.region = list(region)
        self.prompt_text = prompt_text
        self.fixed = {i for i, t in enumerate(region) if t != model.ids.mask}
        self.fixed_style = fixed_style
        self.committed_at: dict[int, int] = {}
        self.step = 0
        self.planned = 0
        self.nfe = 0
        self.elapsed = 0.0
        self.done = False

    def apply(self, event) -> None:
        """One engine StepEvent."""
        self.step, self.planned, self.nfe, self.elapsed = event.index + 1, event.planned_steps, event.nfe, event.elapsed
        for p in event.revoked:  # masked again (remask) before this pass's commits
            self.region[p] = self.model.ids.mask
            self.committed_at.pop(p, None)
        for p, t in zip(event.positions, event.tokens):
            self.region[p] = t
            self.committed_at[p] = event.index + 1

    @property
    def generated(self) -> int:
        return len(self.committed_at)

    def footer(self) -> Text:
        rate = self.generated / self.elapsed if self.elapsed > 0 else 0.0
        state = "done" if self.done else f"step {self.step}/{max(self.planned, self.step)}"
        return Text(f"{state} · {rate:,.0f} tok/s · {self.nfe} passes · {self.elapsed:.2f}s", style=DIM)

    def body(self) -> Text:
        text = Text()
        if self.prompt_text:
            text.append(self.prompt_text, style=self.fixed_style)
        ended = False
        for i, t in enumerate(self.region):
            if t == self.model.ids.mask:
                text.append(MASK_GLYPH, style=DIM)
                continue
            if t in self.model.ids.eos:
                ended = ended or i not in self.fixed
                continue
            piece = self.tok.piece(t)
            if i in self.fixed:
                text.append(piece, style=self.fixed_style)
            elif self.done:
                if not ended:
                    text.append(piece)
            else:
                age = self.step - self.committed_at.get(i, -10)
                text.append(piece, style=FRESH if age == 0 else SETTLING if age == 1 else (DIM if ended else ""))
        return text

    def __rich__(self) -> Group:
        return Group(self.body(), self.footer())


class GridView:
    """A Sudoku board filling in: givens bold, new digits highlighted, blanks dotted."""

    def __init__(self, digits_of, cells: list[int], mask_id: int):
        self.digit = digits_of  # token id -> "1".."9"
        self.cells, self.mask_id = list(cells), mask_id
        self.givens = {i for i, t in enumerate(cells) if t != mask_id}
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
        state = "solved" if self.done else f"step {self.step}"
        lines.append(Text(f"{state} · {blanks} blank · {self.nfe} passes · {self.elapsed:.2f}s", style=DIM))
        return Group(*lines)
