"""The web model against steps: does what it writes render, move, and draw what was asked?

Three request sets, each checked in Chromium by unmask.tasks.web.checker (facts read from the DOM):
- held back: requests the corpus generator writes with seeds the training never used (2 and up);
- outside: 30 requests written by hand, phrased unlike the generator (OUTSIDE below), each with
  the scene it asks for;
- outside 2: 30 more, written later, after the generator had been widened along the first
  list's failures (OUTSIDE_2 below).

    python benchmarks/embedded_quality.py --only web
    python benchmarks/web_quality.py --model runs/web/model --steps 32,64 --samples 60

For each step count: the share that parse, render with no console error, and match the request
(counts and named colours, and something moves), and tokens/s. All figures come from one run.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import unmask
from unmask.tasks.web import Spec, corpus_example
from unmask.tasks.web.checker import Checker
from unmask.tasks.web.programs import DEFAULTS

HELD_BACK_SEED = 2  # the recipe trains on seed 0 and validates on seed 1


def ask(kind: str, **named) -> Spec:
    return Spec(kind, DEFAULTS[kind] | named, frozenset(named))


# Written by hand before the model was measured, in words and orders the generator does not use.
OUTSIDE = [
    ("Show me how the electrons move around a helium nucleus", ask("atom", z=2)),
    ("oxygen atom pls", ask("atom", z=8)),
    ("I need a carbon atom where the electrons are green and circling", ask("atom", z=6, electron="green")),
    ("Visualise neon's electron shells", ask("atom", z=10)),
    ("a hydrogen atom, its single electron going round and round", ask("atom", z=1)),
    ("Make an animated model of the sodium atom with a yellow core", ask("atom", z=11, nucleus="yellow")),
    ("Lithium: nucleus plus 3 electrons, animate it", ask("atom", z=3)),
    ("What does an argon atom look like? Animate the electrons.", ask("atom", z=18)),
    ("Chlorine atom model, electrons coloured pink", ask("atom", z=17, electron="pink")),
    ("magnesium, bohr style, orbiting electrons in white", ask("atom", z=12, electron="white")),
    ("Put four planets around a sun", ask("planets", planets=4)),
    ("My solar system: one star, six planets circling it", ask("planets", planets=6)),
    ("Eight planets going around an orange sun, please animate", ask("planets", planets=8, star="orange")),
    ("Two worlds orbiting a red star", ask("planets", planets=2, star="red")),
    ("three purple planets around a star", ask("planets", planets=3, planet="purple")),
    ("Bounce some balls around the screen, seven of them", ask("balls", balls=7)),
    ("One green ball bouncing", ask("balls", balls=1, ball="green")),
    ("I'd love to watch ten blue balls bounce about", ask("balls", balls=10, ball="blue")),
    ("four bouncy balls in pink", ask("balls", balls=4, ball="pink")),
    ("A loader: spinning ring of 10 dots", ask("spinner", dots=10)),
    ("Loading animation with six orange dots", ask("spinner", dots=6, dot="orange")),
    ("Spinner, 5 dots, red", ask("spinner", dots=5, dot="red")),
    ("Rotate a green square", ask("shape", shape="square", colour="green")),
    ("A star shape that keeps turning, in gold", ask("shape", shape="star", colour="gold")),
    ("hexagon spinning round and round", ask("shape", shape="hexagon")),
    ("Animate a yellow triangle turning anticlockwise", ask("shape", shape="triangle", colour="yellow")),
    ("An octagon that rotates slowly", ask("shape", shape="octagon")),
    ("Show the current time on an analog clock face", ask("clock")),
    ("Clock with red hands", ask("clock", hands="red")),
    ("A ticking wall clock, black face and white hands", ask("clock", face="black", hands="white")),
]  # fmt: skip

# A second list, written by hand on 2026-12-04 after the corpus of that day's retrain was fixed and
# before any model was run on it: the first list had by then been read for failures and the
# generator widened along their lines, so it no longer measures requests the corpus has not seen.
OUTSIDE_2 = [
    ("Can I see a beryllium atom? Four electrons, please.", ask("atom", z=4)),
    ("nitrogen - show the electrons going round", ask("atom", z=7)),
    ("Draw fluorine with purple electrons", ask("atom", z=9, electron="purple")),
    ("animate the electron cloud of boron", ask("atom", z=5)),
    ("A silicon atom whose electrons are orange", ask("atom", z=14, electron="orange")),
    ("Model of phosphorus, electrons orbiting slowly", ask("atom", z=15)),
    ("I'm teaching chemistry: an aluminium atom with a blue nucleus", ask("atom", z=13, nucleus="blue")),
    ("sulfur atom, bohr model, animated", ask("atom", z=16)),
    ("Show an atom of helium where the electrons are red", ask("atom", z=2, electron="red")),
    ("the electrons of a lithium atom orbiting, in yellow", ask("atom", z=3, electron="yellow")),
    ("A sun with five planets going around it", ask("planets", planets=5)),
    ("Solar system animation: seven planets", ask("planets", planets=7)),
    ("Show 3 green planets orbiting a yellow star", ask("planets", planets=3, planet="green", star="yellow")),
    ("one lonely planet circling a white star", ask("planets", planets=1, star="white")),
    ("Make planets orbit a sun. Two of them.", ask("planets", planets=2)),
    ("Six bouncing balls", ask("balls", balls=6)),
    ("A red ball bouncing around a box", ask("balls", balls=1, ball="red")),
    ("Animate 9 purple balls bouncing", ask("balls", balls=9, ball="purple")),
    ("Balls bouncing everywhere, three, in teal", ask("balls", balls=3, ball="teal")),
    ("twelve balls that bounce off the edges", ask("balls", balls=12)),
    ("A simple loading spinner with 8 dots", ask("spinner", dots=8)),
    ("Busy indicator made from twelve green dots", ask("spinner", dots=12, dot="green")),
    ("loading... spinner of seven pink dots", ask("spinner", dots=7, dot="pink")),
    ("A spinner with three dots going round", ask("spinner", dots=3)),
    ("Spin a blue pentagon", ask("shape", shape="pentagon", colour="blue")),
    ("A red star that rotates", ask("shape", shape="star", colour="red")),
    ("make a triangle spin clockwise", ask("shape", shape="triangle")),
    ("Purple octagon, rotating", ask("shape", shape="octagon", colour="purple")),
    ("An analog clock with a yellow face", ask("clock", face="yellow")),
    ("Draw me a clock whose hands are blue", ask("clock", hands="blue")),
]  # fmt: skip


def held_back(samples: int) -> list[tuple[str, Spec]]:
    return [(request, spec) for spec, request, _ in (corpus_example(HELD_BACK_SEED, i) for i in range(samples))]


def web_quality(model, steps_list, samples: int, settings: dict | None = None, checker=None) -> list[dict]:
    """One row per (request set, steps): shares that parse, render, move and match, and tokens/s."""
    from unmask.engine import Canvas, complete, resolve

    sets = {"held back": held_back(samples), "outside": OUTSIDE, "outside 2": OUTSIDE_2}
    own = checker is None
    checker = checker or Checker()
    rows = []
    try:
        for steps in steps_list:
            for name, requests in sets.items():
                counts = {"parses": 0, "renders": 0, "moves": 0, "matches": 0}
                tokens, seconds, failures = 0, 0.0, []
                for i, (text, spec) in enumerate(requests):
                    canvas = Canvas(model.tokenizer.encode(text, add_special_tokens=False))
                    asked = dict(settings or {}, steps=steps, seed=i)
                    # Resolved as `unmask run web` resolves it, and answered by the same Completion.
                    c = complete(model, canvas, resolve(model, asked, canvas=canvas))
                    tokens += c.completion_tokens
                    seconds += c.elapsed
                    verdict = checker.check(c.text.strip(), spec)
                    for key in counts:
                        counts[key] += getattr(verdict, key)
                    if not verdict.matches and len(failures) < 5:
                        failures.append({"request": text, "problems": verdict.problems[:3]})
                n = len(requests)
                rows.append(
                    {"set": name, "steps": steps, "requests": n}
                    | {key: value / n for key, value in counts.items()}
                    | {"tokens_per_second": tokens / seconds, "failures": failures}
                )
    finally:
        if own:
            checker.close()
    return rows


def print_table(reference: str, rows: list[dict]) -> None:
    print(f"\nweb ({reference}): requests -> programs, checked in Chromium")
    print(
        f"{'set':<10} {'steps':>6} {'requests':>9} {'parse':>7} {'render':>7} {'moves':>7} {'match':>7} {'tokens/s':>9}"
    )
    for r in rows:
        print(
            f"{r['set']:<10} {r['steps']:>6} {r['requests']:>9} {r['parses']:>7.1%} {r['renders']:>7.1%} "
            f"{r['moves']:>7.1%} {r['matches']:>7.1%} {r['tokens_per_second']:>9.0f}"
        )
    for r in rows[-3:]:
        for f in r["failures"][:5]:
            print(f"  {r['set']} at {r['steps']} steps: {f['request']!r}: {'; '.join(f['problems'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="web", help="web model reference")
    parser.add_argument("--steps", default="16,32,64")
    parser.add_argument("--samples", type=int, default=100, help="held-back requests per step count")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", dest="json_path", help="write the figures here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.time()
    rows = web_quality(unmask.load(args.model), [int(s) for s in args.steps.split(",")], args.samples)
    print_table(args.model, rows)
    print(f"({time.time() - started:.0f} s)")
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump({"web": rows}, f, indent=2)


if __name__ == "__main__":
    main()
