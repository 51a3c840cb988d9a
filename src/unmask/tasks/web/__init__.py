"""Small animations as HTML + SVG: the corpus the embedded `web` model learns from, and the checker
that says whether a program renders and draws what was asked.

Modules, each with its notable features:
- `programs`: a scene spec (an atom of one of the first 18 elements, planets round a star,
  bouncing balls, a loading spinner, a spinning shape, a clock) becomes one self-contained
  program: an `<svg>` and a short script whose first lines hold every number and colour the
  request named, so a count or a colour is one place in the code.
- `requests`: the same spec as a request in varied English (synonyms, word order, numbers as
  words or digits), and the corpus of (spec, request, program) as a pure function of seed and index.
- `checker`: the program parses, runs in Chromium with no console error, moves, and its DOM
  holds what the spec asks (electrons per shell, planets, colours), read from the elements.
"""

from .programs import KINDS, Spec, program, random_spec
from .requests import corpus_example, corpus_pair, request

__all__ = ["KINDS", "Spec", "corpus_example", "corpus_pair", "program", "random_spec", "request"]
