"""Block-diffusion sampling for SDAR: `block_diffusion_generate` of JetAstra/SDAR generate.py.

Notable features:
- The canvas is block aligned from position 0 (the caller passes T = ceil((P + gen) / b) * b).
  One prefill pass stores the P // b full prompt blocks in a `BlockCache`, with the block-causal
  mask SDAR was trained with (arXiv:2510.06303). A prompt that ends inside a block leaves that
  block to be decoded first, its prompt tokens in place.
- Each block is denoised alone, attending to the cache and itself without writing it
  (`store=False`); once it has no mask left, one more pass stores its keys and values. That pass
  counts in `nfe` and yields a step with no commits, as the reference's NFE counts it too.
- Commits per pass follow `get_num_transfer_tokens` for the *full* block length, whatever the
  block holds. Ranking: "sequential" (the first masks), "low_confidence" (top-k by the sampled
  token's probability), "low_confidence" with `threshold` (SDAR's dynamic rule: every position
  above it, strictly, when those are at least the pass's count, else the top-k).
- Every pass samples the whole block (`block_choice`), as the reference does, so replayed noise
  lines up with its draws.
- Reference quirk, kept under the family's own recipe `"sdar"` (what `Model.generate` runs) and
  dropped under `"unmask"` (what the CLI and server resolve to): `topk` over confidences that are
  -inf off the masks, with a count larger than the masks left, selects committed positions too,
  and they are overwritten with fresh samples, prompt tokens included (observed in the golden
  `*_overwrite` records). Otherwise the count is capped at the masks left, so a committed or
  prompt token never changes. Overwritten positions are reported in `DenoiseStep.edited`.
- `cache="none"` recomputes the canvas up to the current block on every pass instead (the same
  tokens, no prefill or store passes): what the block cache saves, measured in benchmarks/decode.py.
- Stopping: after a block is stored, a row stops if any end id occurs in its canvas after the
  prompt; its later blocks stay masked. Rows decide alone: a batch of rows gives each the tokens
  it gets alone (with `RowGenerators`, its own draws too).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from ..models.layers import BlockCache, block_causal_mask
from .denoise import DenoiseStep, never_mask
from .logits import block_choice
from .noise import RowGenerators
from .plan import Plan

REFERENCE_RECIPE = "sdar"  # reproduce block_diffusion_generate, overwrite quirk included
ALGORITHMS = ("sequential", "low_confidence")

# (denoise pass index, logits (R * b, V) of the rows that sample) -> (tokens (R * b,), probabilities (R * b,))
Proposals = Callable[[int, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def transfer_counts(block_length: int, steps: int) -> list[int]:
    """SDAR `get_num_transfer_tokens`: block_length // steps per pass, the remainder on the first passes."""
    base, extra = divmod(block_length, steps)
    return [base + (1 if i < extra else 0) for i in range(steps)]


def select_commits(p: Plan, conf: torch.Tensor, masked: torch.Tensor, count: int, reference: bool) -> torch.Tensor:
    """(R, b) bool: the block positions each row commits this pass.

    conf (R, b) is the sampled token's probability on masked positions and -inf elsewhere."""
    chosen = torch.zeros_like(masked)
    for row in range(masked.shape[0]):
        left = int(masked[row].sum())
        if left == 0:
            continue
        k = count if reference else min(count, left)
        if p.algorithm == "sequential":
            if reference:  # a slice from the first mask, as the reference cuts it
                first = int(masked[row].nonzero()[0])
                chosen[row, first : first + k] = True
            else:
                chosen[row, masked[row].nonzero().flatten()[:k]] = True
            continue
        if p.threshold is not None:
            above = conf[row] > p.threshold  # strict, as in low_confidence_dynamic
            if int(above.sum()) >= k:
                chosen[row] = above
                continue
        chosen[row, torch.topk(conf[row], k).indices] = True
    return chosen


def propose(
    p: Plan,
    logits: torch.Tensor,
    rows: torch.Tensor,
    generator,
    noise: torch.Tensor | None,
    proposals: Proposals | None,
    index: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample every position of the block for the rows that draw. logits (B, b, V) -> (R * b,) twice."""
    B, b, V = logits.shape
    picked = rows.nonzero().flatten()
    flat = logits[picked].reshape(-1, V).float()
    if proposals is not None:
        tokens, probs = proposals(index, flat)
        return tokens.to(logits.device).long(), probs.to(logits.device).float()
    if isinstance(generator, RowGenerators):
        generator = RowGenerators(generator[r] for r in picked.tolist())
    if noise is not None:
        noise = noise.to(logits.device).reshape(B, b, V)[picked].reshape(-1, V)
    return block_choice(flat, p.temperature, p.top_k, p.top_p, generator, [b] * len(picked), noise)


@torch.no_grad()
def denoise_sdar(
    net: nn.Module,
    canvas: torch.Tensor,
    gen_start: int,
    p: Plan,
    mask_id: int,
    key_mask: torch.Tensor | None = None,
    eos_ids: Sequence[int] = (),
    generator: torch.Generator | RowGenerators | None = None,
    gen_length: int | None = None,
    noise: Sequence[torch.Tensor] | torch.Tensor | None = None,
    proposals: Proposals | None = None,
) -> Iterator[DenoiseStep]:
    """Denoise `canvas` (B, T) in place block by block from `gen_start` on, yielding after every pass.

    key_mask (B, T) marks real tokens (False = left padding). The whole block-aligned canvas is
    decoded, as in the reference; `gen_length` (the tokens asked for) is for the caller to cut.
    noise[i] (B * b, V) replaces the Exp(1) draws of the i-th denoising pass (replaying a
    reference); `proposals(i, logits)` replaces the token choice itself (recorded x0, x0_p).
    """
    x = canvas
    B, T = x.shape
    device = x.device
    b = p.block_length
    if not b or T % b:
        raise ValueError(f"block_length: must divide the canvas length {T}, got {b}")
    if p.algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm: SDAR decodes with one of {', '.join(ALGORITHMS)}, got {p.algorithm!r}")
    if key_mask is not None and bool(key_mask.all()):
        key_mask = None
    reference = p.recipe == REFERENCE_RECIPE
    positions = net.positions(key_mask, T, device).expand(B, T)
    counts = transfer_counts(b, p.steps_per_block)
    eos = torch.tensor(list(eos_ids), device=device, dtype=x.dtype)
    stops = p.stop_at_eos and len(eos_ids) > 0
    cache = BlockCache(net.n_layers)
    stopped = torch.zeros(B, dtype=torch.bool, device=device)
    no_change = [[] for _ in range(B)]
    nfe, passes, t0 = 0, 0, time.perf_counter()

    def report(block: int, start: int, committed=None, edited=None) -> DenoiseStep:
        gen_masked = x[:, gen_start:] == mask_id
        pending = gen_masked.any(-1) & ~stopped
        first_mask = torch.where(pending, gen_masked.int().argmax(-1) + gen_start, T)
        # Under the quirk, the block being decoded may still be overwritten, prompt tokens included.
        settled = torch.where(pending, first_mask // b * b, T) if reference else first_mask
        remaining = torch.where(stopped, 0, gen_masked.sum(-1))
        where = no_change if committed is None else [(r.nonzero().flatten() + start).tolist() for r in committed]
        return DenoiseStep(
            index=nfe - 1,
            block=block,
            planned_steps=p.total_steps,
            canvas=x,
            committed=where,
            tokens=[x[row, pos].tolist() for row, pos in enumerate(where)],
            finished=(remaining == 0).tolist(),
            nfe=nfe,
            elapsed=time.perf_counter() - t0,
            remaining=remaining.tolist(),
            revoked=[[] for _ in range(B)],
            settled=settled.tolist(),
            edited=no_change if edited is None else [(r.nonzero().flatten() + start).tolist() for r in edited],
        )

    first_block = gen_start // b
    cached = p.cache != "none"  # "none": every pass recomputes the canvas up to its block (no store passes)
    if first_block and cached:  # prefill: the full prompt blocks, block-causal, stored
        n = first_block * b
        mask = block_causal_mask(n, b, device)[None, None]
        net(x[:, :n], positions[:, :n], key_mask, cache, 0, (0, 0), attn_mask=mask, store=True)
        nfe += 1
        yield report(0, 0)
    for block, s in enumerate(range(first_block * b, T, b)):
        e, i = s + b, 0
        while True:
            masked = (x[:, s:e] == mask_id) & ~stopped[:, None]  # (B, b)
            if not bool(masked.any()):
                break
            if cached:
                # The block attends to the cache and all of itself: no mask (the reference's rows are all ones).
                logits = net(x[:, s:e], positions[:, s:e], key_mask, cache, s, store=False)  # (B, b, V)
            else:
                mask = block_causal_mask(e, b, device)[None, None]
                logits = net(x[:, :e], positions[:, :e], key_mask, None, 0, (s, e), attn_mask=mask)
            rows = masked.any(-1)
            step_noise = None if noise is None else noise[passes]
            tokens, probs = propose(p, logits, rows, generator, step_noise, proposals, passes)
            tokens = never_mask(tokens, logits[rows].reshape(-1, logits.shape[-1]), mask_id)
            x0 = torch.full_like(masked, mask_id, dtype=x.dtype)
            x0[rows] = tokens.view(-1, b)
            conf = torch.full(masked.shape, -torch.inf, device=device)
            conf[rows] = probs.float().view(-1, b)
            conf = conf.masked_fill(~masked, -torch.inf)
            count = counts[i] if i < len(counts) else int(masked.sum(-1).max())
            chosen = select_commits(p, conf, masked, count, reference)
            window = x[:, s:e]
            before = window.clone()
            window[chosen] = x0[chosen]
            nfe, passes, i = nfe + 1, passes + 1, i + 1
            yield report(block, s, chosen & masked, chosen & ~masked & (window != before))
        if cached:
            net(x[:, s:e], positions[:, s:e], key_mask, cache, s, (0, 0), store=True)
            nfe += 1
        if stops:
            now = torch.isin(x[:, gen_start:], eos).any(-1) & ~stopped
            stopped |= now
            if not reference:
                # The text ends at the end token: the later blocks, left masked by the reference,
                # hold it too, as the 2025 families' rows do once they end (denoise.finish_at_eos).
                for row in now.nonzero().flatten().tolist():
                    gen = x[row, gen_start:]
                    gen[gen == mask_id] = gen[torch.isin(gen, eos)][0]
        yield report(block, s)
        if bool(stopped.all()):
            return
