"""Seeded Sudoku solutions, puzzles, parsing and checking for training and evaluation.

A grid is a string of 81 characters in row-major order: '1'-'9' for digits, '0' for a blank.
Everything random takes a `random.Random`, so a seed fixes every grid and puzzle.

Notable features:
- One bitmask backtracking search serves both generation and solving: a row, column and box
  mask per unit, the most-constrained empty cell first, and an optional random candidate order
  that turns the solver into a generator of random complete grids.
- `augment` applies only the symmetries that keep a grid valid (digit relabelling, row and
  column shuffles inside bands and stacks, band and stack shuffles, transpose), so one
  solution yields many distinct training examples.
- `parse_puzzle` accepts the usual hand-written layouts ('.' or '0' blanks, '|', '-', '+'
  separators) and its errors name the problem: the cell count, the bad character and its
  position, or the row, column or box where two givens clash.
"""

from __future__ import annotations

import random

SIZE = 9
BOX = 3
CELLS = SIZE * SIZE
DIGITS = "123456789"
BLANK = "0"
# Accepted on input as blanks; '.' is the other common convention in puzzle files.
BLANK_INPUTS = frozenset("0.")
# Drawing characters people put between boxes; they carry no cell.
SEPARATORS = frozenset("|-+")
# The fewest givens a Sudoku with a unique solution can have (McGuire et al., 2012); we do not
# require uniqueness, but fewer givens than this stop being a meaningful puzzle.
MIN_GIVENS = 17
DRAWN_BLANK = "·"

_FULL_MASK = (1 << SIZE) - 1
_ROW = tuple(i // SIZE for i in range(CELLS))
_COL = tuple(i % SIZE for i in range(CELLS))
_BOX = tuple((i // SIZE) // BOX * BOX + (i % SIZE) // BOX for i in range(CELLS))


def _bit(digit: int) -> int:
    return 1 << (digit - 1)


def _digits_of(mask: int) -> list[int]:
    return [d for d in range(1, SIZE + 1) if mask & _bit(d)]


class _Board:
    """Cells plus one candidate mask per row, column and box, kept in step by place/clear."""

    def __init__(self, grid: str) -> None:
        self.cells = [int(ch) for ch in grid]
        self.rows = [0] * SIZE
        self.cols = [0] * SIZE
        self.boxes = [0] * SIZE
        for i, d in enumerate(self.cells):
            if d:
                self.place(i, d)

    def place(self, i: int, d: int) -> None:
        b = _bit(d)
        self.cells[i] = d
        self.rows[_ROW[i]] |= b
        self.cols[_COL[i]] |= b
        self.boxes[_BOX[i]] |= b

    def clear(self, i: int, d: int) -> None:
        b = ~_bit(d)
        self.cells[i] = 0
        self.rows[_ROW[i]] &= b
        self.cols[_COL[i]] &= b
        self.boxes[_BOX[i]] &= b

    def candidates(self, i: int) -> int:
        return _FULL_MASK & ~(self.rows[_ROW[i]] | self.cols[_COL[i]] | self.boxes[_BOX[i]])

    def most_constrained_blank(self) -> tuple[int, int]:
        """Return (cell, candidate mask) of the blank with fewest candidates, or (-1, 0) if full."""
        best, best_mask, best_count = -1, 0, SIZE + 1
        for i, d in enumerate(self.cells):
            if d:
                continue
            mask = self.candidates(i)
            count = mask.bit_count()
            if count < best_count:
                best, best_mask, best_count = i, mask, count
                if count <= 1:  # a forced or dead cell: nothing can beat it
                    break
        return best, best_mask

    def search(self, rng: random.Random | None) -> bool:
        """Fill every blank by backtracking; True on success (the board then holds the grid)."""
        i, mask = self.most_constrained_blank()
        if i < 0:
            return True
        digits = _digits_of(mask)
        if rng is not None:
            rng.shuffle(digits)
        for d in digits:
            self.place(i, d)
            if self.search(rng):
                return True
            self.clear(i, d)
        return False

    def grid(self) -> str:
        return "".join(str(d) for d in self.cells)


def random_solution(rng: random.Random) -> str:
    """Return a random complete valid grid, built by backtracking with shuffled candidates."""
    board = _Board(BLANK * CELLS)
    board.search(rng)
    return board.grid()


def _shuffled_lines(rng: random.Random) -> list[int]:
    """A line order that keeps every band (or stack) together: shuffle bands, then lines in each."""
    bands = list(range(BOX))
    rng.shuffle(bands)
    order = []
    for band in bands:
        inside = list(range(BOX))
        rng.shuffle(inside)
        order.extend(band * BOX + k for k in inside)
    return order


def augment(solution: str, rng: random.Random) -> str:
    """Return a different valid grid obtained from `solution` by validity-preserving symmetries."""
    _check_grid_shape(solution, "solution")
    while True:
        labels = list(DIGITS)
        rng.shuffle(labels)
        relabel = {d: labels[k] for k, d in enumerate(DIGITS)}
        rows, cols = _shuffled_lines(rng), _shuffled_lines(rng)
        transpose = rng.random() < 0.5
        out = []
        for r in range(SIZE):
            for c in range(SIZE):
                src_r, src_c = (cols[c], rows[r]) if transpose else (rows[r], cols[c])
                ch = solution[src_r * SIZE + src_c]
                out.append(relabel.get(ch, ch))
        augmented = "".join(out)
        # The identity draw has odds of about 1 in 10^13, but the promise is "a different grid".
        if augmented != solution:
            return augmented


def make_puzzle(solution: str, givens: int, rng: random.Random) -> str:
    """Keep exactly `givens` randomly chosen cells of `solution` and blank the rest with '0'."""
    _check_grid_shape(solution, "solution")
    if not MIN_GIVENS <= givens <= CELLS:
        raise ValueError(f"givens must be in {MIN_GIVENS}..{CELLS}, got {givens}")
    kept = set(rng.sample(range(CELLS), givens))
    return "".join(ch if i in kept else BLANK for i, ch in enumerate(solution))


def _check_grid_shape(grid: str, field: str) -> None:
    if len(grid) != CELLS:
        raise ValueError(f"{field} must have {CELLS} cells, got {len(grid)}")


def _units() -> list[tuple[str, list[int]]]:
    """Every row, column and box as (human name, cell indices), numbered from 1."""
    units = []
    for k in range(SIZE):
        units.append((f"row {k + 1}", [i for i in range(CELLS) if _ROW[i] == k]))
        units.append((f"column {k + 1}", [i for i in range(CELLS) if _COL[i] == k]))
        units.append((f"box {k + 1}", [i for i in range(CELLS) if _BOX[i] == k]))
    return units


_UNITS = _units()


def unit_cells() -> list[list[int]]:
    """The 27 units (9 rows, 9 columns, 9 boxes) as lists of cell indices, row-major: no digit
    twice in one, which is the whole rule of the game."""
    return [list(cells) for _, cells in _UNITS]


def _first_conflict(grid: str) -> str | None:
    """Describe the first digit that appears twice in a row, column or box, or None."""
    for name, cells in _UNITS:
        seen = set()
        for i in cells:
            ch = grid[i]
            if ch == BLANK:
                continue
            if ch in seen:
                return f"digit {ch} appears twice in {name}"
            seen.add(ch)
    return None


def parse_puzzle(text: str) -> str:
    """Parse a puzzle written as 81 cells ('0' or '.' for blanks, separators and spaces ignored).

    Returns:
        81 characters, '0' for blanks.
    Raises:
        ValueError naming the cell count, the invalid character, or the clashing givens.
    """
    cells = []
    for position, ch in enumerate(text):
        if ch.isspace() or ch in SEPARATORS:
            continue
        if ch in BLANK_INPUTS:
            cells.append(BLANK)
        elif ch in DIGITS:
            cells.append(ch)
        else:
            raise ValueError(
                f"invalid character {ch!r} at position {position}: cells must be digits 1-9, or '0' or '.' for a blank"
            )
    if len(cells) != CELLS:
        raise ValueError(f"a puzzle needs {CELLS} cells, found {len(cells)}")
    grid = "".join(cells)
    conflict = _first_conflict(grid)
    if conflict:
        raise ValueError(f"conflicting givens: {conflict}")
    return grid


def is_solution(puzzle: str, solution: str) -> bool:
    """True iff `solution` is a complete valid grid that keeps every given of `puzzle`."""
    if len(puzzle) != CELLS or len(solution) != CELLS:
        return False
    if any(ch not in DIGITS for ch in solution):
        return False
    if any(sorted(solution[i] for i in cells) != list(DIGITS) for _, cells in _UNITS):
        return False
    return all(p in BLANK_INPUTS or p == s for p, s in zip(puzzle, solution))


def solve(puzzle: str) -> str | None:
    """Return a solution of `puzzle` (the first one backtracking finds), or None if it has none."""
    _check_grid_shape(puzzle, "puzzle")
    grid = "".join(BLANK if ch in BLANK_INPUTS else ch for ch in puzzle)
    if any(ch not in DIGITS and ch != BLANK for ch in grid) or _first_conflict(grid):
        return None
    board = _Board(grid)
    return board.grid() if board.search(rng=None) else None


def generate_puzzles(n: int, givens: int, seed: int) -> list[tuple[str, str]]:
    """Return `n` (puzzle, solution) pairs with `givens` givens each, fixed by `seed`."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        solution = random_solution(rng)
        pairs.append((make_puzzle(solution, givens, rng), solution))
    return pairs


def format_grid(grid: str) -> str:
    """Draw a grid as 9 text lines with box separators and '·' for blanks."""
    _check_grid_shape(grid, "grid")
    rule = "+".join(["-" * (2 * BOX + 1)] * BOX)
    lines = []
    for r in range(SIZE):
        if r and r % BOX == 0:
            lines.append(rule)
        boxes = []
        for b in range(BOX):
            row = grid[r * SIZE + b * BOX : r * SIZE + (b + 1) * BOX]
            boxes.append(" ".join(DRAWN_BLANK if ch in BLANK_INPUTS else ch for ch in row))
        lines.append(" " + " | ".join(boxes))
    return "\n".join(lines)
