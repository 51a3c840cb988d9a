"""What one generation reports, row by row: a step per model pass, then done (or an error).

The CLI reads these from `Model.stream`, the server from the scheduler; both feed them to a
`Completion`, so every surface sees the same steps and builds the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sampling import DenoiseStep


@dataclass
class StepEvent:
    index: int  # 0-based model pass
    planned_steps: int
    block: int
    positions: list[int]  # region offsets committed by this pass
    tokens: list[int]
    remaining: int  # masked positions left in the region
    nfe: int
    elapsed: float  # seconds since denoising started
    revoked: list[int] = field(default_factory=list)  # region offsets masked again first (remask)
    settled: int = 0  # region offsets before this one will not change again
    # region offsets whose committed token this pass replaced (token editing), and the new ids
    edited: list[int] = field(default_factory=list)
    edit_tokens: list[int] = field(default_factory=list)
    settledness: float = 0.0  # share of the region settled after this pass, 0..1 (`settledness`)

    @classmethod
    def of(cls, step: DenoiseStep, row: int, prompt_width: int, length: int | None = None) -> StepEvent:
        """Row `row` of a batched step, with canvas positions made region offsets. `length` drops
        positions past the new tokens asked for (block diffusion fills whole blocks)."""
        P = prompt_width
        end = P + length if length is not None else step.canvas.shape[1]
        kept = [(p - P, t) for p, t in zip(step.committed[row], step.tokens[row]) if p < end]
        edited = [p for p in (step.edited[row] if step.edited else []) if p < end]
        return cls(
            step.index,
            step.planned_steps,
            step.block,
            [p for p, _ in kept],
            [t for _, t in kept],
            step.remaining[row],
            step.nfe,
            step.elapsed,
            [p - P for p in step.revoked[row] if p < end],
            min(step.settled[row], end) - P,
            [p - P for p in edited],
            step.canvas[row, edited].tolist() if edited else [],
            settledness(step, row, P, end),
        )


def settledness(step: DenoiseStep, row: int, prompt_width: int, end: int) -> float:
    """The share of the region that this pass leaves settled, one measure for every sampler: for the
    mask families the committed share of the canvas after the prompt (`remaining` masks), for the
    uniform-state sampler the share of the new tokens (up to `end`) its entropy bound accepted
    (arXiv:2505.24857), canvases already written counted whole (`pending`); 1.0 once finished."""
    if step.finished[row]:
        return 1.0
    if step.pending:
        width, left = min(end, step.canvas.shape[1]) - prompt_width, step.pending[row]
    else:
        width = step.canvas.shape[1] - prompt_width
        left = step.remaining[row] if step.remaining else width
    return min(1.0, max(0.0, 1.0 - left / width)) if width > 0 else 1.0


@dataclass
class DoneEvent:
    region: list[int]  # the finished canvas after the prompt
    nfe: int
    elapsed: float
    prompt_tokens: int
    batch_size: int  # rows that shared the passes
    cancelled: bool = False


@dataclass
class ErrorEvent:
    error: BaseException


Event = StepEvent | DoneEvent | ErrorEvent
