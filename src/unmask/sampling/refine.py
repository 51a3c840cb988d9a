"""Block refinement for LLaDA2.x: diffusers' `LLaDA2Pipeline` with its `BlockRefinementScheduler`.

Notable features:
- Two attention modes, chosen by `p.cache`:
  * "none" (reference): as the pipeline does, with no KV cache. Every pass re-runs the window
    `x[:, :block_end]`, the prompt blocks included, and reads the logits of its last block. The
    window's attention is what transformers makes of the pipeline's 2-D mask: fully bidirectional
    while that mask is all ones (over the whole batch), token-causal plus key padding as soon as
    it holds a zero (left pads, or the block-aligned tail past P + gen). Loop control is
    batch-wide, as in the pipeline: one step counter, and a block runs while any row needs it.
  * anything else (fast): the block-causal attention LLaDA2 was trained with (bidirectional in a
    block, causal across blocks), with an exact `BlockCache` of finished blocks. A pass runs the
    current block only, plus the previous block when the previous block's last pass still changed
    it (its final keys and values are cached then), so the passes equal those of the uncached
    block-causal loop (`refine(..., attention="block_causal")`, tested equal). Loop control is
    per row, so a row decodes in a batch exactly as it does alone.
- Steps per block: `min(p.steps_per_block, gen // p.min_commit)`, split evenly over the block
  (`block // steps`, +1 on the first `block % steps` steps). Commit: every masked position whose
  sampled token's probability is above `p.threshold` (strict), when there are at least the step's
  count of them, else the top count by that probability (`threshold=None`: top count only).
- Token editing (LLaDA2.1) when `p.edit_threshold > 0`: in every pass, a position that held a
  generated token before the pass takes the sampled token when it differs and its probability is
  above the edit threshold. A block's loop ends when its step budget is spent with masks left, or
  once a pass without masks edits nothing, or after `p.max_post_steps` passes without masks.
  The pass after the one that fills the last mask therefore always runs.
- End of text (`p.stop_at_eos`): a row is finished once a pass commits or edits an end id and
  the canvas's first end id (prompt included, as the reference looks) sits after the prompt with
  no mask before it; finished rows are frozen, and the loop stops when all are.
- Output is canvas[P : P + gen]. The block-aligned tail past it is decoded too (the reference
  does, and it steers the commit counts), in a scratch buffer: the canvas never shows it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import torch
from torch import nn

from ..models.layers import BlockCache, block_causal_mask
from .denoise import DenoiseStep
from .logits import block_choice
from .plan import Plan

# The scheduler's default block when a plan names none (BlockRefinementScheduler(block_length=32)).
DEFAULT_BLOCK = 32
ATTENTION_MODES = ("reference", "block_causal", "cached")

# (pass index, logits (B, block, V)) -> sampled tokens (B, block) and their probabilities (B, block)
Proposals = Callable[[int, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def even_quota(block: int, steps: int) -> torch.Tensor:
    """Commits per step (steps,): `block // steps`, one more on the first `block % steps` steps."""
    quota = torch.full((steps,), block // steps, dtype=torch.long)
    quota[: block % steps] += 1
    return quota


def pipeline_mask(real: torch.Tensor) -> torch.Tensor | None:
    """What transformers' `_prepare_4d_causal_attention_mask_for_sdpa` makes of the window's 2-D
    mask real (B, Lw): None (bidirectional) when it is all ones, else token-causal & real keys,
    bool (B, 1, Lw, Lw)."""
    if bool(real.all()):
        return None
    Lw = real.shape[1]
    causal = torch.ones(Lw, Lw, dtype=torch.bool, device=real.device).tril()
    return causal[None, None] & real[:, None, None, :]


def commit_mask(masked: torch.Tensor, probs: torch.Tensor, threshold: float, quota: torch.Tensor) -> torch.Tensor:
    """masked, probs (B, L); quota (B,) -> the positions to commit (B, L), each row on its own:
    all masked positions above threshold if they are at least its quota, else its top quota."""
    conf = probs.float().masked_fill(~masked, -torch.inf)
    high = conf > threshold
    take = torch.zeros_like(masked)
    for b in range(masked.shape[0]):
        count = int(quota[b])
        if int(high[b].sum()) >= count:
            take[b] = high[b]
        elif (k := min(count, int(masked[b].sum()))) > 0:
            take[b, conf[b].topk(k).indices] = True
    return take


def eos_finished(
    window: torch.Tensor,
    tokens: torch.Tensor,
    applied: torch.Tensor,
    finished: torch.Tensor,
    eos: torch.Tensor,
    gen_start: int,
    mask_id: int,
) -> torch.Tensor:
    """The scheduler's `check_eos_finished`: a row finishes when this pass wrote an end id and the
    first end id of its window (B, W) lies after the prompt with no mask before it."""
    finished = finished.clone()
    for b in range(window.shape[0]):
        if finished[b] or not bool(torch.isin(tokens[b][applied[b]], eos).any()):
            continue
        hits = torch.isin(window[b], eos).nonzero()
        if len(hits) == 0 or int(hits[0]) < gen_start:
            continue
        finished[b] = bool((window[b, gen_start : int(hits[0])] != mask_id).all())
    return finished


def truncate(cache: BlockCache, length: int) -> None:
    """Forget the cached keys/values of positions >= length."""
    cache.keys = [None if k is None else k[:, :, :length] for k in cache.keys]
    cache.values = [None if v is None else v[:, :, :length] for v in cache.values]


def denoise_llada2(
    net: nn.Module,
    canvas: torch.Tensor,
    gen_start: int,
    p: Plan,
    mask_id: int,
    key_mask: torch.Tensor | None = None,
    eos_ids=(),
    generator=None,
    gen_length: int | None = None,
    noise: torch.Tensor | None = None,
    proposals: Proposals | None = None,
) -> Iterator[DenoiseStep]:
    """Denoise `canvas` (B, T) from `gen_start` on, yielding after every model pass.

    `noise` (passes * B * block, V) replays Exp(1) draws pass by pass; `proposals` replaces the
    token choice altogether (a replayed reference's sampled tokens and probabilities)."""
    attention = "reference" if p.cache == "none" else "cached"
    yield from refine(
        net,
        canvas,
        gen_start,
        p,
        mask_id,
        key_mask,
        eos_ids,
        generator,
        gen_length,
        noise,
        proposals,
        attention=attention,
    )


@torch.no_grad()
def refine(
    net: nn.Module,
    canvas: torch.Tensor,
    gen_start: int,
    p: Plan,
    mask_id: int,
    key_mask: torch.Tensor | None = None,
    eos_ids=(),
    generator=None,
    gen_length: int | None = None,
    noise: torch.Tensor | None = None,
    proposals: Proposals | None = None,
    *,
    attention: str = "reference",
) -> Iterator[DenoiseStep]:
    """The loop of `denoise_llada2` with the attention mode named: "reference", "block_causal"
    (block-causal, the whole window recomputed every pass) or "cached" (the same with a cache)."""
    if attention not in ATTENTION_MODES:
        raise ValueError(f"attention: one of {', '.join(ATTENTION_MODES)}, got {attention!r}")
    x, P = canvas, gen_start
    B, T = x.shape
    device = x.device
    gen = T - P if gen_length is None else gen_length
    end = P + gen
    if gen <= 0:
        return
    if end > T:
        raise ValueError(f"gen_length: {gen} new tokens after {P} prompt tokens do not fit a canvas of {T}")
    L = p.block_length or DEFAULT_BLOCK
    if p.min_commit < 1:
        raise ValueError(f"min_commit: must be at least 1, got {p.min_commit}")
    steps = min(p.steps_per_block, gen // p.min_commit)
    if steps < 1:
        raise ValueError(f"min_commit: {p.min_commit} leaves no step for {gen} new tokens")
    quota = even_quota(L, steps).to(device)
    threshold = math.inf if p.threshold is None else p.threshold
    editing = p.edit_threshold is not None and p.edit_threshold > 0
    stop = p.stop_at_eos and len(eos_ids) > 0
    eos = torch.tensor(list(eos_ids), device=device, dtype=x.dtype)
    first, n_blocks = P // L, -(-end // L)
    width = n_blocks * L
    # The pipeline's 2-D mask: the prompt's, ones over the new tokens, zeros over the aligned tail.
    real = torch.zeros(B, width, dtype=torch.bool, device=device)
    real[:, :end] = True if key_mask is None else key_mask[:, :end]
    positions = net.positions(key_mask, width, device).expand(B, width)
    tail = torch.full((B, width - end), mask_id, dtype=x.dtype, device=device)

    def read(a: int, b: int) -> torch.Tensor:  # ids of canvas positions [a, b), tail included
        return x[:, a:b] if b <= end else torch.cat([x[:, a:end], tail[:, : b - end]], dim=1)

    def write(a: int, ids: torch.Tensor) -> None:
        x[:, a : min(a + ids.shape[1], end)] = ids[:, : end - a]
        if a + ids.shape[1] > end:
            tail[:, : a + ids.shape[1] - end] = ids[:, end - a :]

    reference = attention == "reference"
    cache = BlockCache(net.n_layers) if attention == "cached" else None
    valid = 0  # the cache holds the keys/values of the current tokens of positions [0, valid)
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    nfe, t0 = 0, time.perf_counter()

    def logits_for(s: int, e: int) -> torch.Tensor:  # (B, L, V) for the block [s, e)
        if attention == "reference":
            mask = pipeline_mask(real[:, :e])
            return net(read(0, e), positions[:, :e], None, None, 0, (s, e), attn_mask=mask)
        rows = block_causal_mask(e, L, device)[None, None] & real[:, None, None, :e]  # (B, 1, e, e)
        if cache is None:
            return net(read(0, e), positions[:, :e], None, None, 0, (s, e), attn_mask=rows)
        c = min(valid, s)
        truncate(cache, c)
        return net(read(c, e), positions[:, c:e], None, cache, c, (s - c, e - c), attn_mask=rows[:, :, c:])

    drawn = 0  # rows of `noise` used so far

    def propose(index: int, logits: torch.Tensor, live: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens and probabilities (B, L); only the live rows draw (all rows in the reference, as
        it samples the whole batch), so that with RowGenerators a row draws what it draws alone."""
        nonlocal drawn
        if proposals is not None:
            return proposals(index, logits)
        rows = [L * int(r) for r in live.tolist()]
        draws = None if noise is None else noise[drawn : drawn + sum(rows)]
        drawn += sum(rows)
        flat = logits[live].reshape(sum(rows), logits.shape[-1])
        chosen, chosen_p = block_choice(flat, p.temperature, p.top_k or None, p.top_p, generator, rows, draws)
        tokens = torch.full((B, L), mask_id, dtype=x.dtype, device=device)
        probs = torch.zeros(B, L, dtype=chosen_p.dtype, device=device)
        tokens[live], probs[live] = chosen.view(-1, L), chosen_p.view(-1, L)
        return tokens, probs

    # The pipeline edits anything after the prompt; under the "unmask" recipe the tokens the caller
    # fixed in the region (an infill template's text) are kept as well.
    given = read(0, width) != mask_id if p.recipe == "unmask" else None
    for nb in range(first, n_blocks):
        s, e = nb * L, (nb + 1) * L
        editable = torch.arange(s, e, device=device) >= P  # the prompt is never edited
        if given is not None:
            editable = editable & ~given[:, s:e]  # (B, L)
        inside = torch.arange(s, e, device=device) < end  # positions the canvas shows
        step = torch.zeros(B, dtype=torch.long, device=device)
        post = torch.zeros(B, dtype=torch.long, device=device)
        going = torch.ones(B, dtype=torch.bool, device=device) if reference else ~finished
        while bool(going.any()):
            before = read(s, e).clone()  # (B, L)
            masked = before == mask_id
            has = masked.any(-1)
            if reference:
                has = has.any().expand(B)
            post += (~has).long()
            live = going & ~finished
            tokens, probs = propose(nfe, logits_for(s, e), torch.ones_like(live) if reference else live)
            take = commit_mask(masked, probs, threshold, quota[step.clamp(max=steps - 1)])
            edit = torch.zeros_like(take)
            if editing:
                edit = ~masked & editable & (probs.float() > p.edit_threshold) & (tokens != before)
            applied = (take | edit) & live[:, None]
            after = torch.where(applied, tokens, before)
            write(s, after)
            if stop:
                finished = eos_finished(read(0, e), tokens, applied, finished, eos, P, mask_id)
            step += has.long()
            if reference:  # BlockRefinementScheduler.check_block_should_continue, batch-wide
                if bool(finished.all()):
                    more = False
                elif not bool(has[0]):
                    more = editing and bool(edit.any()) and int(post[0]) <= p.max_post_steps
                else:
                    more = int(step[0]) < steps
                going = torch.full_like(going, more)
            else:
                idle = editing & (edit & live[:, None]).any(-1) & (post <= p.max_post_steps)
                going = going & ~finished & torch.where(has, step < steps, idle)
            if cache is not None:
                valid = e if bool((after == before).all()) else s
            nfe += 1
            done = not bool(going.any()) and (nb == n_blocks - 1 or (stop and bool(finished.all())))
            yield make_step(
                x,
                P,
                end,
                s,
                e,
                nb - first,
                p,
                applied & take & inside,
                applied & edit & inside,
                finished,
                going,
                done,
                editing,
                nfe,
                t0,
                mask_id,
            )
        if stop and bool(finished.all()):
            break


def make_step(x, P, end, s, e, block, p: Plan, committed, edited, finished, going, done, editing, nfe, t0, mask_id):
    """The DenoiseStep after a pass over block [s, e); committed/edited (B, L) in the block."""
    B = x.shape[0]
    commits = [(row.nonzero().flatten() + s).tolist() for row in committed]
    region = x[:, P:end] == mask_id
    settled = []
    for b in range(B):
        if done or bool(finished[b]):
            settled.append(end)
        elif not bool(going[b]):  # this block's loop is over for the row: the block is final
            settled.append(min(e, end))
        elif editing:  # the block's tokens may still change
            settled.append(max(s, P))
        else:  # committed tokens are final; the first mask is not
            lo = max(s, P)
            masks = (x[b, lo : min(e, end)] == mask_id).nonzero()
            settled.append(lo + int(masks[0]) if len(masks) else min(e, end))
    return DenoiseStep(
        index=nfe - 1,
        block=block,
        planned_steps=p.total_steps,
        canvas=x,
        committed=commits,
        tokens=[x[b, pos].tolist() for b, pos in enumerate(commits)],
        finished=[done or bool(f) for f in finished],
        nfe=nfe,
        elapsed=time.perf_counter() - t0,
        remaining=region.sum(-1).tolist(),
        revoked=[[] for _ in range(B)],
        settled=settled,
        edited=[(row.nonzero().flatten() + s).tolist() for row in edited],
    )
