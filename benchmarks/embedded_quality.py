"""Quality against steps for the embedded models: the speed/quality dial, measured.

story:  for 16/32/64/128 steps over 128 new tokens, the share of generated sentences the story
        grammar accepts, the share of accepted sentences not in the training corpus (novelty),
        distinct sentences, the share of stories passing the story checker (every character
        introduced, pronouns agree, no sentence repeated, the story ends; tasks/stories/checker.py)
        and the share failing each of its rules, the mean story length in tokens (before the end
        token; a model that stops early writes fewer, easier sentences), and tokens/s.
sudoku: solve rate at 36/30/26/22 givens on unseen puzzles of unmask's generator and of an
        independent one, and on published puzzles: confidence vs random order under the Sudoku
        rule, the model alone, passes and puzzles/s (benchmarks/sudoku_quality.py).
web:    for each step count, on held-back generated requests and two hand-written lists of 30,
        the share of programs that parse, render in Chromium with no console error, move, and
        match the request (counts and colours read from the DOM; benchmarks/web_quality.py).

    python benchmarks/embedded_quality.py                      # both, default sizes
    python benchmarks/embedded_quality.py --story runs/story/model --samples 64
    python benchmarks/embedded_quality.py --only sudoku --puzzles 200 --threads 1
    python benchmarks/embedded_quality.py --only web --web-samples 100
    python benchmarks/embedded_quality.py --json results.json   # also write the figures

All figures in one table come from one run on one machine.
"""

from __future__ import annotations

import argparse
import json

import torch
from sudoku_quality import print_table, sudoku_quality  # benchmarks/, beside this file
from web_quality import print_table as print_web_table  # benchmarks/, beside this file
from web_quality import web_quality

import unmask
from unmask.tasks import stories

STORY_PROMPTS = [
    "Once upon a time,",
    "One sunny morning,",
    "There was once",
    "Once upon a time, a fox lived in a den.",
    "One rainy afternoon,",
    "Long ago,",
    "One snowy winter morning,",
    "Once upon a time, a little girl called Mia",
]


def training_sentences(n_stories: int) -> set[str]:
    """Every sentence of the story model's training corpus (recipes.STORY_CORPUS, seed 0)."""
    out: set[str] = set()
    for text in stories.generate_corpus(n_stories, seed=0):
        out.update(stories.split_sentences(text))
    return out


def story_quality(
    model,
    steps_list,
    samples,
    temperature,
    corpus,
    block_length,
    seed=0,
    algorithm="low_confidence",
    spread=0,
    remask=None,
) -> list[dict]:
    from unmask.engine import Canvas, complete, resolve

    tok = model.tokenizer
    rows = []
    for steps in steps_list:
        texts, lengths, generated, seconds = [], [], 0, 0.0
        for i in range(samples):
            prompt = STORY_PROMPTS[i % len(STORY_PROMPTS)]
            canvas = Canvas(tok.encode(prompt, add_special_tokens=False))
            asked = dict(
                max_new_tokens=128,
                steps=steps,
                block_length=block_length,
                temperature=temperature,
                algorithm=algorithm,
                spread=spread,
                remask=remask or 0.0,
                seed=seed + i,
            )
            # Resolved as `unmask run` resolves it, and answered by the same Completion.
            c = complete(model, canvas, resolve(model, asked, canvas=canvas))
            seconds += c.elapsed
            generated += c.completion_tokens
            lengths.append(c.completion_tokens)
            texts.append(prompt + c.text)
        f = stories.fluency(texts, corpus)
        checked = stories.story_scores(texts)
        rows.append(
            {
                "steps": steps,
                "accepted": f["accepted"],
                "novel": f["novel"],
                "distinct": f["distinct"],
                "sentences": f["sentences"],
                "stories_passed": checked["passed"],
                "stories_failed": checked["failed"],
                "length": sum(lengths) / len(lengths),
                "tokens_per_second": generated / seconds,  # text tokens over denoising time
                "example": texts[0],
                "texts": texts,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--story", default="story", help="story model reference")
    parser.add_argument("--sudoku", default="sudoku", help="sudoku model reference")
    parser.add_argument("--only", choices=["story", "sudoku", "web"])
    parser.add_argument("--model", dest="only", choices=["story", "sudoku", "web"], help="the same as --only")
    parser.add_argument("--web", default="web", help="web model reference")
    parser.add_argument("--web-steps", default="16,32,64", help="web: step counts")
    parser.add_argument("--web-samples", type=int, default=100, help="web: held-back requests per step count")
    parser.add_argument("--samples", type=int, default=48, help="stories per step count")
    parser.add_argument("--temperature", type=float, default=None, help="story (default: the model's, else 0.8)")
    parser.add_argument("--block-length", type=int, default=None, help="story (default: the model's, else 32)")
    parser.add_argument("--algorithm", default=None, help="story: how positions are ranked (default: the model's)")
    parser.add_argument(
        "--spread",
        type=int,
        default=None,
        help="story: keep tokens committed in one step more than N apart (default: the model's)",
    )
    parser.add_argument(
        "--remask",
        type=float,
        default=None,
        help="story: decode again tokens the model later doubts below this probability (default: the model's; 0 = off)",
    )
    parser.add_argument("--steps", default="16,32,64,128")
    parser.add_argument("--puzzles", type=int, default=200, help="puzzles per givens count")
    parser.add_argument("--corpus", type=int, default=100_000, help="training stories to check novelty against")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", dest="json_path", help="write the figures here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {}
    if args.only in (None, "story"):
        model = unmask.load(args.story)
        corpus = training_sentences(args.corpus)
        steps_list = [int(s) for s in args.steps.split(",")]
        shipped = model.defaults  # what `unmask run` starts from
        spread = args.spread if args.spread is not None else shipped.get("spread", 0)
        algorithm = args.algorithm or shipped.get("algorithm", "low_confidence")
        temperature = args.temperature if args.temperature is not None else shipped.get("temperature", 0.8)
        block_length = args.block_length or shipped.get("block_length", 32)
        remask = (args.remask if args.remask is not None else shipped.get("remask")) or None
        rows = story_quality(
            model,
            steps_list,
            args.samples,
            temperature,
            corpus,
            block_length,
            algorithm=algorithm,
            spread=spread,
            remask=remask,
        )
        results["story"] = {
            "temperature": temperature,
            "block_length": block_length,
            "algorithm": algorithm,
            "spread": spread,
            "remask": remask,
            "samples": args.samples,
            "rows": rows,
        }
        print(
            f"\nstory ({args.story}): 128 new tokens, {args.samples} samples per row, temperature {temperature}, "
            f"block {block_length}, {algorithm}, spread {spread}, remask {remask or 'off'}"
        )
        # story: share of stories passing every rule; the next four: share failing each rule.
        rules = "".join(f" {c:>10}" for c in stories.CHECKS)
        head = f"{'steps':>6} {'accepted':>9} {'novel':>7} {'distinct':>9} {'story':>6}{rules}"
        print(f"{head} {'length':>7} {'tokens/s':>9}")
        for r in rows:
            failed = "".join(f" {r['stories_failed'][c]:>10.1%}" for c in stories.CHECKS)
            print(
                f"{r['steps']:>6} {r['accepted']:>9.1%} {r['novel']:>7.1%} {r['distinct']:>9.1%} "
                f"{r['stories_passed']:>6.1%}{failed} {r['length']:>7.0f} {r['tokens_per_second']:>9.0f}"
            )
        print(f"example at {rows[-1]['steps']} steps: {rows[-1]['example']}")
    if args.only in (None, "sudoku"):
        model = unmask.load(args.sudoku)
        results["sudoku"] = sudoku_quality(model, args.puzzles)
        print_table(args.sudoku, args.puzzles, results["sudoku"])
    if args.only in (None, "web"):
        results["web"] = web_quality(
            unmask.load(args.web), [int(s) for s in args.web_steps.split(",")], args.web_samples
        )
        print_web_table(args.web, results["web"])
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
