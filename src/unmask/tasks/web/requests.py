"""Requests in varied English for a scene spec, and the corpus pairs they make with its program.

Notable features:
- Verbs, frames, synonyms (core / centre / nucleus, worlds, loader / busy indicator), numbers as
  words or digits, colours before or after their noun and details in any order, each drawn from
  one seeded `random.Random`, so a (seed, index) pair is always the same request.
- `corpus_example(seed, index)` is the training and benchmark corpus: a pure function.
"""

from __future__ import annotations

import random
import re

from .programs import Spec, element, program, random_spec

ELEMENT_ALIASES = {"aluminum": "aluminium", "sulphur": "sulfur"}
COLOUR_SPELLINGS = {"gray": ["gray", "grey"]}
NUMBER_WORDS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
]  # fmt: skip
SPEEDS = {"very slowly": 12, "slowly": 8, "quickly": 2, "fast": 2, "very fast": 1}

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
    "{Subject}{details}: animate it",
    "{Subject}{details}, animated",
    "How about {subject}{details}?",
    "What about {subject}{details}?",
    "Can I get {subject}{details}?",
    "I'd like {subject}{details}",
    "{Verb} {subject}{details} for me",
    "Please, {subject}{details}",
    "My request: {subject}{details}",
]
ORBIT_VERBS = [
    "orbiting",
    "circling",
    "going round",
    "going around",
    "moving around",
    "spinning around",
    "travelling round",
    "going round and round",
]
NUCLEUS = ["nucleus", "nucleus", "core", "centre", "center"]
SPIN_VERBS = [
    "spinning", "rotating", "turning", "revolving", "that spins", "that rotates", "that keeps turning",
    "spinning round and round", "going round and round", "turning in circles", "spinning around",
]  # fmt: skip
# Imperatives that carry the spin themselves ("Rotate a green square"), so the subject is the
# still shape: a frame of their own, since "Draw rotate ..." is no request.
SPIN_IMPERATIVES = ["Rotate", "Spin", "Turn", "Twirl"]
SPIN_FRAMES = [
    "{Spin} {subject}{details}",
    "{Spin} {subject}{details}.",
    "{spin} {subject}{details}",
    "Please {spin} {subject}{details}.",
    "Can you {spin} {subject}{details}?",
    "Make {subject} {spin}{details}",
    "{Verb} {subject} and {spin} it{details}",
]


def number(n: int, rng: random.Random) -> str:
    return NUMBER_WORDS[n] if n < len(NUMBER_WORDS) and rng.random() < 0.5 else str(n)


def how_many(n: int, rng: random.Random) -> str:
    """A count before a noun: 'three', '3', and for one also 'a' or 'a single'."""
    return number(n, rng) if n != 1 or rng.random() < 0.5 else pick(rng, "a", "one", "a single")


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
        # The element as a modifier of another noun: what the electrons belong to or go around.
        f"the {name} atom's electrons",
        f"{name}'s electrons",
        f"the electrons of {article(name)} {name} atom",
        f"electrons {pick(rng, *ORBIT_VERBS)} {article(name)} {name} {pick(rng, *NUCLEUS)}",
        f"how the electrons move around {article(name)} {name} {pick(rng, *NUCLEUS)}",
        f"{article(name)} {name} {pick(rng, *NUCLEUS)} and its electrons",
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
                f"{electrons}: {count}",
                f"with {electrons}, {count} of them",
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
    count = how_many(n, rng)
    orbit = pick(rng, *ORBIT_VERBS, "around", "round")
    subject = pick(
        rng,
        f"{count} {noun} {orbit} {star}",
        f"a solar system with {count} {noun} {orbit} {star}",
        f"a solar system: {star} and {count} {noun}",
        f"{star} with {count} {noun} {orbit} it",
        f"{star} and {count} {noun} {orbit} it",
        f"{count} {noun} and {star}",
        f"{noun} {orbit} {star}, {number(n, rng)} of them" if plural else f"{count} {noun} and {star}",
        f"{star} and {noun}: {number(n, rng)}",
    )
    details = [timing("seconds", v["seconds"], rng, orbit, "orbit")] if "seconds" in named else []
    return subject, details


def balls_request(spec: Spec, rng: random.Random) -> tuple[str, list[str]]:
    v, named = spec.values, spec.named
    n = v["balls"]
    count = how_many(n, rng)
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
        f"{noun} bouncing, {number(n, rng)} of them" if n > 1 else f"{count} {both}",
        f"{both}: {number(n, rng)}",
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
        f"a {loader}, {n} {dots}",
        f"a {loader} with {dots}, {n} of them",
        f"a {loader} ({n} {dots})",
        f"a ring of {dots} {spin}, {n} in all",
    )
    details = [timing("seconds", v["seconds"], rng, spin, "turn")] if "seconds" in named else []
    return subject, details


def shape_request(spec: Spec, rng: random.Random, still: bool = False) -> tuple[str, list[str]]:
    """`still`: the shape alone, for a frame whose verb does the spinning."""
    v, named = spec.values, spec.named
    shape = v["shape"] if v["shape"] != "star" else pick(rng, "star", "star shape", "five-pointed star")
    c = colour_word(v["colour"], rng) if "colour" in named else ""
    spin = pick(rng, *SPIN_VERBS)
    coloured_shape = coloured(shape, c, rng) if c else shape
    if still:
        subject = pick(rng, f"a {coloured_shape}", f"a {c + ' ' if c else ''}{shape}", f"the {coloured_shape}")
    elif spin.startswith("that"):
        subject = f"a {coloured_shape} {spin}"
    else:
        before = f"a {spin} {c + ' ' if c else ''}{shape}" if " " not in spin else f"a {coloured_shape} {spin}"
        subject = pick(rng, before, f"a {coloured_shape} {spin}")
    details = []
    if "direction" in named:
        word = v["direction"] if v["direction"] == "clockwise" else pick(rng, "counterclockwise", "anticlockwise")
        details.append(pick(rng, word, f"turning {word}", f"going {word}", f"{word} please"))
    if "seconds" in named:
        verb = "turning" if still else spin.removeprefix("that ")
        details.append(timing("seconds", v["seconds"], rng, verb, "turn"))
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


# Words around a request that ask for nothing: a user's greeting, thanks or context. Trained on,
# they teach the model that words it does not know change nothing, rather than the scene.
OPENERS = [
    "hey,", "hi!", "hello,", "ok so", "so", "quick one:", "um,", "hey there,", "for my class:",
    "for a slide:", "for my website,", "just", "okay,", "yo", "hmm,", "task:", "idea:",
]  # fmt: skip
CLOSERS = [
    "thanks", "thank you!", "thx", "please!", "in SVG", "using SVG", "with JavaScript", "in HTML",
    "for a web page", "asap", ":)", "!", "if you can", "nothing fancy", "keep it simple",
    "make it look nice", "and animate it", "so it moves",
]  # fmt: skip
SKIPPABLE = {"the", "with", "of", "and", "that", "its", "in"}  # not "a": it can be the count


def noisy(text: str, rng: random.Random) -> str:
    """Sometimes: an opener, a closer, a lower-case request, a dropped small word, as people type."""
    if rng.random() < 0.2:
        text = f"{rng.choice(OPENERS)} {text[0].lower()}{text[1:]}"
    if rng.random() < 0.2:
        text = f"{text.rstrip('.')}{'' if rng.random() < 0.5 else ','} {rng.choice(CLOSERS)}"
    if rng.random() < 0.15:
        text = text.lower()
    words = text.split()
    small = [i for i, w in enumerate(words) if w.lower() in SKIPPABLE]
    if small and rng.random() < 0.15:
        del words[rng.choice(small)]
    return " ".join(words)


# Kinds whose subject's leading article is never a count, so it can go as people drop it
# ("Clock with red hands", "hexagon spinning"); in "a ball" or "a planet" the "a" is the count.
BARE = {"atom", "spinner", "shape", "clock"}


def request(spec: Spec, rng: random.Random) -> str:
    """One way of asking for `spec` in English."""
    still = spec.kind == "shape" and rng.random() < 0.3
    subject, details = shape_request(spec, rng, still=True) if still else REQUESTS[spec.kind](spec, rng)
    if spec.kind in BARE and rng.random() < 0.25:
        subject = re.sub(r"^(an?|the) ", "", subject)
    rng.shuffle(details)
    frame = rng.choice(SPIN_FRAMES if still else FRAMES)
    verb, spin = rng.choice(VERBS), rng.choice(SPIN_IMPERATIVES)
    capital = subject[0].upper() + subject[1:]
    fields = dict(Verb=verb, verb=verb.lower(), Spin=spin, spin=spin.lower(), subject=subject, Subject=capital)
    text = frame.format(**fields, details=join(details, rng))
    return noisy(" ".join(text.split()), rng)


def corpus_example(seed: int, index: int) -> tuple[Spec, str, str]:
    """The index-th (spec, request, program) of the corpus with this seed: a pure function, so a
    resumed training run and a held-back evaluation set are both exact."""
    rng = random.Random(seed * 1_000_003 + index)
    spec = random_spec(rng)
    return spec, request(spec, rng), program(spec)


def corpus_pair(seed: int, index: int) -> tuple[str, str]:
    return corpus_example(seed, index)[1:]
