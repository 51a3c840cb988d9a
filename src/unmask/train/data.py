"""Batch sources for training. Each is a pure function of the step number, so a resumed run sees
exactly the batches an uninterrupted one would have.

Notable features:
- `DocumentBatches` puts one document at the start of every row and fills the rest with the end
  token, as LLaDA's SFT does: the model learns to end a text before the canvas ends, and to fill
  the tail with end tokens, at every canvas length it is shown. Documents longer than the row
  lose sentences from the middle, so beginnings and endings both stay in the data (what infilling
  between a fixed first and last sentence needs).
- `StreamBatches` cuts random windows out of a token stream (user text files).
- `PairBatches` puts a prompt and its answer in every row (the web recipe's request and program);
  only the answer and the end tokens after it are ever masked, as LLaDA's SFT does (arXiv:2502.09992
  Sec. 2.3), so the model learns to write the answer a prompt asks for.
- `HeadBatches` puts a prompt and only the head of its answer in every row, the rest of the row
  left masked and never scored, as the canvas is in the first decoding steps: rows several times
  shorter, for the part of an answer that the prompt decides (the web recipe's value lines).
- `GridBatches` draws Sudoku solutions from a pool and relabels/permutes them on the fly, so no
  two batches repeat.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import torch

Batch = tuple[torch.Tensor, torch.Tensor | None]  # (B, L) tokens, optional (B, L) maskable


def step_rng(seed: int, step: int) -> random.Random:
    return random.Random(seed * 1_000_003 + step)


def fit_document(
    sentences: Sequence[Sequence[int]], budget: int, rng: random.Random, anchors: Collection[int] | None = None
) -> list[int] | None:
    """Concatenate sentences into at most `budget` tokens, dropping middle sentences first.

    anchors: sentences that must stay (a story's introductions and ending, `stories.anchors`): only
    the others are dropped, and None says they do not fit. Without it the first and last stay,
    and a document too long even for those is cut to a prefix.
    """
    if anchors is not None:
        droppable = [i for i in range(1, len(sentences) - 1) if i not in anchors]
        rng.shuffle(droppable)
        total, dropped = sum(len(s) for s in sentences), set()
        for i in droppable:
            if total <= budget:
                break
            dropped.add(i)
            total -= len(sentences[i])
        return [t for i, s in enumerate(sentences) if i not in dropped for t in s] if total <= budget else None
    keep = list(range(len(sentences)))
    total = sum(len(s) for s in sentences)
    while total > budget and len(keep) > 2:
        drop = keep.pop(rng.randrange(1, len(keep) - 1))
        total -= len(sentences[drop])
    if total > budget:  # even the first and last do not fit: keep a prefix that does
        out: list[int] = []
        for s in sentences:
            if len(out) + len(s) > budget:
                break
            out.extend(s)
        return out or list(sentences[0][:budget])
    return [t for i in keep for t in sentences[i]]


REDRAWS = 20  # documents tried for a row before one is cut to fit


@dataclass
class DocumentBatches:
    documents: Sequence[Sequence[Sequence[int]]]  # document -> sentences -> token ids
    end_id: int
    batch_size: int
    lengths: Sequence[int]  # row lengths to draw from, one per batch
    seed: int = 0
    # Per document, the sentences a shortened row keeps (`stories.anchors`); a document whose
    # anchors do not fit the row is drawn again, so a row never names someone it did not introduce.
    anchors: Sequence[Collection[int]] | None = None

    def __call__(self, step: int) -> Batch:
        rng = step_rng(self.seed, step)
        length = rng.choice(self.lengths)
        rows = torch.full((self.batch_size, length), self.end_id, dtype=torch.long)
        for r in range(self.batch_size):
            ids = None
            for _ in range(REDRAWS if self.anchors is not None else 1):
                k = rng.randrange(len(self.documents))
                keep = self.anchors[k] if self.anchors is not None else None
                ids = fit_document(self.documents[k], length - 1, rng, keep)  # at least one end token closes it
                if ids is not None:
                    break
            if ids is None:
                ids = fit_document(self.documents[k], length - 1, rng)
            rows[r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return rows, None


@dataclass
class StreamBatches:
    tokens: torch.Tensor  # (N,) the concatenated corpus, documents separated by the end token
    batch_size: int
    length: int
    seed: int = 0

    def __call__(self, step: int) -> Batch:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        span = max(1, self.tokens.numel() - self.length)
        starts = torch.randint(0, span, (self.batch_size,), generator=g)
        return torch.stack([self.tokens[s : s + self.length] for s in starts.tolist()]), None


@dataclass
class PairBatches:
    pair: Callable[[int], tuple[Sequence[int], Sequence[int]]]  # index -> (prompt ids, answer ids)
    end_id: int
    batch_size: int
    length: int  # the longest row: prompt, answer, then end tokens to the end
    seed: int = 0

    def __call__(self, step: int) -> Batch:
        pairs = [self.pair((self.seed * 1_000_003 + step) * self.batch_size + r) for r in range(self.batch_size)]
        longest = max(len(p) + len(a) for p, a in pairs)
        # Rows as long as the batch needs (in steps of 32, so a compiled model sees few shapes):
        # the end tokens past that would only repeat what the last ones teach.
        length = min(self.length, -(-(longest + 1) // 32) * 32)
        rows = torch.full((self.batch_size, length), self.end_id, dtype=torch.long)
        maskable = torch.zeros(self.batch_size, length, dtype=torch.bool)
        for r, (prompt, answer) in enumerate(pairs):
            ids = [*prompt, *answer][: length - 1]  # at least one end token closes the answer
            rows[r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            maskable[r, len(prompt) :] = True
        return rows, maskable


@dataclass
class HeadBatches:
    pair: Callable[[int], tuple[Sequence[int], Sequence[int]]]  # index -> (prompt ids, answer head ids)
    mask_id: int
    batch_size: int
    length: int  # every row: prompt, head, then mask tokens that are input only
    seed: int = 0

    def __call__(self, step: int) -> Batch:
        rows = torch.full((self.batch_size, self.length), self.mask_id, dtype=torch.long)
        maskable = torch.zeros(self.batch_size, self.length, dtype=torch.bool)
        for r in range(self.batch_size):
            prompt, head = self.pair((self.seed * 1_000_003 + step) * self.batch_size + r)
            ids = [*prompt, *head][: self.length]
            rows[r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            maskable[r, len(prompt) : len(ids)] = True
        return rows, maskable


@dataclass
class Alternating:
    """Step n draws from sources[n % len(sources)], at that source's own step n."""

    sources: Sequence[Callable[[int], Batch]]

    def __call__(self, step: int) -> Batch:
        return self.sources[step % len(self.sources)](step)


@dataclass
class GridBatches:
    solutions: Sequence[str]  # complete grids, 81 characters '1'-'9'
    augment: Callable[[str, random.Random], str]
    digit_ids: dict[str, int]
    batch_size: int
    seed: int = 0

    def __call__(self, step: int) -> Batch:
        rng = step_rng(self.seed, step)
        rows = []
        for _ in range(self.batch_size):
            grid = self.augment(self.solutions[rng.randrange(len(self.solutions))], rng)
            rows.append([self.digit_ids[c] for c in grid])
        return torch.tensor(rows, dtype=torch.long), None
