"""Token choice: from logits at masked positions to proposed tokens and their probabilities.

Notable features:
- Two styles, as the references differ. Dream's `sample_tokens` scales by temperature, truncates
  with top-p *then* top-k (filling with `finfo.min`), and samples from the softmax. LLaDA's
  `generate` takes the argmax of Gumbel-perturbed logits computed in float64 ("low-precision
  Gumbel max hurts quality", LLaDA generate.py) and reports the clean softmax probability.
- Dream predicts the next token, so its logits are shifted right by one before use.
- Classifier-free guidance as in LLaDA (arXiv:2502.09992, Appendix B.3): the prompt is masked in
  an unconditional copy and `uncond + (s + 1)(cond - uncond)` is used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .noise import exponential_rows, multinomial_rows, rand_rows

# Below this, dividing logits by the temperature overflows float32 and the softmax turns to NaN;
# such a temperature means greedy anyway.
GREEDY_BELOW = 1e-4


def shift_right(logits: torch.Tensor) -> torch.Tensor:
    """Dream's shift: row i takes row i-1's logits; the first row keeps its own."""
    return torch.cat([logits[:, :1], logits[:, :-1]], dim=1)


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of tokens whose probability mass reaches top_p (always the top one)."""
    sorted_logits, order = torch.sort(logits, descending=True)
    cumulative = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
    drop_sorted = cumulative > top_p
    drop_sorted[..., 1:] = drop_sorted[..., :-1].clone()
    drop_sorted[..., 0] = False
    drop = torch.zeros_like(drop_sorted).scatter_(-1, order, drop_sorted)
    return logits.masked_fill(drop, torch.finfo(logits.dtype).min)


def top_k_filter(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep the top_k largest logits (ties with the k-th are kept)."""
    top_k = min(top_k, logits.shape[-1])
    kth = torch.topk(logits, top_k)[0][..., -1, None]
    return logits.masked_fill(logits < kth, torch.finfo(logits.dtype).min)


def truncate(logits: torch.Tensor, top_p: float | None, top_k: int | None) -> torch.Tensor:
    """Dream's order: top-p first, then top-k."""
    if top_p is not None and top_p < 1:
        logits = top_p_filter(logits, top_p)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    return logits


def dream_choice(
    logits: torch.Tensor,
    temperature: float,
    top_p: float | None,
    top_k: int | None,
    generator: torch.Generator | None,
    rows: list[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dream `sample_tokens`: (N, V) logits -> (tokens (N,), probs (N, V)) after temperature and truncation.

    rows: how many of the N positions each canvas row has (for per-row generators)."""
    sampled = temperature >= GREEDY_BELOW
    if sampled:
        logits = logits / temperature
    probs = torch.softmax(truncate(logits, top_p, top_k), dim=-1)
    if sampled:
        tokens = multinomial_rows(probs, generator, rows or [probs.shape[0]])
    else:
        tokens = probs.argmax(-1)
    return tokens, probs


def gumbel_argmax(
    logits: torch.Tensor, temperature: float, generator: torch.Generator | None, rows: list[int] | None = None
) -> torch.Tensor:
    """LLaDA's float64 Gumbel-max: argmax(exp(l) / (-log u)^T), which samples softmax(l / T)."""
    if temperature < GREEDY_BELOW:
        return logits.argmax(-1)
    logits64 = logits.to(torch.float64)
    n, vocab = logits64.shape
    noise = rand_rows(generator, rows or [n], (vocab,), logits.device, torch.float64)
    return (logits64.exp() / (-torch.log(noise)) ** temperature).argmax(-1)


def llada_choice(
    logits: torch.Tensor,
    temperature: float,
    top_p: float | None,
    top_k: int | None,
    prob_dtype: torch.dtype,
    generator: torch.Generator | None,
    rows: list[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """LLaDA `generate`: (N, V) logits -> (Gumbel-max tokens, softmax probs in prob_dtype)."""
    logits = truncate(logits, top_p, top_k)
    tokens = gumbel_argmax(logits, temperature, generator, rows)
    return tokens, F.softmax(logits.to(prob_dtype), dim=-1)


def block_choice(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator,
    rows: list[int] | None = None,
    noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SDAR's `sample_with_temperature_topk_topp` and LLaDA2's pipeline sampler (they agree):
    (N, V) logits -> (tokens (N,), probability of each token (N,)).

    Temperature, then top-k (ties with the k-th kept), then top-p, softmax in float32, one draw
    per position. Temperature 0 is greedy on the raw logits (LLaDA2); SDAR's only deterministic
    setting, top_k=1, gives the same tokens with probability 1. `noise` (N, V) replaces the
    Exp(1) draws, so a test can replay a reference's recorded randomness."""
    logits = logits.float()
    if temperature < GREEDY_BELOW:
        probs = torch.softmax(logits, dim=-1)
        tokens = logits.argmax(-1)
        return tokens, probs.gather(-1, tokens[:, None])[:, 0]
    if temperature != 1.0:
        logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None and top_p < 1:
        logits = top_p_filter(logits, top_p)
    probs = torch.softmax(logits, dim=-1)
    if noise is None:
        noise = exponential_rows(generator, rows or [probs.shape[0]], probs.shape[-1], probs.device)
    tokens = (probs / noise).argmax(-1)
    return tokens, probs.gather(-1, tokens[:, None])[:, 0]


def guide(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance, LLaDA's form."""
    return uncond + (scale + 1) * (cond - uncond)
