"""The masked-diffusion training objective (MDLM, Sahoo et al. 2024; LLaDA, arXiv:2502.09992 Eq. 3).

For each sequence draw t ~ U(0, 1), mask every token independently with probability
p = (1 - eps) t + eps, and take the cross-entropy of the model's predictions at the masked
positions, weighted by 1 / p and averaged over all positions. This is an upper bound on the
negative log-likelihood; its 1 / p weight is what makes the model's per-step predictions a
consistent denoiser for every noise level the sampler will visit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

MASK_EPS = 1e-3  # LLaDA's eps: no sequence is ever left entirely unmasked


@dataclass
class LossParts:
    loss: torch.Tensor  # the weighted objective (what is minimised)
    masked_ce: torch.Tensor  # plain mean cross-entropy at masked positions (easier to read)
    masked: int  # number of masked positions


def mask_tokens(
    tokens: torch.Tensor,
    mask_id: int,
    generator: torch.Generator | None,
    eps: float = MASK_EPS,
    maskable: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward process: (B, L) tokens -> (noisy tokens, masked bool (B, L), p_mask (B, 1))."""
    B, L = tokens.shape
    # Low-discrepancy t: one uniform offset, rows spread evenly over [0, 1) (MDLM, Sahoo et al.
    # 2024, Sec. 3.5): the same expectation with less variance between batches.
    offset = torch.rand(1, generator=generator, device=tokens.device)
    t = ((offset + torch.arange(B, device=tokens.device) / B) % 1.0)[:, None]
    p_mask = (1 - eps) * t + eps
    masked = torch.rand(B, L, generator=generator, device=tokens.device) < p_mask
    if maskable is not None:
        masked &= maskable
    return tokens.masked_fill(masked, mask_id), masked, p_mask


def diffusion_loss(
    net: nn.Module,
    tokens: torch.Tensor,
    mask_id: int,
    generator: torch.Generator | None = None,
    maskable: torch.Tensor | None = None,
) -> LossParts:
    """The objective on one batch of (B, L) token ids."""
    noisy, masked, p_mask = mask_tokens(tokens, mask_id, generator, maskable=maskable)
    logits = net(noisy)  # (B, L, V)
    ce = F.cross_entropy(logits[masked].float(), tokens[masked], reduction="none")
    weights = p_mask.expand_as(masked)[masked]
    loss = (ce / weights).sum() / tokens.numel()
    n = int(masked.sum())
    return LossParts(loss, ce.mean() if n else ce.sum(), n)
