"""The denoising loop: one model pass per step, yielding a `DenoiseStep` after each.

Notable features:
- Works on a canvas of token ids: prompt (left-padded for batches) followed by the region to
  generate, in which every mask id is to be filled and every other id is kept (infilling is a
  canvas with fixed tokens in it).
- A recipe is a combination of orthogonal parts: token choice (logits.py), ranking (ranking.py),
  schedule (schedule.py) and cache window (cache.py). `make_plan()` (plan.py) picks the
  combination the Dream hub sampler, the official LLaDA `generate` or Fast-dLLM uses, so their
  outputs are reproduced token for token (tests/golden).
- `remask` (ours, after Wino and ReMDM) may take back a block's earlier commits that a later pass
  doubts; each step says which positions it revoked, so a consumer replaying the stream stays exact,
  and up to where the canvas is settled, so a consumer sending text sends only what is final.
- The canvas in each step is the live tensor: a consumer may pin tokens into it between steps
  (a constraint) or stop iterating (cancel); nothing else is kept alive.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from ..models.layers import KVStore
from .cache import window_for
from .logits import dream_choice, guide, llada_choice, shift_right
from .noise import RowGenerators
from .plan import Plan
from .ranking import margin, max_prob, neg_entropy, uniform
from .schedule import (
    DynamicThreshold,
    EvenSplit,
    Factor,
    HeadFirst,
    QuotaThreshold,
    Remaining,
    Schedule,
    Threshold,
    Timestep,
)

SCORES = {"maskgit_plus": "prob", "low_confidence": "prob", "topk_margin": "margin", "entropy": "entropy"}


@dataclass
class DenoiseStep:
    """The state after one model pass."""

    index: int  # 0-based pass number over the whole generation
    block: int  # 0-based block index
    planned_steps: int  # the steps the options asked for (threshold modes may use fewer or more)
    canvas: torch.Tensor  # (B, L) live canvas after this pass's commits
    committed: list[list[int]]  # per row, canvas positions committed by this pass
    tokens: list[list[int]]  # per row, the ids committed at those positions
    finished: list[bool]  # per row, nothing left to denoise
    nfe: int  # model forward passes so far
    elapsed: float  # seconds since denoising started
    remaining: list[int] = field(default_factory=list)  # per row, masked positions left
    # per row, canvas positions masked again by this pass (remask) before its commits, which may
    # take some of them back at once
    revoked: list[list[int]] = field(default_factory=list)
    # per row, the canvas position before which nothing will change again: committed tokens are
    # final, except those of a block that remask may still revoke (until the block is filled)
    settled: list[int] = field(default_factory=list)
    # per row, canvas positions whose committed token this pass replaced by another (token editing,
    # LLaDA2.1); the new ids are in `canvas`
    edited: list[list[int]] = field(default_factory=list)
    # per row, positions of the new tokens asked for (gen_length) that this pass leaves unaccepted,
    # where that differs from `remaining` (uniform state: rejected and renoised, and the canvases not
    # begun); empty: `remaining` over the whole region
    pending: list[int] = field(default_factory=list)


def make_schedule(p: Plan, masked: torch.Tensor, generator, revoking: bool = False) -> Schedule:
    steps = p.steps_per_block
    if p.schedule == "threshold":
        inner: Schedule = Threshold(p.threshold)
    elif p.schedule == "dynamic_threshold":
        inner = DynamicThreshold(masked, steps, p.threshold)
    elif p.schedule == "quota_threshold":
        inner = QuotaThreshold(masked, steps, p.threshold)
    elif p.schedule == "factor":
        inner = Factor(p.factor)
    elif revoking:
        inner = Remaining(steps, p.alg_temp, generator, p.spread)
    elif p.schedule == "even":
        inner = EvenSplit(masked, steps, p.alg_temp, generator, p.spread)
    else:
        inner = Timestep(steps, p.eps, p.algorithm == "origin", p.alg_temp, generator, p.spread)
    return HeadFirst(inner) if p.head_first else inner


def score_masked(
    p: Plan, logits: torch.Tensor, generator, mask_id: int, rows: list[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, V) logits at masked positions -> proposed tokens (M,) and scores (M,), higher = surer."""
    logits = logits.float()
    if p.choice == "dream":
        tokens, probs = dream_choice(logits, p.temperature, p.top_p, p.top_k, generator, rows)
    else:
        tokens, probs = llada_choice(logits, p.temperature, p.top_p, p.top_k, p.prob_dtype, generator, rows)
    tokens = never_mask(tokens, logits, mask_id)
    kind = SCORES.get(p.algorithm)
    if kind == "prob":
        return tokens, max_prob(probs, tokens)
    if kind == "margin":
        return tokens, margin(probs)
    if kind == "entropy":
        return tokens, neg_entropy(probs)
    return tokens, uniform(tokens.shape[0], generator, logits.device, rows)  # random / origin


def never_mask(tokens: torch.Tensor, logits: torch.Tensor, mask_id: int) -> torch.Tensor:
    """Replace a proposed mask id by the best other token. Trained models never propose it (and
    then nothing changes, so reference outputs are kept), but an untrained or damaged head can,
    and committing a mask would leave the position masked forever."""
    bad = tokens == mask_id
    if bool(bad.any()):
        tokens = tokens.clone()
        tokens[bad] = logits[bad].index_fill(-1, torch.tensor([mask_id], device=logits.device), -torch.inf).argmax(-1)
    return tokens


def finish_at_eos(x: torch.Tensor, gen_start: int, mask_id: int, eos_ids: torch.Tensor) -> torch.Tensor:
    """Rows whose first end token is preceded only by committed tokens are final: the text is cut
    there anyway, so their remaining masks are filled with that end token. Returns the (B,) rows."""
    gen = x[:, gen_start:]
    is_end = torch.isin(gen, eos_ids)
    has_end = is_end.any(-1)
    first_end = torch.where(has_end, is_end.int().argmax(-1), gen.shape[1])
    before = torch.arange(gen.shape[1], device=x.device)[None] < first_end[:, None]
    masked = gen == mask_id
    done = has_end & ~(masked & before).any(-1) & masked.any(-1)
    for row in done.nonzero().flatten().tolist():
        end_id = gen[row, first_end[row]]
        gen[row][masked[row]] = end_id
    return done


def remasking(p: Plan, block_masked: torch.Tensor) -> bool:
    """remask is on, and the block's passes commit more than one token each: revocation mends the
    errors of committing tokens together; at one per pass there are none, and what it took back
    would make later passes commit several (on the story model, 87% accepted against 94%)."""
    return bool(p.remask) and p.steps_per_block < int(block_masked.sum(-1).max())


def revoke(
    block: torch.Tensor, logits: torch.Tensor, ours: torch.Tensor, below: float, mask_id: int, eos: torch.Tensor
) -> torch.Tensor:
    """Mask again, in place, the tokens of `ours` that this pass gives less than `below` probability;
    returns the (B, N) positions revoked. Draft-and-revoke decoding (Wino, arXiv:2507.18578; ReMDM,
    arXiv:2503.00307): a token committed in parallel with a neighbour it contradicts ("met a a bear")
    is seen as unlikely once the neighbour is there, and is decoded again. End tokens stay: the
    canvas after them may already be filled."""
    held = ours & (block != mask_id) & ~torch.isin(block, eos)
    out = torch.zeros_like(held)
    if bool(held.any()):
        p_now = logits[held].float().softmax(-1).gather(-1, block[held][:, None])[:, 0]
        out[held] = p_now < below
        block[out] = mask_id
    return out


@torch.no_grad()
def denoise(
    net: nn.Module,
    canvas: torch.Tensor,
    gen_start: int,
    p: Plan,
    mask_id: int,
    key_mask: torch.Tensor | None = None,
    eos_ids: list[int] | tuple[int, ...] = (),
    generator: torch.Generator | RowGenerators | None = None,
    rows_alone: bool = False,
) -> Iterator[DenoiseStep]:
    """Denoise `canvas` (B, L) in place from `gen_start` on, yielding after every model pass.

    key_mask (B, L) marks real tokens (False = left padding); None means no padding.
    rows_alone: each row computes what it would alone (rows a server batched): positions count
    from the row's own first token, even where the reference numbers pads (LLaDA does).
    """
    x = canvas
    B, L = x.shape
    device = x.device
    if key_mask is not None and bool(key_mask.all()):
        key_mask = None
    if rows_alone and key_mask is not None:
        positions = (key_mask.long().cumsum(-1) - 1).clamp(min=0)
    else:
        positions = net.positions(key_mask, L, device).expand(B, L)
    block_len = p.block_length or (L - gen_start)
    blocks = [(s, min(s + block_len, L)) for s in range(gen_start, L, block_len)]
    cache = None
    # A shifted model reads position s-1 to predict s; a cached window must include it, except
    # in Fast-dLLM's Dream sampler, which shifts inside the window (its block head is committed).
    lead = 1 if net.shift_logits and not p.fast_dllm_dream else 0
    fixed = x != mask_id  # the prompt and any pinned tokens: what CFG hides
    eos = torch.tensor(list(eos_ids), device=device, dtype=x.dtype)
    nfe, t0 = 0, time.perf_counter()

    for b, (s, e) in enumerate(blocks):
        masked = x[:, s:e] == mask_id
        if not masked.any():
            continue
        revoking = remasking(p, masked)
        schedule = make_schedule(p, masked, generator, revoking)
        # What remask may revoke: this block's commits, once they have been seen by one pass (a token
        # just committed is judged when its neighbours of the next pass are there too).
        ours = torch.zeros_like(masked)
        fresh = torch.zeros_like(masked)
        i = 0
        while masked.any():
            w = window_for(p.cache, i == 0, (s, e), L, lead)
            if w.cached and i == 0:
                cache = KVStore(net.n_layers)
            a = max(s - 1, w.start) if net.shift_logits else s
            logits = forward(net, x, w, positions, key_mask, cache, (a - w.start, e - w.start), p, fixed, mask_id)
            if net.shift_logits:
                logits = shift_right(logits)[:, s - a :]
            revoked: list[list[int]] = [[] for _ in range(B)]
            if revoking and 0 < i < p.steps_per_block - 1:
                # Only rows still filling this block: a row whose block is full is final, as alone.
                open_rows = masked.any(-1, keepdim=True)
                taken = revoke(x[:, s:e], logits, ours & ~fresh & open_rows, p.remask, mask_id, eos)
                ours &= ~taken
                masked = x[:, s:e] == mask_id
                revoked = [(row.nonzero().flatten() + s).tolist() for row in taken]
            tokens, scores = score_masked(p, logits[masked], generator, mask_id, masked.sum(-1).tolist())
            table = torch.full(masked.shape, -torch.inf, device=device, dtype=scores.dtype)
            table[masked] = scores
            proposal = torch.full_like(masked, mask_id, dtype=x.dtype)
            proposal[masked] = tokens
            chosen = schedule.select(i, table, masked) & masked
            block = x[:, s:e]
            block[chosen] = proposal[chosen]
            ours |= chosen
            fresh = chosen
            nfe += 1
            i += 1
            if p.stop_at_eos and len(eos_ids):
                finish_at_eos(x, gen_start, mask_id, eos)
            masked = x[:, s:e] == mask_id
            committed = [(row.nonzero().flatten() + s).tolist() for row in chosen]
            gen_masked = x[:, gen_start:] == mask_id
            remaining = gen_masked.sum(-1)
            settled = torch.where(gen_masked.any(-1), gen_masked.int().argmax(-1), L - gen_start) + gen_start
            if revoking and i < p.steps_per_block - 1:
                settled = torch.where(masked.any(-1), torch.clamp(settled, max=s), settled)
            yield DenoiseStep(
                index=nfe - 1,
                block=b,
                planned_steps=p.total_steps,
                canvas=x,
                committed=committed,
                tokens=[x[row, pos].tolist() for row, pos in enumerate(committed)],
                finished=(remaining == 0).tolist(),
                nfe=nfe,
                elapsed=time.perf_counter() - t0,
                remaining=remaining.tolist(),
                revoked=revoked,
                settled=settled.tolist(),
            )


def forward(net, x, w, positions, key_mask, cache, keep, p: Plan, fixed, mask_id) -> torch.Tensor:
    """One model pass over window w, returning logits for window rows keep[0]..keep[1]-1."""
    ids = x[:, w.start : w.end]
    pos = positions[:, w.start : w.end]
    if p.cfg_scale <= 0:
        return net(ids, pos, key_mask, cache if w.cached else None, w.start, keep)
    # Unconditional copy: everything fixed at the start (the prompt) is masked (LLaDA App. B.3).
    uncond = ids.masked_fill(fixed[:, w.start : w.end], mask_id)
    km = None if key_mask is None else torch.cat([key_mask, key_mask])
    both = net(torch.cat([ids, uncond]), torch.cat([pos, pos]), km, None, w.start, keep)
    cond, unc = both.chunk(2)
    return guide(cond, unc, p.cfg_scale)
