"""A second Sudoku generator, independent of tasks/sudoku.py, and a few published puzzles.

The solver model is trained on tasks/sudoku.py's grids; puzzles from this module test it on
grids and blanks it has never met, made by other means:

Notable features:
- Sudoku as exact cover (Knuth's Algorithm X, arXiv:cs/0011047): 729 candidates (cell, digit),
  each covering four of 324 constraints (the cell is filled; its row, its column and its box hold
  the digit). The search covers the constraint with the fewest candidates left, and it counts
  solutions, so one routine checks uniqueness, solves and completes grids.
- A solution starts from the three diagonal boxes, which share no row, column or box and so are
  three independent random permutations; the cover search completes the rest, trying
  candidates in a random order (tasks/sudoku.py instead backtracks over an empty board).
- Blanks are dug in pairs symmetric under a half turn (the centre alone), then cell by cell, in
  a random order, each removal kept only if no other solution appears (one search per blanked
  cell, with its digit banned, on row, column and box digit masks): every puzzle has exactly
  one solution, as published puzzles do (tasks/sudoku.py keeps a uniform random subset of
  cells, and its puzzles often have several).
- `CLASSIC`: published puzzles typed in by hand, each with a unique solution (tests check it).
"""

from __future__ import annotations

import random

SIZE, BOX, CELLS = 9, 3, 81
# Random digging reaches 21 givens about once in 200 digs and 20 almost never: below this,
# `generate` would search for hours.
MIN_UNIQUE_GIVENS = 21

# Published puzzles (81 characters, '0' for blanks), typed from their sources.
CLASSIC = {
    # Wikipedia's "Sudoku" article, the example puzzle (30 givens).
    "wikipedia": "530070000600195000098000060800060003400803001700020006060000280000419005000080079",
    # Project Euler problem 96, grids 01 and 02.
    "euler-01": "003020600900305001001806400008102900700000008006708200002609500800203009005010300",
    "euler-02": "200080300060070084030500209000105408000000000402706000301007040720040060004010003",
    # Peter Norvig, "Solving Every Sudoku Puzzle": the first of his 95 hard puzzles (17 givens).
    "norvig-hard": "400000805030000000000700000020000060000080400000010000000603070500200000104000000",
    # Arto Inkala's "AI Escargot" (2006) and his "world's hardest sudoku" (2012).
    "ai-escargot": "100007090030020008009600500005300900010080002600004000300000010040000007007000300",
    "inkala-2012": "800000000003600000070090200050007000000045700000100030001000068008500010090000400",
    # "Easter Monster" and "Golden Nugget", from the Sudoku Players' Forum hardest lists (2007).
    "easter-monster": "100000002090400050006000700050903000000070000000850040700000600030009080002000001",
    "golden-nugget": "000000039000001005003050800008090006070002000100400000009080050020000600400700000",
}


def _candidate_rows(cell: int, digit: int) -> tuple[int, int, int, int]:
    """The four constraints candidate (cell, digit) covers, numbered 0..323."""
    r, c = divmod(cell, SIZE)
    b = (r // BOX) * BOX + c // BOX
    d = digit - 1
    return (cell, CELLS + r * SIZE + d, 2 * CELLS + c * SIZE + d, 3 * CELLS + b * SIZE + d)


_COVERS = {(cell, digit): _candidate_rows(cell, digit) for cell in range(CELLS) for digit in range(1, SIZE + 1)}


class _Cover:
    """Algorithm X state: for every open constraint, the candidates that would satisfy it."""

    def __init__(self, grid: str) -> None:
        self.open: dict[int, set[tuple[int, int]]] = {k: set() for k in range(4 * CELLS)}
        for candidate, constraints in _COVERS.items():
            for k in constraints:
                self.open[k].add(candidate)
        self.chosen: list[tuple[int, int]] = []
        for cell, ch in enumerate(grid):
            if ch != "0":
                candidate = (cell, int(ch))
                if not all(candidate in self.open.get(k, ()) for k in _COVERS[candidate]):
                    raise ValueError(f"grid: the given {ch} at cell {cell} clashes with another given")
                self.take(candidate)

    def take(self, candidate: tuple[int, int]) -> list[tuple[int, set]]:
        """Choose `candidate`: close its constraints and drop every candidate that shares one.
        Returns what was removed, so that `give_back` can undo it exactly."""
        removed = []
        for k in _COVERS[candidate]:
            for other in self.open[k]:
                for j in _COVERS[other]:
                    if j != k and j in self.open:
                        self.open[j].discard(other)
            removed.append((k, self.open.pop(k)))
        self.chosen.append(candidate)
        return removed

    def give_back(self, removed: list[tuple[int, set]]) -> None:
        self.chosen.pop()
        for k, members in reversed(removed):
            self.open[k] = members
            for other in members:
                for j in _COVERS[other]:
                    if j != k and j in self.open:
                        self.open[j].add(other)

    def search(self, limit: int, rng: random.Random | None, found: list[str]) -> None:
        """Append up to `limit` solutions to `found` (candidates in random order when rng is given)."""
        if not self.open:
            found.append(self.grid())
            return
        k = min(self.open, key=lambda j: len(self.open[j]))
        options = sorted(self.open[k])
        if rng is not None:
            rng.shuffle(options)
        for candidate in options:
            removed = self.take(candidate)
            self.search(limit, rng, found)
            self.give_back(removed)
            if len(found) >= limit:
                return

    def grid(self) -> str:
        cells = ["0"] * CELLS
        for cell, digit in self.chosen:
            cells[cell] = str(digit)
        return "".join(cells)


def solutions(grid: str, limit: int = 2, rng: random.Random | None = None) -> list[str]:
    """Up to `limit` solutions of `grid` ('0' for blanks); [] when it has none."""
    if len(grid) != CELLS or any(ch not in "0123456789" for ch in grid):
        raise ValueError(f"grid: must be {CELLS} characters '0'-'9', got {grid!r}")
    try:
        cover = _Cover(grid)
    except ValueError:
        return []
    found: list[str] = []
    cover.search(limit, rng, found)
    return found


def random_solution(rng: random.Random) -> str:
    """A complete grid: random diagonal boxes, completed by the cover search in random order."""
    cells = ["0"] * CELLS
    for b in range(BOX):
        digits = list(range(1, SIZE + 1))
        rng.shuffle(digits)
        for k, d in enumerate(digits):
            cells[(b * BOX + k // BOX) * SIZE + b * BOX + k % BOX] = str(d)
    # Three diagonal boxes always complete (a Latin-square argument); the search finds one.
    return solutions("".join(cells), limit=1, rng=rng)[0]


def _mirror_groups() -> list[tuple[int, ...]]:
    """Cells in half-turn pairs (cell, 80 - cell); the centre is its own group."""
    return [(i, CELLS - 1 - i) if i != CELLS - 1 - i else (i,) for i in range(CELLS // 2 + 1)]


_BITS = [bin(m).count("1") for m in range(1 << (SIZE + 1))]  # candidates in a digit mask
_UNITS = [(i // SIZE, SIZE + i % SIZE, 2 * SIZE + (i // 27) * BOX + (i % SIZE) // BOX) for i in range(CELLS)]


def _other_solution(cells: list[str], solution: str, group: tuple[int, ...]) -> bool:
    """Whether `cells` has a solution besides `solution`, given that it had only that one before
    `group` was blanked: another must then put a different digit in a cell of `group`, so one
    search per cell, with that digit banned, decides it (counting to two searches far more).
    Digit masks per row, column and box, fewest candidates first: this runs for every blank dug."""
    used = [0] * (3 * SIZE)
    empty = []
    for i, ch in enumerate(cells):
        if ch == "0":
            empty.append(i)
            continue
        for u in _UNITS[i]:
            used[u] |= 1 << int(ch)

    def search(empty: list[int], banned_cell: int, banned: int) -> bool:
        if not empty:
            return True
        best, fewest, best_mask = 0, SIZE + 1, 0
        for k, i in enumerate(empty):
            a, b, c = _UNITS[i]
            mask = ~(used[a] | used[b] | used[c]) & 0x3FE
            if i == banned_cell:
                mask &= ~banned
            if _BITS[mask] < fewest:
                best, fewest, best_mask = k, _BITS[mask], mask
                if fewest <= 1:
                    break
        a, b, c = _UNITS[empty[best]]
        rest = empty[:best] + empty[best + 1 :]
        while best_mask:
            bit = best_mask & -best_mask
            best_mask ^= bit
            used[a] |= bit
            used[b] |= bit
            used[c] |= bit
            found = search(rest, banned_cell, banned)
            used[a] ^= bit
            used[b] ^= bit
            used[c] ^= bit
            if found:
                return True
        return False

    return any(search(empty, i, 1 << int(solution[i])) for i in group)


def dig(solution: str, givens: int, rng: random.Random) -> str | None:
    """Blank cells of `solution` while its solution stays unique, stopping at `givens` givens:
    half-turn pairs first, then single cells. None when the digging gets stuck above `givens`."""
    cells = list(solution)
    left = CELLS
    groups = _mirror_groups()
    rng.shuffle(groups)
    for group in groups:
        if left - len(group) < givens:
            continue
        trial = cells.copy()
        for i in group:
            trial[i] = "0"
        if not _other_solution(trial, solution, group):
            cells, left = trial, left - len(group)
        if left == givens:
            return "".join(cells)
    # Pairs alone rarely go below 26 givens (the puzzle becomes minimal for pairs): go on cell by cell.
    singles = [i for i in range(CELLS) if cells[i] != "0"]
    rng.shuffle(singles)
    for i in singles:
        cells[i] = "0"
        if not _other_solution(cells, solution, (i,)):
            left -= 1
            if left == givens:
                return "".join(cells)
        else:
            cells[i] = solution[i]
    return None


def generate(n: int, givens: int, seed: int) -> list[tuple[str, str]]:
    """`n` (puzzle, solution) pairs, each puzzle with `givens` givens and a unique solution, fixed
    by `seed`. Below about 24 givens most digs get stuck and a new solution is drawn: at 22,
    about one dig in 20 succeeds (about half a second a puzzle)."""
    if not MIN_UNIQUE_GIVENS <= givens <= CELLS:
        raise ValueError(f"givens must be in {MIN_UNIQUE_GIVENS}..{CELLS}, got {givens}")
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        solution = random_solution(rng)
        puzzle = dig(solution, givens, rng)
        if puzzle is not None:
            out.append((puzzle, solution))
    return out
