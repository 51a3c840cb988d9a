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

    @classmethod
    def of(cls, step: DenoiseStep, row: int, prompt_width: int) -> StepEvent:
        """Row `row` of a batched step, with canvas positions made region offsets."""
        P = prompt_width
        return cls(
            step.index,
            step.planned_steps,
            step.block,
            [p - P for p in step.committed[row]],
            step.tokens[row],
            step.remaining[row],
            step.nfe,
            step.elapsed,
            [p - P for p in step.revoked[row]],
            step.settled[row] - P,
        )


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
