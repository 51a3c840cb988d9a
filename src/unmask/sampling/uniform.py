"""Uniform-state diffusion sampling for DiffusionGemma: transformers' `DiffusionGemmaGenerationMixin.generate`.

Notable features:
- No mask token: a canvas starts as uniformly random tokens and every pass rewrites all of it.
  Blocks ("canvases") of `canvas_length` go left to right; before each, the encoder appends the
  prompt (first block) or the previous block to the KV cache, which the decoder only reads.
- Per pass (`cur_step` = N .. 1): logits / T with the linear schedule T = t_min + (t_max - t_min)
  * cur_step / N (t_max first, never exactly t_min), one multinomial draw per position, then
  entropy-bound acceptance (arXiv:2505.24857): the lowest-entropy positions whose entropy sum
  minus the largest of them stays within `entropy_bound` take their draw; all others are renoised
  with fresh random tokens. Nothing is frozen: every pass decides again for every position.
- Self-conditioning: each pass feeds the previous pass's processed logits back to the decoder.
- A row stops its block once it is stable (the argmax canvas equals the last
  `stability_threshold` ones) and confident (mean entropy < `confidence_threshold`); stopped rows
  keep their state while the others go on. The block's output is the argmax canvas of the row's
  last pass, not its accepted canvas.
- After a block, a row with an end id is finished: tokens after its first end id become pad, and
  its later blocks are all pad. The whole region is decoded (the reference does not cut the
  output to `max_new_tokens`).
- Draw order on one generator is the reference's: per block `randint` (the canvas), then per pass
  `multinomial` and `randint` (renoise), over every row, stopped or finished ones included. With
  `RowGenerators` each row draws alone and only while it is running, as it would by itself.
- The region's mask ids are the positions to start from noise; other ids seed the canvas (an
  in-place edit starts from them, and a pass may keep or renoise them like any other token).
- Each step says which positions changed (`edited`: every cell may change, the noise included) and
  which the entropy bound accepted (`committed`); `pending` counts the unaccepted positions among
  the new tokens asked for, from which the engine's settledness is the accepted share (engine/events.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..models.layers import BlockCache
from .denoise import DenoiseStep
from .noise import RowGenerators, multinomial_rows
from .plan import Plan


@dataclass(frozen=True)
class UniformSettings:
    """DiffusionGemma's schedule settings; the defaults are `_get_default_generation_params`."""

    canvas_length: int = 256
    max_denoising_steps: int = 48
    entropy_bound: float = 0.1
    t_min: float = 0.4
    t_max: float = 0.8
    stability_threshold: int = 1
    confidence_threshold: float = 0.005
    pad_id: int | None = 0

    def __post_init__(self):
        if self.canvas_length < 1:
            raise ValueError(f"canvas_length: must be at least 1, got {self.canvas_length}")
        if self.max_denoising_steps < 1:
            raise ValueError(f"max_denoising_steps: must be at least 1, got {self.max_denoising_steps}")
        if not self.entropy_bound > 0:
            raise ValueError(f"entropy_bound: must be > 0, got {self.entropy_bound}")
        if self.t_min < 0:
            raise ValueError(f"t_min: must be >= 0, got {self.t_min}")
        if not self.t_max > self.t_min:  # the reference rejects t_max == t_min too
            raise ValueError(f"t_max: must be greater than t_min, got t_max={self.t_max}, t_min={self.t_min}")
        if self.stability_threshold < 0:
            raise ValueError(f"stability_threshold: must be >= 0, got {self.stability_threshold}")
        if not self.confidence_threshold > 0:
            raise ValueError(f"confidence_threshold: must be > 0, got {self.confidence_threshold}")

    @classmethod
    def from_config(cls, config: dict, generation_config: dict | None = None) -> UniformSettings:
        """From config.json (canvas_length, text_config.pad_token_id) and generation_config.json,
        whose null entries fall back to the reference's built-in defaults."""
        gen = {k: v for k, v in (generation_config or {}).items() if v is not None}
        text = config.get("text_config") or config
        values = {k: gen[k] for k in ("max_denoising_steps", "t_min", "t_max") if k in gen}
        values |= {k: gen[k] for k in ("stability_threshold", "confidence_threshold") if k in gen}
        if isinstance(gen.get("sampler_config"), dict) and gen["sampler_config"].get("entropy_bound") is not None:
            values["entropy_bound"] = gen["sampler_config"]["entropy_bound"]
        if config.get("canvas_length"):
            values["canvas_length"] = config["canvas_length"]
        values["pad_id"] = gen.get("pad_token_id", text.get("pad_token_id", 0))
        return cls(**values)


def uniform_tokens(generator, rows: list[int], length: int, vocab: int, device) -> torch.Tensor:
    """(len(rows), length) uniform random ids: one `randint` call, or one per row with RowGenerators."""
    if isinstance(generator, RowGenerators):
        parts = [torch.randint(0, vocab, (1, length), generator=generator[r], device=device) for r in rows]
        return torch.cat(parts) if parts else torch.empty((0, length), dtype=torch.long, device=device)
    return torch.randint(0, vocab, (len(rows), length), generator=generator, device=device)


def seed_canvas(block: torch.Tensor, noise: torch.Tensor, mask_id: int | None) -> torch.Tensor:
    """The starting canvas: noise where the block holds mask_id, the caller's tokens elsewhere."""
    return noise.clone() if mask_id is None else torch.where(block == mask_id, noise, block)


def temperature(s: UniformSettings, cur_step: int, device=None) -> torch.Tensor:
    """The linear schedule's temperature at `cur_step` (N .. 1), in float32 as the reference computes
    it (`cur_step` is an int32 tensor there, so the division and products are float32)."""
    step = torch.tensor(cur_step, dtype=torch.int32, device=device)
    return s.t_min + (s.t_max - s.t_min) * (step / s.max_denoising_steps)


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """(..., V) -> (...): `Categorical(logits=...).entropy()`, op for op."""
    norm = logits - logits.logsumexp(-1, keepdim=True)
    return -(norm.clamp(min=torch.finfo(norm.dtype).min) * norm.softmax(-1)).sum(-1)


def entropy_bound_accept(entropy: torch.Tensor, bound: float) -> torch.Tensor:
    """(B, L) bool: sorted by entropy, a position is accepted while the entropies up to it, minus
    its own (the largest so far), sum to at most `bound`; the lowest-entropy one always is."""
    ordered, order = torch.sort(entropy, dim=-1)
    keep = ordered.cumsum(-1) - ordered <= bound
    return torch.zeros_like(keep).scatter(-1, order, keep)


class StableAndConfident:
    """The reference's adaptive stop for one block: stable (the argmax canvas equals each of the
    last `stability` ones; the history starts at -1) and confident (mean entropy below `confidence`)."""

    def __init__(self, stability: int, confidence: float):
        self.stability, self.confidence = stability, confidence
        self.history: torch.Tensor | None = None  # (stability, B, L)

    def __call__(self, argmax: torch.Tensor, processed: torch.Tensor) -> torch.Tensor:
        if self.stability == 0:
            stable = torch.ones(argmax.shape[0], dtype=torch.bool, device=argmax.device)
        else:
            if self.history is None:
                self.history = torch.full((self.stability, *argmax.shape), -1, dtype=argmax.dtype, device=argmax.device)
            stable = (self.history == argmax[None]).all(-1).all(0)
            self.history = torch.cat([self.history[1:], argmax[None]])
        return stable & (token_entropy(processed).mean(-1) < self.confidence)


def end_block(block: torch.Tensor, stops: torch.Tensor | None, pad: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A finished block (B, L): pad after each row's first end id; -> (block, rows with an end id)."""
    if stops is None:
        return block, torch.zeros(block.shape[0], dtype=torch.bool, device=block.device)
    is_end = torch.isin(block, stops)
    seen = is_end.long().cumsum(-1)
    after = (seen > 0) & ~((seen == 1) & is_end)
    return block.masked_fill(after, pad), is_end.any(-1)


def drawing_rows(stopped: torch.Tensor, alone: bool) -> list[int]:
    """The rows that draw: all of them on one generator (the reference), else those still running."""
    return (~stopped).nonzero().flatten().tolist() if alone else list(range(stopped.shape[0]))


@torch.no_grad()
def denoise_uniform(
    net: nn.Module,
    canvas: torch.Tensor,
    gen_start: int,
    p: Plan,
    mask_id: int | None,
    key_mask: torch.Tensor | None = None,
    eos_ids: Sequence[int] = (),
    generator: torch.Generator | RowGenerators | None = None,
    gen_length: int | None = None,
    replay: Iterable[torch.Tensor] | None = None,
    *,
    settings: UniformSettings | None = None,
) -> Iterator[DenoiseStep]:
    """Denoise `canvas` (B, T) = prompt then region in place, block by block, yielding after every decoder pass.

    The region must be ceil(gen_length / canvas_length) blocks long. key_mask (B, T) marks real
    tokens (False = left pad). replay: the canvas fed to each decoder pass in order ((B, L) each);
    given, nothing is drawn (rows that stopped keep theirs). `nfe` counts decoder passes; the
    encoder's (one per block) are not counted, as in the reference. From `p` only `stop_at_eos`
    is read; the schedule comes from `settings` (default: the model's canvas length and pad)."""
    s = settings or UniformSettings(canvas_length=net.args.canvas_length, pad_id=net.args.pad_token_id)
    x, device = canvas, canvas.device
    B, T = x.shape
    L, N, V = s.canvas_length, s.max_denoising_steps, net.args.vocab_size
    n_blocks = math.ceil((T - gen_start if gen_length is None else gen_length) / L)
    asked = T if gen_length is None else min(T, gen_start + gen_length)  # the end of the new tokens asked for
    if T - gen_start != n_blocks * L or n_blocks < 1:
        raise ValueError(f"canvas: the region must be {n_blocks} block(s) of {L} tokens, got {T - gen_start} tokens")
    stops = torch.tensor(list(eos_ids), device=device) if p.stop_at_eos and len(eos_ids) else None
    if stops is not None and s.pad_id is None:
        raise ValueError("pad_id: needed to end rows at their end id")
    alone = isinstance(generator, RowGenerators)
    feed = None if replay is None else iter(replay)
    positions = net.positions(key_mask, T, device)
    cache = BlockCache(net.n_layers)
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    nfe, t0 = 0, time.perf_counter()
    for b in range(n_blocks):
        lo, hi = gen_start + b * L, gen_start + (b + 1) * L
        first = 0 if b == 0 else lo - L  # the prompt, then the previous block
        if lo > first:
            net.encode(x[:, first:lo], positions[:, first:lo], key_mask, cache, first)
        # Rows that take no more passes in this block; with RowGenerators, finished rows never start.
        stopped = finished.clone() if alone else torch.zeros(B, dtype=torch.bool, device=device)
        final = torch.zeros(B, dtype=torch.bool, device=device)  # rows whose block output is written
        before = x[:, lo:].clone()  # what the consumer last saw: the first pass reports the noise too
        if feed is not None:
            state = next(feed).to(device=device, dtype=x.dtype).clone()
        else:
            state = x[:, lo:hi].clone()
            rows = drawing_rows(stopped, alone)
            state[rows] = seed_canvas(x[rows, lo:hi], uniform_tokens(generator, rows, L, V, device), mask_id)
        x[~finished, lo:hi] = state[~finished]
        argmax, self_cond = state.clone(), None
        stop = StableAndConfident(s.stability_threshold, s.confidence_threshold)
        for cur_step in range(N, 0, -1):
            logits = net(state, positions[:, lo:hi], key_mask, cache, lo, self_conditioning=self_cond)
            nfe += 1
            processed = logits / temperature(s, cur_step, device)  # (B, L, V)
            accepted = entropy_bound_accept(token_entropy(processed), s.entropy_bound)
            running = ~stopped
            if feed is None:
                rows = drawing_rows(stopped, alone)
                probs = processed[rows].softmax(-1, dtype=torch.float32).reshape(-1, V)
                sub = RowGenerators(generator[r] for r in rows) if alone else generator
                sampled = multinomial_rows(probs, sub, [L] * len(rows)).view(len(rows), L)
                fresh = uniform_tokens(generator, rows, L, V, device)  # renoise the rejected positions
                nxt = state.clone()
                nxt[rows] = torch.where(accepted[rows], sampled, fresh)
                state = torch.where(running[:, None], nxt, state)
            # A stopped row keeps its argmax; what it is fed from now on changes nothing (rows are
            # independent), so its self-conditioning need not be frozen as the reference freezes it.
            argmax = torch.where(running[:, None], processed.argmax(-1), argmax)
            self_cond = processed
            stopped = stopped | stop(argmax, processed)
            last = cur_step == 1 or bool(stopped.all())
            if feed is not None and not last:
                state = torch.where(stopped[:, None], state, next(feed).to(device=device, dtype=x.dtype))
            ending = (stopped | last) & ~final & ~finished
            final = final | ending
            x[~finished, lo:hi] = torch.where(final[:, None], argmax, state)[~finished]
            if bool(ending.any()):
                x[ending, lo:hi], ended = end_block(x[ending, lo:hi], stops, s.pad_id)
                done = ending.clone()
                done[ending] = ended | (b == n_blocks - 1)
                if s.pad_id is not None:
                    x[done, hi:] = s.pad_id
                finished = finished | done
            changed = x[:, lo:] != before
            before = x[:, lo:].clone()
            picked = accepted & running[:, None]
            committed = [(lo + picked[r].nonzero().flatten()).tolist() for r in range(B)]
            # Unaccepted positions before the asked end: this pass's rejected ones until the row's
            # canvas is final, then those of the canvases not begun; a finished row has none.
            rejected = (~picked[:, : max(0, asked - lo)]).sum(-1)
            pending = torch.where(finished, 0, torch.where(final, 0, rejected) + max(0, asked - hi))
            yield DenoiseStep(
                index=nfe - 1,
                block=b,
                planned_steps=N,
                canvas=x,
                committed=committed,
                tokens=[x[r, committed[r]].tolist() for r in range(B)],
                finished=finished.tolist(),
                nfe=nfe,
                elapsed=time.perf_counter() - t0,
                remaining=[int(L - picked[r].sum()) if running[r] else 0 for r in range(B)],
                revoked=[[] for _ in range(B)],
                settled=[T if finished[r] else hi if final[r] else lo for r in range(B)],
                edited=[(lo + changed[r].nonzero().flatten()).tolist() for r in range(B)],
                pending=pending.tolist(),
            )
            if last:
                break
        if bool(finished.all()):
            return
