"""Every bound the server enforces, in one place.

Fixed bounds (stop strings, messages) are written into the request schema; the others are the
defaults of `Limits`, which tests and small deployments tighten through `create_app`. Bounds
that belong to decoding itself (temperature range, the absolute step cap) stay in
`unmask.options`; these are the server's own, usually tighter.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..options import MAX_NEW_TOKENS, MAX_STEPS

MAX_BODY_BYTES = 2 * 1024 * 1024  # a 32k-token prompt is ~128 KiB of text; leave room for JSON
MAX_TOKENS = 4096  # new tokens per choice: the canvas is denoised whole, so this bounds memory
MAX_SERVER_STEPS = 4096  # model passes per choice: bounds the time one request can hold a slot
MAX_CONTEXT = 32_768  # prompt + canvas tokens, whatever the model's own context says
# Token-passes (prompt + canvas, times passes, times 2 with cfg_scale, summed over choices) one
# request may cost: the step and length limits alone let a 200-byte request hold the engine for
# half an hour (a 1,024-token canvas, 1,020 passes, cfg and 4 choices).
MAX_WORK = 4_194_304
QUEUED_WORK = 4 * MAX_WORK  # token-passes queued or running, beyond which requests get a 429
MAX_CHOICES = 4  # n (and completions' prompts x n): each choice is a full generation
MAX_PROMPTS = 4  # prompts in one /v1/completions request
MAX_STOP = 4  # stop strings, as OpenAI allows
MAX_STOP_CHARS = 64  # characters per stop string
MAX_MESSAGES = 256  # messages in one conversation
MAX_GAPS = 64  # {{N}} gaps in one infill template
MAX_MODEL_NAME = 256  # characters in a model reference
RETRY_AFTER_BUSY = 1  # seconds a client should wait after a 429 (queue full)
RETRY_AFTER_CLOSING = 5  # seconds after a 503 (draining for shutdown)
DRAIN_SECONDS = 30.0  # how long SIGTERM waits for running requests before cancelling them
HEADER_SECONDS = 10.0  # a connection's request headers must be complete within this (408 after)

assert MAX_TOKENS <= MAX_NEW_TOKENS and MAX_SERVER_STEPS <= MAX_STEPS


@dataclass(frozen=True)
class Limits:
    """The bounds a deployment (or a test) may tighten; the rest are fixed in the request schema."""

    body_bytes: int = MAX_BODY_BYTES
    max_tokens: int = MAX_TOKENS
    steps: int = MAX_SERVER_STEPS
    context: int = MAX_CONTEXT
    choices: int = MAX_CHOICES
    work: int = MAX_WORK
    body_seconds: float = 30.0  # longest wait for the next chunk of a request body (408 after)
    header_seconds: float = HEADER_SECONDS
    drain_seconds: float = DRAIN_SECONDS
    queued_work: int = QUEUED_WORK
