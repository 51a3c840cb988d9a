"""Does a program render, move, and draw what was asked? Read from the page, not from the text.

Notable features:
- Three verdicts, each needing the one before: `parses` (the markup's tags balance and there is
  an `<svg>`), `renders` (Chromium runs it with no console error and no uncaught exception),
  `matches` (the DOM holds the spec's counts and named colours, and something on it moves).
- The facts come from the live DOM after the script ran (`.electron` per `.shell`, `.planet`,
  fills and strokes, polygon corners) and from bounding boxes 300 ms apart, so a program that
  writes "2 electrons" in a comment but draws three fails.
- One Chromium serves many checks (a fresh page each); Playwright drives it and is imported
  only here, so the rest of the tasks package stays pure Python.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from html.parser import HTMLParser

from .programs import SHAPES, Spec, element, shells

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
SETTLE_SECONDS = 0.4  # for the script to run and a few frames to draw
MOVE_SECONDS = 0.3  # between the two looks that decide whether anything moves

FACTS = """() => {
  const q = s => [...document.querySelectorAll(s)];
  const attr = (s, a) => q(s).map(e => (e.getAttribute(a) || '').toLowerCase());
  return {
    svg: q('svg').length,
    electron: q('.electron').length, proton: q('.proton').length, neutron: q('.neutron').length,
    shells: q('.shell').map(g => g.querySelectorAll('.electron').length),
    planet: q('.planet').length, star: q('.star').length, ball: q('.ball').length, dot: q('.dot').length,
    shape: q('.shape').map(e => (e.getAttribute('points') || '').trim().split(/\\s+/).length),
    hand: q('.hand').length, tick: q('.tick').length, face: q('.face').length,
    fill: Object.fromEntries(['electron', 'proton', 'planet', 'star', 'ball', 'dot', 'shape', 'face']
      .map(c => [c, attr('.' + c, 'fill')])),
    stroke: { hand: attr('.hand', 'stroke') },
  };
}"""
BOXES = """() => [...document.querySelectorAll('.electron,.planet,.ball,.dot,.shape,.hand')]
  .map(e => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })"""


class TagBalance(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.add(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs) -> None:
        self.tags.add(tag)

    def handle_endtag(self, tag) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {'<' + self.stack[-1] + '>' if self.stack else 'nothing'}")
            if tag in self.stack:
                del self.stack[len(self.stack) - 1 - self.stack[::-1].index(tag) :]
            return
        self.stack.pop()


def parse_problems(code: str) -> list[str]:
    """What is wrong with the markup ([] when its tags balance and it holds an <svg>)."""
    parser = TagBalance()
    parser.feed(code)
    parser.close()
    problems = parser.problems + [f"<{t}> is never closed" for t in parser.stack]
    if "svg" not in parser.tags:
        problems.append("no <svg> element")
    return problems


def expected(spec: Spec) -> dict:
    """The DOM facts a program for `spec` must show: counts, then named colours."""
    v, named = spec.values, spec.named
    if spec.kind == "atom":
        z = v["z"]
        facts = {"electron": z, "proton": z, "neutron": element(z)[2], "shells": shells(z)}
        colours = {"electron": v.get("electron"), "proton": v.get("nucleus")}
        keys = {"electron": "electron", "proton": "nucleus"}
    elif spec.kind == "planets":
        facts = {"planet": v["planets"], "star": 1}
        colours, keys = {"planet": v.get("planet"), "star": v.get("star")}, {"planet": "planet", "star": "star"}
    elif spec.kind == "balls":
        facts, colours, keys = {"ball": v["balls"]}, {"ball": v.get("ball")}, {"ball": "ball"}
    elif spec.kind == "spinner":
        facts, colours, keys = {"dot": v["dots"]}, {"dot": v.get("dot")}, {"dot": "dot"}
    elif spec.kind == "shape":
        corners = SHAPES[v["shape"]] * (2 if v["shape"] == "star" else 1)
        facts, colours, keys = {"shape": [corners]}, {"shape": v.get("colour")}, {"shape": "colour"}
    elif spec.kind == "clock":
        facts = {"hand": 3, "tick": 12, "face": 1}
        colours, keys = {"face": v.get("face"), "hand": v.get("hands")}, {"face": "face", "hand": "hands"}
    else:
        raise ValueError(f"kind: unknown scene kind {spec.kind!r}")
    named_colours = {part: c for part, c in colours.items() if keys[part] in named and c}
    return {"counts": facts, "colours": named_colours}


COUNTED = ("electron", "proton", "neutron", "planet", "star", "ball", "dot", "hand", "tick", "face")


def mismatches(spec: Spec, facts: dict) -> list[str]:
    """How the page differs from the spec ([] when it draws what was asked)."""
    want = expected(spec)
    problems = []
    for key in COUNTED:  # what the spec asks, and nothing of another scene
        n, got = want["counts"].get(key, 0), facts[key]
        if got != n:
            problems.append(f"{key}: {got} drawn, {n} asked")
    for key in ("shells", "shape"):
        if key in want["counts"] and facts[key] != want["counts"][key]:
            problems.append(f"{key}: {facts[key]} drawn, {want['counts'][key]} asked")
    if spec.kind != "shape" and facts["shape"]:
        problems.append(f"shape: {len(facts['shape'])} drawn, none asked")
    for part, colour in want["colours"].items():
        drawn = facts["stroke"][part] if part == "hand" else facts["fill"][part]
        if not drawn or any(c != colour for c in drawn):
            problems.append(f"{part} colour: {sorted(set(drawn))} drawn, {colour} asked")
    return problems


@dataclass
class Verdict:
    parses: bool = False
    renders: bool = False
    moves: bool = False
    matches: bool = False
    problems: list[str] = field(default_factory=list)


def document(code: str) -> str:
    """The page a program runs in: the studio's preview document for SVG (studio/js/preview.js)."""
    return f'<!doctype html><html><head><meta charset="utf-8"></head><body>{code}</body></html>'


class Checker:
    """Checks programs in one headless Chromium; use as a context manager."""

    def __init__(self, executable_path: str = "/usr/bin/chromium") -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(executable_path=executable_path, args=["--no-sandbox"])

    def __enter__(self) -> Checker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._browser.close()
        self._playwright.stop()

    def check(self, code: str, spec: Spec | None = None) -> Verdict:
        verdict = Verdict(problems=parse_problems(code))
        if verdict.problems:
            return verdict
        verdict.parses = True
        page = self._browser.new_page(viewport={"width": 600, "height": 600})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"error: {e}"))
        try:
            page.set_content(document(code), wait_until="load")
            time.sleep(SETTLE_SECONDS)
            before = page.evaluate(BOXES)
            time.sleep(MOVE_SECONDS)
            after = page.evaluate(BOXES)
            facts = page.evaluate(FACTS)
        finally:
            page.close()
        verdict.problems += errors
        verdict.renders = not errors and facts["svg"] > 0
        verdict.moves = any(max(abs(a - b) for a, b in zip(x, y)) > 0.5 for x, y in zip(before, after))
        if not verdict.renders:
            return verdict
        if not verdict.moves:
            verdict.problems.append("nothing moves")
        if spec is not None:
            verdict.problems += mismatches(spec, facts)
            verdict.matches = verdict.moves and not verdict.problems
        return verdict
