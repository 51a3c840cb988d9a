"""Tests for the seeded Sudoku generator, parser, checker and solver."""

import hashlib
import random

import pytest

from unmask.tasks import sudoku
from unmask.tasks.sudoku import (
    augment,
    format_grid,
    generate_puzzles,
    is_solution,
    make_puzzle,
    parse_puzzle,
    random_solution,
    solve,
)

# A well-known valid grid, so failures print something a person can check by eye.
KNOWN = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"


def _units_complete(grid: str) -> bool:
    rows = [grid[r * 9 : r * 9 + 9] for r in range(9)]
    cols = [grid[c::9] for c in range(9)]
    boxes = [
        "".join(grid[(br * 3 + r) * 9 + bc * 3 + c] for r in range(3) for c in range(3))
        for br in range(3)
        for bc in range(3)
    ]
    return all(sorted(unit) == list("123456789") for unit in rows + cols + boxes)


def test_known_grid_is_a_solution_of_itself():
    assert _units_complete(KNOWN)
    assert is_solution(KNOWN, KNOWN)


def test_random_solution_is_valid_and_varies():
    rng = random.Random(0)
    grids = [random_solution(rng) for _ in range(20)]
    assert all(len(g) == 81 and _units_complete(g) for g in grids)
    assert len(set(grids)) == 20


def test_augment_keeps_validity_and_changes_the_grid():
    rng = random.Random(1)
    grid = random_solution(rng)
    for _ in range(50):
        out = augment(grid, rng)
        assert _units_complete(out)
        assert out != grid


def test_make_puzzle_has_exact_givens_consistent_with_solution():
    rng = random.Random(2)
    solution = random_solution(rng)
    for givens in (17, 30, 81):
        puzzle = make_puzzle(solution, givens, rng)
        assert sum(ch != "0" for ch in puzzle) == givens
        assert all(p in ("0", s) for p, s in zip(puzzle, solution))
        assert is_solution(puzzle, solution)


@pytest.mark.parametrize("givens", [16, 82])
def test_make_puzzle_rejects_out_of_range_givens(givens):
    with pytest.raises(ValueError, match="17..81"):
        make_puzzle(KNOWN, givens, random.Random(0))


def test_parse_puzzle_accepts_dots_zeros_and_separators():
    puzzle = "0" * 3 + KNOWN[3:]
    drawn = format_grid(puzzle).replace("·", ".")
    assert parse_puzzle(drawn) == puzzle
    assert parse_puzzle(puzzle) == puzzle
    assert parse_puzzle(puzzle.replace("0", ".")) == puzzle
    spaced = "\n".join(" ".join(puzzle[r * 9 : r * 9 + 9]) for r in range(9))
    assert parse_puzzle(spaced) == puzzle


def test_parse_puzzle_reports_cell_count():
    with pytest.raises(ValueError, match="81 cells, found 80"):
        parse_puzzle(KNOWN[:80])


def test_parse_puzzle_reports_invalid_character():
    with pytest.raises(ValueError, match=r"invalid character 'x' at position 4"):
        parse_puzzle(KNOWN[:4] + "x" + KNOWN[5:])


def test_parse_puzzle_reports_conflicting_givens():
    row_clash = "55" + "0" * 79
    with pytest.raises(ValueError, match="digit 5 appears twice in row 1"):
        parse_puzzle(row_clash)
    col_clash = "7" + "0" * 35 + "7" + "0" * 44  # cells 0 and 36 share column 1 only
    with pytest.raises(ValueError, match="digit 7 appears twice in column 1"):
        parse_puzzle(col_clash)
    box_clash = "3" + "0" * 9 + "3" + "0" * 70  # cells 0 and 10: box 1, different row and column
    with pytest.raises(ValueError, match="digit 3 appears twice in box 1"):
        parse_puzzle(box_clash)


def test_is_solution_rejects_a_changed_given():
    puzzle = make_puzzle(KNOWN, 30, random.Random(3))
    given = next(i for i, ch in enumerate(puzzle) if ch != "0")
    other = "1" if puzzle[given] != "1" else "2"
    changed_puzzle = puzzle[:given] + other + puzzle[given + 1 :]
    assert not is_solution(changed_puzzle, KNOWN)


def test_is_solution_rejects_duplicates_blanks_and_bad_lengths():
    # Swapping two cells of a row keeps that row complete but breaks columns and boxes.
    swapped = KNOWN[1] + KNOWN[0] + KNOWN[2:]
    assert not is_solution("0" * 81, swapped)
    box_duplicate = KNOWN[:10] + KNOWN[0] + KNOWN[11:]  # cell 10 copies cell 0 in box 1
    assert not is_solution("0" * 81, box_duplicate)
    assert not is_solution("0" * 81, "0" + KNOWN[1:])
    assert not is_solution("0" * 81, KNOWN[:80])


def test_solve_solves_generated_puzzles():
    for puzzle, _ in generate_puzzles(20, 25, seed=4):
        answer = solve(puzzle)
        assert answer is not None and is_solution(puzzle, answer)


def test_solve_handles_minimal_and_impossible_puzzles():
    puzzle = make_puzzle(KNOWN, 17, random.Random(5))
    assert is_solution(puzzle, solve(puzzle))
    # Row 1 leaves only '9' for cell 8, but column 9 already holds a 9: no solution.
    impossible = "123456780" + "000000009" + "0" * 63
    assert solve(impossible) is None
    assert solve("11" + "0" * 79) is None


def test_generate_puzzles_is_deterministic_for_a_seed():
    first = generate_puzzles(5, 30, seed=7)
    assert first == generate_puzzles(5, 30, seed=7)
    assert first != generate_puzzles(5, 30, seed=8)
    for puzzle, solution in first:
        assert sum(ch != "0" for ch in puzzle) == 30
        assert is_solution(puzzle, solution)


def test_format_grid_draws_boxes_and_blanks():
    drawing = format_grid("0" + KNOWN[1:])
    lines = drawing.splitlines()
    assert len(lines) == 11
    assert lines[0].split() == ["·", "3", "4", "|", "6", "7", "8", "|", "9", "1", "2"]
    assert set(lines[3]) <= set("-+")
    assert sudoku.DRAWN_BLANK in drawing


def test_generator_fingerprint():
    """Pin the seeded puzzles byte for byte, so that no refactor changes them unnoticed."""
    puzzles = generate_puzzles(20, 30, seed=7)
    assert hashlib.sha256(repr(puzzles).encode()).hexdigest() == (
        "e040f1a1934178ff9c38d46c7d94ebd6b9b16dff37666a41b011bf262fa28098"
    )
