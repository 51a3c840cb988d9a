"""Random draws of the sampler, row by row when each row has its own generator.

A server batches requests whose options agree; a seeded request must then draw exactly the noise
it would draw alone. With `RowGenerators` (one generator per canvas row), every draw over the
masked positions of a batch is made row by row, each from its row's generator, in the order the
positions have when that row runs alone; a plain generator (or None) keeps one stream for the
batch, as the reference samplers do.
"""

from __future__ import annotations

import torch


class RowGenerators(list):
    """torch.Generator (or None: the global stream) per canvas row."""


def rows_of(generator, rows: list[int]):
    """(generator, rows) pairs to draw from: per row for RowGenerators, else one for all."""
    if isinstance(generator, RowGenerators):
        return list(zip(generator, rows))
    return [(generator, sum(rows))]


def rand_rows(generator, rows: list[int], tail: tuple = (), device=None, dtype=torch.float32) -> torch.Tensor:
    """Uniform [0, 1) noise of shape (sum(rows), *tail), drawn row by row where rows have their own."""
    parts = [torch.rand((n, *tail), generator=g, device=device, dtype=dtype) for g, n in rows_of(generator, rows)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def multinomial_rows(probs: torch.Tensor, generator, rows: list[int]) -> torch.Tensor:
    """One draw per row of probs (N, V), N = sum(rows), drawn row group by row group."""
    out, start = [], 0
    for g, n in rows_of(generator, rows):
        out.append(torch.multinomial(probs[start : start + n], 1, generator=g).squeeze(-1))
        start += n
    return out[0] if len(out) == 1 else torch.cat(out)


def generator_of(generator, row: int):
    """The generator row `row` draws from."""
    return generator[row] if isinstance(generator, RowGenerators) else generator


def exponential_rows(generator, rows: list[int], vocab: int, device=None) -> torch.Tensor:
    """Exp(1) noise (sum(rows), vocab): `argmax(p / q)` is a draw from p, and is exactly what
    torch's CPU `multinomial(p, 1)` computes from the same generator (checked on SDAR's records)."""
    parts = [torch.empty((n, vocab), device=device).exponential_(1, generator=g) for g, n in rows_of(generator, rows)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)
