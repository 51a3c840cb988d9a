"""Scene specs, the programs that draw them, and the requests that ask for them.

Notable features:
- A `Spec` is a kind and its values; `program(spec)` is the one program for it and
  `request(spec, rng)` one of many ways to ask for it, so a pair never disagrees with itself.
- Every program is an `<svg id="scene">` and a script whose first `const` line holds the spec's
  numbers and colours; the rest of the script is the same for every program of a kind. A small
  model then has one thing to get right per value (and a user selects one token to change it).
- Animation runs on `requestAnimationFrame` and the elements carry classes (`electron`,
  `planet`, `ball`, `dot`, `shape`, `hand`), which is what the checker reads back from the DOM.
- Atoms are the first 18 elements of the periodic table, with the neutrons of their most common
  isotope and electrons on shells of 2, 8, 8 (the Bohr model).
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
ELEMENT_ALIASES = {"aluminum": "aluminium", "sulphur": "sulfur"}

COLOURS = [
    "red", "orange", "yellow", "green", "blue", "purple", "pink", "white", "gray", "cyan",
    "magenta", "gold", "teal", "lime", "brown", "navy", "silver", "violet", "crimson", "coral",
]  # fmt: skip
COLOUR_SPELLINGS = {"gray": ["gray", "grey"]}
SHAPES = {"triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6, "octagon": 8, "star": 5}
NUMBER_WORDS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
]  # fmt: skip
SPEEDS = {"very slowly": 12, "slowly": 8, "quickly": 2, "fast": 2, "very fast": 1}

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
    "atom": """const protons = $protons, neutrons = $neutrons, shells = [$shells];
const nucleusColor = "$nucleus", electronColor = "$electron", seconds = $seconds;
${add}\
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
    "planets": """const planets = $planets, starColor = "$star", planetColor = "$planet", seconds = $seconds;
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
    "balls": """const balls = $balls, ballColor = "$ball", speed = $speed;
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
    "spinner": """const dots = $dots, dotColor = "$dot", seconds = $seconds;
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
    "shape": """const sides = $sides, star = $star, shapeColor = "$colour", seconds = $seconds, direction = $direction;
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
    "clock": """const faceColor = "$face", handColor = "$hands";
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
        name, _, neutrons = element(v["z"])
        fields |= {"protons": v["z"], "neutrons": neutrons, "shells": ", ".join(map(str, shells(v["z"])))}
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
    return Spec(kind, values, frozenset(named))


# -- requests ------------------------------------------------------------------------------------

VERBS = [
    "Draw", "Make", "Show", "Animate", "Create", "Build", "Render", "Generate", "Code", "Write",
    "Visualise", "Visualize", "Illustrate", "Sketch", "Program", "Design", "Produce", "Display",
]  # fmt: skip
FRAMES = [
    "{Verb} {subject}{details}.",
    "{Verb} {subject}{details}",
    "{verb} {subject}{details}",
    "{Subject}{details}",
    "{subject}{details}",
    "{Subject}{details}, please",
    "{subject}{details} pls",
    "Can you {verb} {subject}{details}?",
    "Could you {verb} {subject}{details}?",
    "Would you {verb} {subject}{details}?",
    "Please {verb} {subject}{details}.",
    "I want {subject}{details}.",
    "I need {subject}{details}.",
    "Give me {subject}{details}",
    "Show me {subject}{details}",
    "Let me see {subject}{details}.",
    "An animation of {subject}{details}.",
    "An animated SVG of {subject}{details}",
    "Animated {subject}{details}",
    "{Verb} me {subject}{details}, please.",
    "I'd like to see {subject}{details}.",
    "I'd love {subject}{details}.",
    "{Subject}{details}. Animate it.",
    "{Verb} an animation: {subject}{details}",
]
ORBIT_VERBS = [
    "orbiting",
    "circling",
    "going round",
    "going around",
    "moving around",
    "spinning around",
    "travelling round",
]
NUCLEUS = ["nucleus", "nucleus", "core", "centre", "center"]
SPIN_VERBS = ["spinning", "rotating", "turning", "revolving", "that spins", "that rotates", "that keeps turning"]


def number(n: int, rng: random.Random) -> str:
    return NUMBER_WORDS[n] if n < len(NUMBER_WORDS) and rng.random() < 0.5 else str(n)


def colour_word(c: str, rng: random.Random) -> str:
    return rng.choice(COLOUR_SPELLINGS.get(c, [c]))


def timing(key: str, value: int, rng: random.Random, verb: str, noun: str) -> str:
    """Seconds per turn (or, for balls, a speed 1-5) in words."""
    if key == "speed":
        return rng.choice([f"at speed {value}", f"with speed {number(value, rng)}", f"moving at speed {value}"])
    every = "every second" if value == 1 else f"every {number(value, rng)} seconds"
    options = [f"{verb} once {every}", f"{verb} {every}", f"with a {value} second {noun}"]
    options += [f"{verb} {w}" for w, s in SPEEDS.items() if s == value]
    return rng.choice(options)


def article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


def join(parts: list[str], rng: random.Random) -> str:
    """' a, b and c' (or ' a, b, c'): the details after the subject."""
    if len(parts) < 2:
        return "".join(" " + p for p in parts)
    return " " + ", ".join(parts[:-1]) + rng.choice([" and ", ", "]) + parts[-1]


def pick(rng: random.Random, *options: str) -> str:
    return rng.choice(options)


def coloured(noun: str, c: str, rng: random.Random) -> str:
    """'red balls', 'balls in red', 'balls coloured red', 'red-coloured balls'."""
    return pick(rng, f"{c} {noun}", f"{c} {noun}", f"{noun} in {c}", f"{noun} coloured {c}", f"{c}-coloured {noun}")


def atom_request(spec: Spec, rng: random.Random) -> tuple[str, list[str]]:
    v, named = spec.values, spec.named
    z = v["z"]
    name, symbol, _ = element(z)
    name = next((a for a, b in ELEMENT_ALIASES.items() if b == name and rng.random() < 0.3), name)
    if rng.random() < 0.2:
        name = name.capitalize()
    subject = pick(
        rng,
        f"{article(name)} {name} atom",
        f"an atom of {name}",
        f"the {name} atom",
        f"{article(name)} {name} ({symbol}) atom",
        f"{name}",
        f"{name} ({symbol})",
        f"{name}'s electron shells",
        f"{name} with its electrons",
        f"a model of {article(name)} {name} atom",
        f"an animated model of the {name} atom",
        f"the atom with atomic number {number(z, rng)}",
        f"an atom with {number(z, rng)} protons",
        f"element {z}",
        f"element number {number(z, rng)}",
        f"the Bohr model of {name}",
        f"{name}, Bohr style",
    )
    orbit = pick(rng, *ORBIT_VERBS)
    nucleus = pick(rng, *NUCLEUS)
    electrons = "electron" if z == 1 and rng.random() < 0.7 else "electrons"
    if "electron" in named:
        electrons = coloured(electrons, colour_word(v["electron"], rng), rng)
    details = []
    if rng.random() < 0.5:
        count = number(z, rng) if z > 1 or rng.random() < 0.5 else pick(rng, "one", "a single", "its single", "1")
        details.append(
            pick(
                rng,
                f"with {count} {electrons} {orbit} the {nucleus}",
                f"with its {count} {electrons}",
                f"showing {count} {electrons} on their shells",
                f"and {count} {electrons} {orbit}",
                f"{count} {electrons} {orbit} it",
            )
        )
    elif "electron" in named or rng.random() < 0.3:
        details.append(
            pick(rng, f"with {electrons}", f"with {electrons} {orbit}", f"{electrons} {orbit} the {nucleus}")
        )
    if "nucleus" in named:
        c = colour_word(v["nucleus"], rng)
        details.append(
            pick(
                rng, f"with a {c} {nucleus}", f"with the {nucleus} in {c}", f"whose {nucleus} is {c}", f"{c} {nucleus}"
            )
        )
    if "seconds" in named:
        details.append(timing("seconds", v["seconds"], rng, orbit, "orbit"))
    return subject, details


def planets_request(spec: Spec, rng: random.Random) -> tuple[str, list[str]]:
    v, named = spec.values, spec.named
    n = v["planets"]
    plural = n != 1
    noun = pick(rng, "planets", "planets", "planets", "worlds") if plural else pick(rng, "planet", "planet", "world")
    if "planet" in named:
        noun = coloured(noun, colour_word(v["planet"], rng), rng)
    star = pick(rng, "star", "sun")
    star = f"{colour_word(v['star'], rng)} {star}" if "star" in named else star
    star = f"{pick(rng, 'a', 'the', 'one', 'a single')} {star}".replace("a orange", "an orange")
    count = number(n, rng) if plural or rng.random() < 0.5 else pick(rng, "a", "one", "a single")
    orbit = pick(rng, *ORBIT_VERBS, "around", "round")
    subject = pick(
        rng,
        f"{count} {noun} {orbit} {star}",
        f"a solar system with {count} {noun} {orbit} {star}",
        f"a solar system: {star} and {count} {noun}",
        f"{star} with {count} {noun} {orbit} it",
        f"{star} and {count} {noun} {orbit} it",
        f"{count} {noun} and {star}",
    )
    details = [timing("seconds", v["seconds"], rng, orbit, "orbit")] if "seconds" in named else []
    return subject, details


def balls_request(spec: Spec, rng: random.Random) -> tuple[str, list[str]]:
    v, named = spec.values, spec.named
    n = v["balls"]
    count = number(n, rng) if n != 1 or rng.random() < 0.5 else pick(rng, "a", "one", "a single")
    noun = "ball" if n == 1 else "balls"
    bouncing = pick(rng, "bouncing", "bouncy")
    if "ball" in named:
        c = colour_word(v["ball"], rng)
        both = pick(rng, f"{c} {bouncing} {noun}", f"{bouncing} {c} {noun}", f"{bouncing} {noun} in {c}")
        noun = coloured(noun, c, rng)
    else:
        both = f"{bouncing} {noun}"
    subject = pick(
        rng,
        f"{count} {both}",
        f"{count} {noun} bouncing around",
        f"{count} {noun} bouncing around the screen",
        f"{count} {noun} bouncing off the walls",
        f"{count} {noun} that bounce",
        f"{count} {noun} that bounce about",
        f"{both}, {count} of them" if n > 1 else f"{count} {both}",
    )
    details = [timing("speed", v["speed"], rng, "", "")] if "speed" in named else []
    return subject, details


def spinner_request(spec: Spec, rng: random.Random) -> tuple[str, list[str]]:
    v, named = spec.values, spec.named
    n = number(v["dots"], rng)
    dots = coloured("dots", colour_word(v["dot"], rng), rng) if "dot" in named else "dots"
    loader = pick(
        rng, "loading spinner", "spinner", "loader", "loading animation", "loading indicator", "busy indicator"
    )
    spin = pick(rng, "spinning", "turning", "going round")
    subject = pick(
        rng,
        f"a {loader} with {n} {dots}",
        f"a {loader} made of {n} {dots}",
        f"a {loader}: a ring of {n} {dots}",
        f"a ring of {n} {dots} {spin}",
        f"{n} {dots} {spin} in a circle, like a {loader}",
        f"a {spin} ring of {n} {dots}",
    )
    details = [timing("seconds", v["seconds"], rng, spin, "turn")] if "seconds" in named else []
    return subject, details


def shape_request(spec: Spec, rng: random.Random) -> tuple[str, list[str]]:
    v, named = spec.values, spec.named
    shape = v["shape"] if v["shape"] != "star" else pick(rng, "star", "star shape", "five-pointed star")
    c = colour_word(v["colour"], rng) if "colour" in named else ""
    spin = pick(rng, *SPIN_VERBS)
    coloured_shape = coloured(shape, c, rng) if c else shape
    if spin.startswith("that"):
        subject = f"a {coloured_shape} {spin}"
    else:
        subject = pick(rng, f"a {spin} {c + ' ' if c else ''}{shape}", f"a {coloured_shape} {spin}")
    details = []
    if "direction" in named:
        word = v["direction"] if v["direction"] == "clockwise" else pick(rng, "counterclockwise", "anticlockwise")
        details.append(pick(rng, word, f"turning {word}", f"going {word}", f"{word} please"))
    if "seconds" in named:
        details.append(timing("seconds", v["seconds"], rng, spin.removeprefix("that "), "turn"))
    return subject.replace("a orange", "an orange").replace("a a", "an a"), details


def clock_request(spec: Spec, rng: random.Random) -> tuple[str, list[str]]:
    v, named = spec.values, spec.named
    subject = pick(
        rng,
        "a clock",
        "an analog clock",
        "an analogue clock",
        "a ticking clock",
        "a wall clock",
        "a clock showing the time",
        "the current time on a clock",
        "a clock face with moving hands",
    )
    details = []
    if "face" in named:
        c = colour_word(v["face"], rng)
        details.append(pick(rng, f"with a {c} face", f"on a {c} face", f"{c} face"))
    if "hands" in named:
        c = colour_word(v["hands"], rng)
        details.append(pick(rng, f"with {c} hands", f"and {c} hands", f"{c} hands", f"hands in {c}"))
    return subject, details


REQUESTS = {
    "atom": atom_request,
    "planets": planets_request,
    "balls": balls_request,
    "spinner": spinner_request,
    "shape": shape_request,
    "clock": clock_request,
}


def request(spec: Spec, rng: random.Random) -> str:
    """One way of asking for `spec` in English."""
    subject, details = REQUESTS[spec.kind](spec, rng)
    rng.shuffle(details)
    frame = rng.choice(FRAMES)
    verb = rng.choice(VERBS)
    capital = subject[0].upper() + subject[1:]
    text = frame.format(Verb=verb, verb=verb.lower(), subject=subject, Subject=capital, details=join(details, rng))
    return " ".join(text.split())


def corpus_example(seed: int, index: int) -> tuple[Spec, str, str]:
    """The index-th (spec, request, program) of the corpus with this seed: a pure function, so a
    resumed training run and a held-back evaluation set are both exact."""
    rng = random.Random(seed * 1_000_003 + index)
    spec = random_spec(rng)
    return spec, request(spec, rng), program(spec)


def corpus_pair(seed: int, index: int) -> tuple[str, str]:
    return corpus_example(seed, index)[1:]
