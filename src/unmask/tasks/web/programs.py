"""Scene specs and the programs that draw them.

Notable features:
- A `Spec` is a kind and its values; `program(spec)` is the one program for it (and
  requests.py's `request(spec, rng)` one of many ways to ask for it), so a pair never
  disagrees with itself.
- Requests are written in tasks/web/requests.py, from the same spec.
- Every program is an `<svg id="scene">` and a script that opens with one `const` line per
  number or colour of the spec; the rest of the script is the same for every program of a kind.
  A small model then has one thing to get right per value, always written the same way
  (`= "navy";`, `= 4;`), and a user selects just that value to change it.
- Animation runs on `requestAnimationFrame` and the elements carry classes (`electron`,
  `planet`, `ball`, `dot`, `shape`, `hand`), which is what the checker reads back from the DOM.
- Atoms are the first 18 elements of the periodic table, with the neutrons of their most common
  isotope and electrons on shells of 2, 8, 8 (the Bohr model). The script fills the shells from
  the proton count, so the const lines are as long for every element: a list whose length varied
  with Z was where the model's atoms failed to parse (benchmarks/web_quality.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from string import Template

# name, symbol, neutrons of the most abundant isotope (Z is the position, from 1).
ELEMENTS = [
    ("hydrogen", "H", 0), ("helium", "He", 2), ("lithium", "Li", 4), ("beryllium", "Be", 5),
    ("boron", "B", 6), ("carbon", "C", 6), ("nitrogen", "N", 7), ("oxygen", "O", 8),
    ("fluorine", "F", 10), ("neon", "Ne", 10), ("sodium", "Na", 12), ("magnesium", "Mg", 12),
    ("aluminium", "Al", 14), ("silicon", "Si", 14), ("phosphorus", "P", 16), ("sulfur", "S", 16),
    ("chlorine", "Cl", 18), ("argon", "Ar", 22),
]  # fmt: skip

COLOURS = [
    "red", "orange", "yellow", "green", "blue", "purple", "pink", "white", "gray", "cyan",
    "magenta", "gold", "teal", "lime", "brown", "navy", "silver", "violet", "crimson", "coral",
    "black",
]  # fmt: skip
SHAPES = {"triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6, "octagon": 8, "star": 5}

KINDS = ("atom", "planets", "balls", "spinner", "shape", "clock")


@dataclass(frozen=True)
class Spec:
    kind: str
    values: dict = field(default_factory=dict)
    named: frozenset = frozenset()  # the values the request names (the rest are defaults)


def shells(z: int) -> list[int]:
    """Electrons per shell in the Bohr model, for the first 18 elements."""
    out, left = [], z
    for capacity in (2, 8, 8):
        out.append(min(capacity, left))
        left -= out[-1]
        if not left:
            return out
    return out


def element(z: int) -> tuple[str, str, int]:
    return ELEMENTS[z - 1]


# -- programs ------------------------------------------------------------------------------------

HEAD = """<svg id="scene" xmlns="http://www.w3.org/2000/svg" viewBox="$box" width="400" height="400" \
style="background:$background"></svg>
<script>
"""
ADD = """const svg = document.getElementById("scene");
function add(parent, tag, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const key in attrs) el.setAttribute(key, attrs[key]);
  return parent.appendChild(el);
}
"""
CENTRED = "-100 -100 200 200"

BODIES = {
    "atom": """const protons = $protons;
const neutrons = $neutrons;
const nucleusColor = "$nucleus";
const electronColor = "$electron";
const seconds = $seconds;
${add}\
const shells = [2, 8, 8].map((c, k) => Math.min(c, protons - [0, 2, 10][k])).filter(n => n > 0);
for (let i = 0; i < protons + neutrons; i++) {
  const a = i * 2.4, r = 2.6 * Math.sqrt(i);
  const proton = i < 2 * Math.min(protons, neutrons) ? i % 2 == 0 : protons > neutrons;
  add(svg, "circle", { class: proton ? "proton" : "neutron", cx: r * Math.cos(a), cy: r * Math.sin(a), r: 4, \
fill: proton ? nucleusColor : "gray" });
}
const rings = shells.map((count, k) => {
  const radius = 34 + 20 * k;
  add(svg, "circle", { class: "orbit", r: radius, fill: "none", stroke: "#556" });
  const ring = add(svg, "g", { class: "shell" });
  for (let j = 0; j < count; j++) {
    const a = 2 * Math.PI * j / count;
    add(ring, "circle", { class: "electron", cx: radius * Math.cos(a), cy: radius * Math.sin(a), r: 3.5, \
fill: electronColor });
  }
  return ring;
});
function frame(t) {
  rings.forEach((ring, k) => ring.setAttribute("transform", "rotate(" + (t * 0.36 / seconds / (k + 1)) % 360 + ")"));
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
""",
    "planets": """const planets = $planets;
const starColor = "$star";
const planetColor = "$planet";
const seconds = $seconds;
${add}\
add(svg, "circle", { class: "star", r: 12, fill: starColor });
const orbits = [];
for (let i = 0; i < planets; i++) {
  const radius = 20 + (i + 1) * 70 / planets;
  add(svg, "circle", { class: "orbit", r: radius, fill: "none", stroke: "#334" });
  const planet = add(svg, "circle", { class: "planet", cx: radius, r: 3 + i % 3, fill: planetColor });
  orbits.push({ planet, speed: Math.pow(30 / radius, 1.5) });
}
function frame(t) {
  for (const o of orbits) o.planet.setAttribute("transform", "rotate(" + (t * 0.36 / seconds * o.speed) % 360 + ")");
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
""",
    "balls": """const balls = $balls;
const ballColor = "$ball";
const speed = $speed;
${add}\
const items = [];
for (let i = 0; i < balls; i++) {
  const el = add(svg, "circle", { class: "ball", r: 10, fill: ballColor });
  items.push({ el, x: -80 + (i * 37) % 160, y: -80 + (i * 53) % 160, vx: speed * (1 + i % 3) / 2, \
vy: speed * (2 - i % 2) / 2 });
}
function frame() {
  for (const b of items) {
    b.x += b.vx;
    b.y += b.vy;
    if (b.x < -90 || b.x > 90) b.vx = -b.vx;
    if (b.y < -90 || b.y > 90) b.vy = -b.vy;
    b.el.setAttribute("cx", b.x);
    b.el.setAttribute("cy", b.y);
  }
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
""",
    "spinner": """const dots = $dots;
const dotColor = "$dot";
const seconds = $seconds;
${add}\
const wheel = add(svg, "g", { class: "spinner" });
for (let i = 0; i < dots; i++) {
  const a = 2 * Math.PI * i / dots;
  add(wheel, "circle", { class: "dot", cx: 50 * Math.sin(a), cy: -50 * Math.cos(a), r: 8, fill: dotColor, \
opacity: 0.2 + 0.8 * i / dots });
}
function frame(t) {
  wheel.setAttribute("transform", "rotate(" + (t * 0.36 / seconds) % 360 + ")");
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
""",
    "shape": """const sides = $sides;
const star = $star;
const shapeColor = "$colour";
const seconds = $seconds;
const direction = $direction;
${add}\
const points = [];
const corners = star ? 2 * sides : sides;
for (let i = 0; i < corners; i++) {
  const a = 2 * Math.PI * i / corners, r = star && i % 2 ? 30 : 70;
  points.push((r * Math.sin(a)).toFixed(1) + "," + (-r * Math.cos(a)).toFixed(1));
}
const shape = add(svg, "polygon", { class: "shape", points: points.join(" "), fill: shapeColor });
function frame(t) {
  shape.setAttribute("transform", "rotate(" + direction * (t * 0.36 / seconds) % 360 + ")");
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
""",
    "clock": """const faceColor = "$face";
const handColor = "$hands";
${add}\
add(svg, "circle", { class: "face", r: 90, fill: faceColor, stroke: handColor, "stroke-width": 4 });
for (let i = 0; i < 12; i++) {
  add(svg, "line", { class: "tick", y1: -80, y2: -70, stroke: handColor, "stroke-width": 3, \
transform: "rotate(" + i * 30 + ")" });
}
const hands = [["hour", 45, 6], ["minute", 65, 4], ["second", 75, 1.5]].map(([name, length, width]) =>
  add(svg, "line", { class: "hand " + name, y2: -length, stroke: handColor, "stroke-width": width, \
"stroke-linecap": "round" }));
function frame() {
  const now = new Date(), s = now.getSeconds() + now.getMilliseconds() / 1000;
  const m = now.getMinutes() + s / 60, h = (now.getHours() % 12) + m / 60;
  [h * 30, m * 6, s * 6].forEach((a, i) => hands[i].setAttribute("transform", "rotate(" + a + ")"));
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
""",
}
BACKGROUNDS = {"atom": "#0b1020", "planets": "#05060f", "balls": "#f4f1ea", "spinner": "#ffffff", "shape": "#f8f8fb"}
BACKGROUNDS["clock"] = "#e9eef3"


def program(spec: Spec) -> str:
    """The program that draws `spec`."""
    v = spec.values
    fields = dict(v, add=ADD)
    if spec.kind == "atom":
        fields |= {"protons": v["z"], "neutrons": element(v["z"])[2]}
    elif spec.kind == "shape":
        fields |= {"sides": SHAPES[v["shape"]], "star": "true" if v["shape"] == "star" else "false"}
        fields["direction"] = -1 if v["direction"] == "counterclockwise" else 1
    head = Template(HEAD).substitute(box=CENTRED, background=BACKGROUNDS[spec.kind])
    return head + Template(BODIES[spec.kind]).substitute(fields) + "</script>\n"


# -- specs ---------------------------------------------------------------------------------------

DEFAULTS = {
    "atom": {"nucleus": "red", "electron": "cyan", "seconds": 4},
    "planets": {"star": "gold", "planet": "blue", "seconds": 6},
    "balls": {"ball": "red", "speed": 2},
    "spinner": {"dot": "blue", "seconds": 1},
    "shape": {"colour": "orange", "seconds": 4, "direction": "clockwise"},
    "clock": {"face": "white", "hands": "black"},
}
COUNTS = {"planets": (1, 8), "balls": (1, 12), "spinner": (3, 12)}


def random_spec(rng: random.Random) -> Spec:
    """A scene with some values named by the request and the rest left at the kind's defaults."""
    kind = rng.choice(KINDS)
    values = dict(DEFAULTS[kind])
    named = set()

    def name(key: str, value) -> None:
        values[key] = value
        named.add(key)

    if kind == "atom":
        name("z", rng.randint(1, 18))
    elif kind in COUNTS:
        key = {"planets": "planets", "balls": "balls", "spinner": "dots"}[kind]
        name(key, rng.randint(*COUNTS[kind]))
    elif kind == "shape":
        name("shape", rng.choice(list(SHAPES)))
    for key in DEFAULTS[kind]:
        if rng.random() < 0.45:
            if key in ("seconds", "speed"):
                name(key, rng.choice([1, 2, 3, 5, 6, 8, 10]) if key == "seconds" else rng.randint(1, 5))
            elif key == "direction":
                name(key, rng.choice(["clockwise", "counterclockwise"]))
            else:
                name(key, rng.choice([c for c in COLOURS if c != values[key]]))
    if kind == "planets" and "star" in named and "planet" in named and values["star"] == values["planet"]:
        values["planet"] = DEFAULTS["planets"]["planet"] if values["star"] != "blue" else "green"
    if kind == "clock" and values["face"] == values["hands"]:  # a black face: default hands would vanish
        values["hands"] = "white"
    return Spec(kind, values, frozenset(named))
