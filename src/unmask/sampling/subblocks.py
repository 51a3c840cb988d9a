"""Fast-dLLM v2's decoding: blocks left to right, sub-blocks inside each block, a confidence threshold.

Notable features:
- Reproduces `Fast_dLLM_QwenForCausalLM.generate` of the Efficient-Large-Model/Fast_dLLM_v2_7B hub
  code (arXiv:2509.26328, Sec. 3.3) and, for batches, `batch_sample` of NVlabs/Fast-dLLM
  `v2/generation_functions.py`, pass for pass (tests/golden/fastdllm2-tiny):
  * the prompt's full blocks are prefilled into an exact cache of finished blocks (`BlockCache`);
  * a block is decoded one sub-block (`small_block_size`) at a time; each pass commits, among the
    sub-block's masks, every token whose probability exceeds the threshold, and always the surest;
  * a finished block is run once more to store its keys/values, and that pass's last logits give
    the next block's first token, greedily: across blocks the model stays autoregressive (token
    shift), so a position is predicted from the one before it.
- The sub-block cache (the reference's `use_block_cache`; here `cache="dual"`): a pass over the
  whole block keeps the block's keys/values, and while a sub-block's first token is known only the
  sub-block is recomputed against them. The rest of the block is then stale: an approximation, as in
  the reference. "none" and "prefix" recompute the block every pass (finished blocks are always cached).
- Batches: rows keep their own block boundaries, as in the reference's right-padded batches. The
  left-padded canvas is decoded in row coordinates (pads dropped), so every row gets what it gets
  alone, except with the sub-block cache, where one row's full pass refreshes all rows' block caches.
- Under the "unmask" recipe (the surfaces'), `steps_per_block` is a dial: each pass commits at
  least block_length / steps_per_block of the sub-block's masks, surest first (the reference commits
  one, plus those above the threshold).
- Stopping follows `generate`: a row is done once an end id has only committed tokens before it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import torch
from torch import nn

from ..models.layers import BlockCache, block_causal_mask
from .denoise import DenoiseStep, never_mask
from .logits import block_choice, shift_right
from .noise import RowGenerators
from .plan import Plan

SUB_BLOCK = 8  # generate()'s `small_block_size` default (also v2/eval.py's and run_chatbot.py's)
HUB_THRESHOLD = 1.0  # generate()'s default: nothing exceeds it, so one token (the surest) per pass
# generate() passes its block_size to the prefill and store passes only; denoising passes get
# forward()'s default of 32, a block-causal mask in blocks of 32 (no mask for blocks dividing 32).
DENOISE_MASK_BLOCK = 32


def reference_gen_length(prompt_length: int, max_new_tokens: int, block_length: int) -> int:
    """The gen_length at which this sampler does what generate(max_new_tokens) (and batch_sample, with
    the longest prompt's length) does: max_new_tokens // block_length blocks from the prompt's last
    block, plus the token after them. Needs max_new_tokens >= block_length."""
    return (prompt_length // block_length + max_new_tokens // block_length) * block_length + 1 - prompt_length


def sub_block_length(p: Plan) -> int:
    """The sub-block length: the Plan's `sub_block_length` where it has one, else the reference default
    (never longer than the block)."""
    return p.sub_block_length or min(SUB_BLOCK, p.block_length)


class SubBlockCache:
    """Finished blocks (exact) plus the current block's keys/values from its last full pass, in which a
    sub-block pass replaces only its own slice (the reference's `block_past_key_values` with
    `replace_position`). Has BlockCache's `extend`, which is all the model calls; `full` says which kind
    of pass comes next."""

    def __init__(self, finished: BlockCache, n_layers: int):
        self.finished = finished
        self.keys: list[torch.Tensor | None] = [None] * n_layers
        self.values: list[torch.Tensor | None] = [None] * n_layers
        self.full = True

    @property
    def empty(self) -> bool:
        return self.keys[0] is None

    def extend(self, layer: int, start: int, k, v, store: bool) -> tuple[torch.Tensor, torch.Tensor]:
        base = self.finished.length
        if self.full:  # a pass over the whole block: its keys/values become the block's
            self.keys[layer], self.values[layer] = k, v
        else:  # (B, Hkv, sub, D) into the block's slice, in place: later sub-block passes see it
            offset = start - base
            self.keys[layer][:, :, offset : offset + k.shape[2]] = k
            self.values[layer][:, :, offset : offset + v.shape[2]] = v
        return self.finished.extend(layer, base, self.keys[layer], self.values[layer], store=False)


class RowFrame:
    """The canvas in row coordinates: row r's j-th token at column j, left pads dropped. Columns past
    the canvas's end (L - pads of the row) exist only here. Without pads it is the canvas itself."""

    def __init__(self, x: torch.Tensor, key_mask: torch.Tensor | None, mask_id: int):
        self.x = x
        B, L = x.shape
        self.pads = [0] * B
        self.rows = x
        if key_mask is not None and not bool(key_mask.all()):
            self.pads = (~key_mask).sum(-1).tolist()
            for r, n in enumerate(self.pads):
                if bool(key_mask[r, :n].any()) or not bool(key_mask[r, n:].all()):
                    raise ValueError("key_mask: Fast-dLLM v2 takes left padding only (False, then True)")
            self.rows = torch.full_like(x, mask_id)
            self.pull()

    def pull(self) -> None:
        """Canvas -> rows (tokens a consumer pinned between steps are kept)."""
        if self.rows is not self.x:
            L = self.x.shape[1]
            for r, n in enumerate(self.pads):
                self.rows[r, : L - n] = self.x[r, n:]

    def push(self) -> None:
        """Rows -> canvas."""
        if self.rows is not self.x:
            L = self.x.shape[1]
            for r, n in enumerate(self.pads):
                self.x[r, n:] = self.rows[r, : L - n]


def denoise_mask(s: int, e: int, block: int, device) -> torch.Tensor | None:
    """The mask of a denoising pass over block [s, e) with the cache [0, s): see DENOISE_MASK_BLOCK."""
    if DENOISE_MASK_BLOCK % block == 0:
        return None
    q = torch.arange(s, e, device=device) // DENOISE_MASK_BLOCK
    k = torch.arange(e, device=device) // DENOISE_MASK_BLOCK
    return (q[:, None] >= k[None, :])[None, None]  # (1, 1, Lq, Lk)


def stopped(w: torch.Tensor, prompt: torch.Tensor, mask_id: int, eos: torch.Tensor) -> torch.Tensor:
    """(B,) rows whose first end id after their prompt has no mask before it (generate's stop test)."""
    col = torch.arange(w.shape[1], device=w.device)[None]
    gen = col >= prompt[:, None]
    is_end = torch.isin(w, eos) & gen
    first = torch.where(is_end.any(-1), is_end.int().argmax(-1), w.shape[1])
    open_before = ((w == mask_id) & gen & (col < first[:, None])).any(-1)
    return is_end.any(-1) & ~open_before


def choose(logits, masked, p: Plan, generator, mask_id: int, noise, used: int):
    """The reference's `sample_with_top_p` over a sub-block: logits (B, sub, V) -> proposed tokens
    (B, sub), their probabilities where masked (else -inf), and how many noise rows were used.
    Only rows with masks draw, so that a row's generator runs as it does alone."""
    B, sub, V = logits.shape
    active = masked.any(-1)
    flat = logits[active].reshape(-1, V)  # (n * sub, V)
    drawn = noise[used : used + flat.shape[0]] if noise is not None and p.temperature > 0 else None
    if isinstance(generator, RowGenerators):
        generator = RowGenerators(g for g, on in zip(generator, active.tolist()) if on)
    picked, chance = block_choice(flat, p.temperature, p.top_k, p.top_p, generator, [sub] * int(active.sum()), drawn)
    tokens = torch.full(masked.shape, mask_id, dtype=torch.long, device=logits.device)
    tokens[active] = never_mask(picked, flat, mask_id).view(-1, sub)
    probs = torch.zeros(masked.shape, device=logits.device)
    probs[active] = chance.view(-1, sub)
    return tokens, torch.where(masked, probs, -torch.inf), 0 if drawn is None else flat.shape[0]


@torch.no_grad()
def denoise_fast_dllm_v2(
    net: nn.Module,
    canvas: torch.Tensor,
    gen_start: int,
    p: Plan,
    mask_id: int,
    key_mask: torch.Tensor | None = None,
    eos_ids: list[int] | tuple[int, ...] = (),
    generator=None,
    gen_length: int | None = None,
    noise: torch.Tensor | None = None,
) -> Iterator[DenoiseStep]:
    """Decode `canvas` (B, L) in place from `gen_start` on, yielding after every model pass.

    Whole blocks are decoded, from the one holding the first new position, until the first
    `gen_length` new positions of every row are filled (None: to the canvas's end); the pass storing
    the last block commits one more token where the canvas has room. generate(max_new_tokens=N)
    decodes N // block_length blocks instead: `reference_gen_length` gives the gen_length that
    reproduces it. `noise` (N, V) replaces the Exp(1) draws of sampling, B x sub-block rows per
    pass, in pass order.
    """
    x = canvas
    B, L = x.shape
    device = x.device
    bs = p.block_length
    if not bs:
        raise ValueError("block_length: Fast-dLLM v2 decodes in blocks; set it (the checkpoint's bd_size)")
    sub = sub_block_length(p)
    if bs % sub:
        raise ValueError(f"sub_block_length: must divide block_length ({bs}), got {sub}")
    threshold = HUB_THRESHOLD if p.threshold is None else p.threshold
    # The reference has no step count: each pass commits what passes the threshold, at least one.
    # Under the surfaces' recipe the steps per block set a share each pass commits at least.
    share = -(-bs // p.steps_per_block) if p.recipe == "unmask" and p.steps_per_block else 1
    frame = RowFrame(x, key_mask, mask_id)
    w = frame.rows  # (B, L) in row coordinates
    prompt = torch.tensor([gen_start - n for n in frame.pads], device=device)
    if int(prompt.min()) < 1:
        raise ValueError("prompt: Fast-dLLM v2 predicts each token from the one before it; give at least one")
    first = int(prompt.min()) // bs
    need = L if gen_length is None else min(L, int(prompt.max()) + gen_length)  # row coordinates to fill
    last = min(-(-(need - 1) // bs), L // bs)  # blocks [first, last), then the token at last * bs
    end = min(L, last * bs + 1)
    eos = torch.tensor(list(eos_ids), device=device, dtype=x.dtype)
    stopping = p.stop_at_eos and len(eos_ids) > 0
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    cache = BlockCache(net.n_layers)
    rows = torch.arange(B, device=device)
    nfe, used, t0 = 0, 0, time.perf_counter()

    asked = L if gen_length is None else min(L, gen_start + gen_length)  # the new tokens asked for

    def step(block: int, committed: torch.Tensor, done: bool) -> DenoiseStep:
        """committed: (B, L) bool in row coordinates."""
        nonlocal finished
        if stopping:
            finished |= stopped(w, prompt, mask_id, eos)
        over = finished | done
        frame.push()
        picked = [
            [c + n for c in row.nonzero().flatten().tolist() if c + n < L] for row, n in zip(committed, frame.pads)
        ]
        masked = x[:, gen_start:] == mask_id
        col = torch.arange(gen_start, L, device=device)[None]
        todo = masked & (col < (torch.tensor(frame.pads, device=device) + end)[:, None]) & ~over[:, None]
        first_mask = torch.where(masked.any(-1), masked.int().argmax(-1) + gen_start, L)
        return DenoiseStep(
            index=nfe - 1,
            block=block,
            planned_steps=p.total_steps,
            canvas=x,
            committed=picked,
            tokens=[x[r, pos].tolist() for r, pos in enumerate(picked)],
            # A row whose new tokens are all in is finished: the passes left (storing the last
            # block) would change nothing it returns, and a consumer may stop here.
            finished=(over | ~(x[:, gen_start:asked] == mask_id).any(-1)).tolist(),
            nfe=nfe,
            elapsed=time.perf_counter() - t0,
            remaining=todo.sum(-1).tolist(),
            revoked=[[] for _ in range(B)],
            settled=torch.where(over, L, first_mask).tolist(),
            edited=[[] for _ in range(B)],
        )

    def next_token(pos: int, logits: torch.Tensor) -> torch.Tensor:
        """The store/prefill pass's last logits (B, V) give position `pos` greedily, where it is open."""
        committed = torch.zeros_like(w, dtype=torch.bool)
        if pos < L:
            take = (w[:, pos] == mask_id) & ~finished
            w[take, pos] = never_mask(logits.argmax(-1), logits, mask_id)[take]
            committed[:, pos] = take
        return committed

    if first >= 1:  # prefill the prompt's full blocks, block-causal as in training
        frame.pull()
        n = first * bs
        causal = block_causal_mask(n, bs, device)[None, None]
        logits = net(w[:, :n], None, None, cache, 0, (n - 1, n), attn_mask=causal, store=True)
        nfe += 1
        yield step(0, next_token(n, logits[:, -1]), first >= last)

    for k in range(first, last):
        s, e = k * bs, (k + 1) * bs
        if bool(finished.all()):
            break
        holder = SubBlockCache(cache, net.n_layers) if p.cache == "dual" else None
        for a in range(s, e, sub):
            b = a + sub
            while True:
                frame.pull()
                live = ~finished
                masked = (w[:, a:b] == mask_id) & live[:, None]  # (B, sub)
                if not bool(masked.any()):
                    break
                if holder is not None:
                    holder.full = holder.empty or bool((w[live, a] == mask_id).any())
                if holder is not None and not holder.full:
                    logits = shift_right(net(w[:, a:b], None, None, holder, a, store=False))
                else:
                    lead = 1 if a > s else 0  # the position before the sub-block predicts its first token
                    mask = denoise_mask(s, e, bs, device)
                    logits = net(
                        w[:, s:e], None, None, holder or cache, s, (a - s - lead, b - s), attn_mask=mask, store=False
                    )
                    logits = logits[:, :-1] if lead else shift_right(logits)
                tokens, conf, drawn = choose(logits, masked, p, generator, mask_id, noise, used)
                used += drawn
                commit = conf > threshold
                commit[rows, conf.argmax(-1)] = True  # the surest position always
                if share > 1:  # the steps dial (recipe "unmask"): each pass commits its share, surest first
                    top = conf.masked_fill(~masked, -torch.inf).topk(min(share, b - a), -1).indices
                    commit.scatter_(-1, top, True)
                commit &= masked
                w[:, a:b][commit] = tokens[commit]
                nfe += 1
                committed = torch.zeros_like(w, dtype=torch.bool)
                committed[:, a:b] = commit
                done = k == last - 1 and e >= L and not bool(((w[:, s:e] == mask_id) & live[:, None]).any())
                yield step(k - first, committed, done)
        if bool(finished.all()) or e >= L:
            break
        frame.pull()
        logits = net(w[:, s:e], None, None, cache, s, (bs - 1, bs), store=True)
        nfe += 1
        yield step(k - first, next_token(e, logits[:, -1]), k == last - 1)
