"""Does the web model read each value from the request? Teacher-forced, one pass per request.

The program a request asks for is given whole except the value tokens of its `const` lines,
which are masked; one model pass predicts them all, and a value counts as read when every one of
its tokens is the argmax. Rows split by slot and by whether the request named the value or left
it at the kind's default. A model that has learnt the template but not to copy from the request
scores ~100% on defaults and near chance on named values (the web model at 1,800 steps: 0% of
named colours, 12% of named ball counts, sides at their prior whatever the shape word):
benchmarks/web_quality.py then reports low match with high render.

    python benchmarks/web_binding.py --model runs/web/model --samples 300

Seconds, not minutes (no decoding, no browser), so it can follow a training run's exports.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

import torch
from web_quality import HELD_BACK_SEED  # benchmarks/, beside this file

import unmask
from unmask.tasks.web import corpus_example
from unmask.tasks.web.programs import BODIES

CONST = re.compile(r'^const (\w+) = "?(\w+)"?;$', re.M)
# const name -> the spec value it holds, read from the templates (`electronColor = "$electron"`
# holds spec "electron"); an atom's counts come from its z and a shape's sides from its name.
DERIVED = {"protons": "z", "neutrons": "z", "sides": "shape", "star": "shape"}
SPEC_KEY = {
    name: DERIVED.get(name, field)
    for body in BODIES.values()
    for name, field in re.findall(r'^const (\w+) = "?\$(\w+)"?;$', body, re.M)
}


def binding(model, samples: int) -> dict[str, tuple[int, int]]:
    """slot row -> (read, total) over `samples` held-back requests."""
    read, total = Counter(), Counter()
    mask_id = model.tokenizer.mask_id
    for i in range(samples):
        spec, request, program = corpus_example(HELD_BACK_SEED, i)
        text = f"{request}\n{program}"
        encoding = model.tokenizer.inner.encode(text, add_special_tokens=False)  # with character spans
        ids, spans = encoding.ids, encoding.offsets
        given = torch.tensor([ids])
        slots = []
        for const in CONST.finditer(text):
            start, end = const.span(2)
            positions = [k for k, (a, b) in enumerate(spans) if a < end and b > start]
            given[0, positions] = mask_id
            slots.append((const.group(1), positions))
        with torch.inference_mode():
            guess = model.logits(given)[0].argmax(-1)
        for name, positions in slots:
            key = SPEC_KEY[name]
            row = f"{'named' if key in spec.named else 'default'} {'colour' if name.endswith('Color') else name}"
            total[row] += 1
            read[row] += all(int(guess[p]) == ids[p] for p in positions)
    return {row: (read[row], total[row]) for row in sorted(total)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="web", help="web model reference")
    parser.add_argument("--samples", type=int, default=300, help="held-back requests")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = binding(unmask.load(args.model), args.samples)
    print(f"\nweb ({args.model}): values read from the request, teacher-forced, {args.samples} requests")
    print(f"{'slot':<20} {'read':>6} {'of':>5} {'share':>7}")
    for row, (n, of) in rows.items():
        print(f"{row:<20} {n:>6} {of:>5} {n / of:>7.0%}")


if __name__ == "__main__":
    main()
