"""Tests for the Sudoku generators, parser, checker and solvers, and for decoding a board under its rule."""

import hashlib
import random

import pytest
import torch

from unmask.engine import puzzle_canvas, resolve
from unmask.sampling import AllDifferent
from unmask.sampling.search import Trail
from unmask.tasks import sudoku, sudoku_cover
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


# -- the independent generator, the published puzzles ------------------------------------------


def test_cover_generator_makes_valid_unique_puzzles():
    for givens in (30, 26):
        pairs = sudoku_cover.generate(4, givens, seed=givens)
        assert pairs == sudoku_cover.generate(4, givens, seed=givens), "a seed fixes the puzzles"
        for puzzle, solution in pairs:
            assert sum(ch != "0" for ch in puzzle) == givens
            assert is_solution(puzzle, solution)
            assert sudoku_cover.solutions(puzzle, limit=2) == [solution], "exactly one solution"
            assert solve(puzzle) == solution, "the other solver agrees"
    assert len({p for p, _ in sudoku_cover.generate(6, 30, seed=1)}) == 6


def test_cover_solver_counts_solutions():
    assert len(sudoku_cover.solutions("0" * 81, limit=3)) == 3
    assert sudoku_cover.solutions(KNOWN) == [KNOWN]
    assert sudoku_cover.solutions("11" + "0" * 79) == []
    assert sudoku_cover.solutions("123456780000000009" + "0" * 63) == []
    with pytest.raises(ValueError, match="grid"):
        sudoku_cover.solutions("12")


def test_cover_grids_are_valid_and_vary():
    rng = random.Random(3)
    grids = [sudoku_cover.random_solution(rng) for _ in range(10)]
    assert all(is_solution("0" * 81, g) for g in grids) and len(set(grids)) == 10


@pytest.mark.parametrize("name", list(sudoku_cover.CLASSIC))
def test_classic_puzzles_have_one_solution(name):
    puzzle = sudoku_cover.CLASSIC[name]
    assert parse_puzzle(puzzle) == puzzle
    [solution] = sudoku_cover.solutions(puzzle, limit=2)
    assert solve(puzzle) == solution


# -- the rule as the sampler sees it -----------------------------------------------------------

DIGIT_IDS = list(range(2, 11))  # the sudoku tokenizer: digit d is id d + 1


def board_ids(grid: str, mask_id: int = 1) -> torch.Tensor:
    return torch.tensor([[int(ch) + 1 if ch != "0" else mask_id for ch in grid]])


def test_all_different_allows_only_unused_digits():
    rule = AllDifferent(sudoku.unit_cells(), DIGIT_IDS, 81, 11)
    puzzle = sudoku_cover.CLASSIC["wikipedia"]
    x = board_ids(puzzle)
    allowed = rule.allowed(x)[0]  # (81, 11)
    for cell in range(81):
        peers = {puzzle[j] for _, cells in sudoku._UNITS if cell in cells for j in cells if j != cell}
        expected = {int(d) + 1 for d in "123456789" if d not in peers}
        assert {t for t in range(11) if allowed[cell, t]} == expected, cell
    masked = x == 1
    assert not rule.violated(x, allowed[None], masked).any()
    implied = rule.implied(x, allowed[None], masked)[0]
    for cell in range(81):
        n = int(allowed[cell].sum())
        assert (int(implied[cell]) >= 0) == (puzzle[cell] == "0" and n == 1)


def test_all_different_sees_dead_ends():
    rule = AllDifferent(sudoku.unit_cells(), DIGIT_IDS, 81, 11)
    for grid in (
        "11" + "0" * 79,  # a digit twice in a row
        "123456780000000009" + "0" * 63,  # cell 9 of row 1 has no digit left
        # Row 1 needs a 9, but its blanks all see one (in box 2 and box 3): a digit with no place.
        "123000000" + "000900000" + "000000900" + "0" * 54,
    ):
        x = board_ids(grid)
        assert rule.violated(x, rule.allowed(x), x == 1).all(), grid
    assert not rule.violated(board_ids(KNOWN), rule.allowed(board_ids(KNOWN)), board_ids(KNOWN) == 1).any()


def test_trail_takes_back_the_latest_guess_and_what_it_implied():
    seen = [torch.full((81, 11), float(k)) for k in range(3)]  # the logits each guess came from
    trail = Trail()
    trail.frames += [(0, 2, seen[0]), (1, 3, None), (5, 4, seen[1]), (6, 5, None), (7, 6, None)]
    undone, logits = trail.backtrack()
    assert undone == [5, 6, 7] and logits is seen[1]
    assert [f[0] for f in trail.frames] == [0, 1] and trail.bans == [(2, 5, 4)]
    trail.frames += [(5, 7, seen[2])]
    assert trail.backtrack()[0] == [5]
    assert trail.bans == [(2, 5, 4), (2, 5, 7)], "both bans hold while frames[:2] stand"
    banned = torch.zeros(81, 11, dtype=torch.bool)
    trail.banned(banned)
    assert banned.nonzero().tolist() == [[5, 4], [5, 7]]
    assert trail.backtrack()[0] == [0, 1] and trail.bans == [(0, 0, 2)], "bans under a taken-back guess go"
    assert trail.backtrack() is None


# -- the shipped model under the rule ----------------------------------------------------------


@pytest.fixture(scope="module")
def shipped():
    import unmask

    return unmask.load("sudoku")


def conflicts(row: list[int], mask_id: int) -> list[str]:
    out = []
    for name, cells in sudoku._UNITS:
        held = [row[i] for i in cells if row[i] != mask_id]
        if len(held) != len(set(held)):
            out.append(name)
    return out


def test_constrained_decoding_never_commits_a_clashing_digit(shipped):
    """After every pass, with either order: no digit twice in a unit while a board is searched,
    givens kept. Both orders take guesses back on Inkala's puzzle; in random order it outlasts the
    search's passes, and only then is its board filled, in one last pass, without the rule (and
    reported unsolved)."""
    puzzles = [sudoku_cover.CLASSIC["inkala-2012"]] + [p for p, _ in sudoku_cover.generate(2, 26, seed=5)]
    canvases = [puzzle_canvas(shipped, p) for p in puzzles]
    mask = shipped.ids.mask
    digit_of = {t: str(t - 1) for t in DIGIT_IDS}
    for algorithm in ("random", "low_confidence"):
        options = resolve(shipped, {"algorithm": algorithm, "seed": 1}, canvas=canvases[0])
        revoked, clashed, left = 0, set(), [c.masked(mask, 81) for c in canvases]
        for step in shipped.stream([[] for _ in canvases], canvas=[c.region for c in canvases], options=options):
            revoked += sum(map(len, step.revoked))
            for k, (row, canvas) in enumerate(zip(step.canvas.tolist(), canvases)):
                if conflicts(row, mask):
                    assert left[k] and not step.remaining[k], "a clash only when a search gives up"
                    clashed.add(k)
                assert all(t == g for t, g in zip(row, canvas.region) if g != mask), "givens kept"
            left = step.remaining
        final = ["".join(digit_of.get(t, "0") for t in row) for row in step.canvas.tolist()]
        unsolved = {k for k, (p, a) in enumerate(zip(puzzles, final)) if not is_solution(p, a)}
        assert clashed == unsolved == ({0} if algorithm == "random" else set()), algorithm
        assert revoked > 0


def test_shipped_model_solves_unseen_puzzles_from_the_other_generator(shipped):
    puzzles = [p for p, _ in sudoku_cover.generate(6, 26, seed=7)]
    canvases = [puzzle_canvas(shipped, p) for p in puzzles]
    options = resolve(shipped, {}, canvas=canvases[0])
    out = shipped.generate([[] for _ in canvases], canvas=[c.region for c in canvases], options=options)
    digit_of = {t: str(t - 1) for t in DIGIT_IDS}
    answers = ["".join(digit_of.get(t, "0") for t in row) for row in out.sequences]
    assert all(is_solution(p, a) for p, a in zip(puzzles, answers)), answers
    assert out.nfe <= 4 * 55


def test_an_unsolvable_canvas_ends_without_a_search(shipped):
    """Clashing givens handed straight to the sampler (the surfaces refuse them first): no search,
    one pass, and the board is not a solution."""
    grid = "11" + "0" * 79
    x = board_ids(grid)
    out = shipped.generate([[]], canvas=x.tolist(), steps=79)
    assert out.nfe == 1
    assert conflicts(out.sequences[0], shipped.ids.mask)


def test_cli_names_the_puzzle_in_its_errors():
    from typer.testing import CliRunner

    from unmask.cli import app

    runner = CliRunner()
    clash = runner.invoke(app, ["run", "sudoku", "55" + "0" * 79])
    assert clash.exit_code == 1 and "puzzle: conflicting givens: digit 5 appears twice in row 1" in clash.output
    unsolvable = runner.invoke(app, ["run", "sudoku", "123456780000000009" + "0" * 63])
    assert unsolvable.exit_code == 1 and "puzzle: has no solution" in unsolvable.output
    short = runner.invoke(app, ["run", "sudoku", "-"], input=KNOWN + "\n" + "1" * 80 + "\n")
    assert short.exit_code == 1 and "puzzle (line 2): a puzzle needs 81 cells, found 80" in short.output
