"""Sudoku: how often the embedded solver solves puzzles it has never seen, from three sources.

- `unmask`: tasks/sudoku.py's generator (the one whose solutions trained the model), seeds the
  training never used: random backtracking grids, a uniform random subset of cells kept (often
  more than one solution).
- `cover`: tasks/sudoku_cover.py, written apart from it: exact-cover grids from random diagonal
  boxes, blanks dug in half-turn pairs then cells while the solution stays unique.
- `classic`: published puzzles typed in by hand (sudoku_cover.CLASSIC), 17 to 32 givens.

For each: solve rate with confidence order and with random order (both decoded as every surface
decodes a board: under the Sudoku rule, with the search that takes back dead ends), the model
alone (confidence order, plain sampler, no rule) for contrast, model passes per puzzle, and
puzzles per second solved one at a time as `unmask run sudoku` does, and in one batch.

    python benchmarks/embedded_quality.py --only sudoku --puzzles 200 --threads 1
    python benchmarks/sudoku_quality.py --puzzles 50 --givens 26,22 --threads 1
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import unmask
from unmask.engine import Completion, puzzle_canvas, resolve
from unmask.engine.resolve import plan_for
from unmask.sampling import denoise
from unmask.tasks import sudoku, sudoku_cover

GIVENS = (36, 30, 26, 22)
ORDERS = ("low_confidence", "random")
UNMASK_SEED, COVER_SEED = 10_000, 20_000  # + givens; training drew its grids from seeds 0 and 1
ONE_AT_A_TIME = 20  # puzzles solved singly per row, for the interactive rate


def puzzles_for(source: str, givens: int, n: int) -> list[str]:
    if source == "unmask":
        return [p for p, _ in sudoku.generate_puzzles(n, givens, seed=UNMASK_SEED + givens)]
    return [p for p, _ in sudoku_cover.generate(n, givens, seed=COVER_SEED + givens)]


def solve_batch(model, puzzles: list[str], algorithm: str, seed: int = 0) -> dict:
    """Solve `puzzles` in one batch the way `unmask run sudoku - ` does; per-puzzle passes too."""
    canvases = [puzzle_canvas(model, p) for p in puzzles]
    widest = max(canvases, key=lambda c: c.masked(model.ids.mask, 81))
    options = resolve(model, {"algorithm": algorithm, "seed": seed}, canvas=widest)
    passes = [0] * len(puzzles)
    revoked = 0
    left = [c.masked(model.ids.mask, 81) for c in canvases]
    start = time.perf_counter()
    final = None
    for step in model.stream([[] for _ in canvases], canvas=[c.region for c in canvases], options=options):
        passes = [n + bool(r) for n, r in zip(passes, left)]
        left = step.remaining
        revoked += sum(map(len, step.revoked))
        final = step.canvas
    seconds = time.perf_counter() - start
    answers = []
    for canvas, row in zip(canvases, final.tolist()):
        answer = Completion(model, canvas, options)
        answer.finish(row)
        answers.append(answer.text)
    solved = [sudoku.is_solution(p, a) for p, a in zip(puzzles, answers)]
    return {"solved": solved, "passes": passes, "revoked": revoked, "seconds": seconds}


def solve_alone(model, puzzles: list[str]) -> list[bool]:
    """The model without the rule: the plain sampler, confidence order, one cell per pass."""
    canvases = [puzzle_canvas(model, p) for p in puzzles]
    widest = max(canvases, key=lambda c: c.masked(model.ids.mask, 81))
    options = resolve(model, {"algorithm": "low_confidence", "seed": 0}, canvas=widest)
    options = options.model_copy(update={"threshold": None})  # one cell per pass, as before the shipped threshold
    x = torch.tensor([c.region for c in canvases], device=model.device)
    for _ in denoise(model.net, x, 0, plan_for(model.family, options), model.ids.mask):
        pass
    digit_of = {model.tokenizer.token_id(str(d)): str(d) for d in range(1, 10)}
    return [sudoku.is_solution(p, "".join(digit_of.get(t, "0") for t in row)) for p, row in zip(puzzles, x.tolist())]


def one_at_a_time(model, puzzles: list[str]) -> float:
    """Puzzles per second, each solved alone (confidence order), as `unmask run sudoku PUZZLE`."""
    start = time.perf_counter()
    for p in puzzles:
        solve_batch(model, [p], "low_confidence")
    return len(puzzles) / (time.perf_counter() - start)


def measure(model, source: str, puzzles: list[str], givens) -> dict:
    row: dict = {"source": source, "givens": givens, "puzzles": len(puzzles)}
    for algorithm in ORDERS:
        out = solve_batch(model, puzzles, algorithm)
        row[algorithm] = sum(out["solved"]) / len(puzzles)
        row[f"{algorithm}_passes_mean"] = sum(out["passes"]) / len(puzzles)
        row[f"{algorithm}_passes_max"] = max(out["passes"])
        row[f"{algorithm}_revoked"] = out["revoked"]
        row[f"{algorithm}_batch_per_second"] = len(puzzles) / out["seconds"]
        if algorithm == "low_confidence":
            row["unsolved"] = [p for p, ok in zip(puzzles, out["solved"]) if not ok]
    row["model_alone"] = sum(solve_alone(model, puzzles)) / len(puzzles)
    row["one_at_a_time_per_second"] = one_at_a_time(model, puzzles[:ONE_AT_A_TIME])
    return row


def sudoku_quality(model, n: int, givens_list=GIVENS, sources=("unmask", "cover")) -> dict:
    rows = [measure(model, s, puzzles_for(s, g, n), g) for g in givens_list for s in sources]
    classic = list(sudoku_cover.CLASSIC.values())
    rows.append(measure(model, "classic", classic, "17-32"))
    per_puzzle = solve_batch(model, classic, "low_confidence")
    names = list(sudoku_cover.CLASSIC)
    return {
        "rows": rows,
        "classic": {
            k: {"solved": s, "passes": n} for k, s, n in zip(names, per_puzzle["solved"], per_puzzle["passes"])
        },
    }


def print_table(name: str, n: int, result: dict) -> None:
    print(
        f"\nsudoku ({name}): {n} puzzles per generated row; decoded under the Sudoku rule with take-backs "
        "(confidence and random order), and the model alone (confidence order, no rule)"
    )
    print(
        f"{'source':>8} {'givens':>6} {'confidence':>10} {'random':>7} {'alone':>6} "
        f"{'passes':>11} {'random passes':>13} {'puzzles/s 1-by-1':>16} {'batch':>6}"
    )
    for r in result["rows"]:
        print(
            f"{r['source']:>8} {r['givens']!s:>6} {r['low_confidence']:>10.1%} {r['random']:>7.1%} "
            f"{r['model_alone']:>6.1%} {r['low_confidence_passes_mean']:>6.1f} /{r['low_confidence_passes_max']:>3} "
            f"{r['random_passes_mean']:>8.1f} /{r['random_passes_max']:>3} "
            f"{r['one_at_a_time_per_second']:>16.1f} {r['low_confidence_batch_per_second']:>6.1f}"
        )
    print("passes: mean / max model passes per puzzle")
    print(
        "classic: "
        + ", ".join(
            f"{k} {'solved' if v['solved'] else 'NOT solved'} ({v['passes']} passes)"
            for k, v in result["classic"].items()
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sudoku", default="sudoku", help="sudoku model reference")
    parser.add_argument("--puzzles", type=int, default=200, help="puzzles per source and givens count")
    parser.add_argument("--givens", default=",".join(map(str, GIVENS)))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", dest="json_path", help="write the figures here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = unmask.load(args.sudoku)
    result = sudoku_quality(model, args.puzzles, [int(g) for g in args.givens.split(",")])
    print_table(args.sudoku, args.puzzles, result)
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump({"sudoku": result}, f, indent=2)


if __name__ == "__main__":
    main()
