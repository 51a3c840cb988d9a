"""LLaDA with 2-D position embeddings, for puzzles laid out on a square grid (Sudoku).

Notable features:
- `model_type` "grid": a LLaDA transformer (same blocks, same parameter names) whose token
  embedding is summed with learned row, column and box embeddings. RoPE alone is relative and
  bidirectional attention has no causal edge, so a plain LLaDA cannot tell which row a cell is
  in; these three tables give every cell its Sudoku neighbourhoods directly.
- The canvas is the board itself, row-major, with no prompt: givens are fixed tokens, blanks are
  masks, and solving is infilling through the ordinary sampler.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .llada import LLaDAArgs, LLaDAModel


@dataclass
class GridArgs(LLaDAArgs):
    grid_size: int = 9  # cells per row and per column
    box_size: int = 3  # cells per box side


class GridModel(LLaDAModel):
    def __init__(self, args: GridArgs):
        super().__init__(args)
        t = self.model.transformer
        t.row_emb = nn.Embedding(args.grid_size, args.d_model)
        t.col_emb = nn.Embedding(args.grid_size, args.d_model)
        t.box_emb = nn.Embedding(args.grid_size, args.d_model)

    def embed(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        n, box = self.args.grid_size, self.args.box_size
        if int(positions.max()) >= n * n:
            raise ValueError(f"a grid model's canvas is the {n}x{n} board: at most {n * n} cells")
        row, col = positions // n, positions % n
        boxes = (row // box) * (n // box) + col // box
        t = self.model.transformer
        return t.wte(input_ids) + t.row_emb(row) + t.col_emb(col) + t.box_emb(boxes)
