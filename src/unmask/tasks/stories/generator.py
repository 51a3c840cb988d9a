"""The story generator: a story casts its hero, helper and props, then tells one plot's beats.

Notable features:
- Stories stay coherent without a second grammar: a story binds symbols such as `<hero_noun>`
  or `<object>` to a few of their derivations and forbids symbols it has no value for (a hero
  without a name forbids `<hero_name>`). Later sentences then say "the fox", "Pip" or "she" and
  are still plain derivations of the shared grammar; every binding is checked against it.
- Everything random draws from one `random.Random`, so a seed fixes a whole corpus.
- Every story passes the story checker (checker.py, tested): characters are introduced before
  they are named, pronouns follow the cast's genders, it ends with an ending, and a sentence drawn
  twice is drawn again (from a side stream, so stories without a repeat are as they were).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from .grammar import derives, expand, pruned_rules, realize
from .lexicon import (
    ANIMAL_KINDS,
    CHILD_KIND,
    CHILD_KINDS,
    GOALS,
    HELPER_PEOPLE,
    HELPER_PEOPLE_MOVES,
    LEXICON,
    MAKES,
    NAMES_FOR,
)

# ---------------------------------------------------------------------------------------------
# A story: what it has bound and forbidden, and how it draws a sentence.
# ---------------------------------------------------------------------------------------------


@dataclass
class _Story:
    """What one story has fixed: symbol -> allowed derivations, and symbols it must not use."""

    bindings: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    forbidden: set[str] = field(default_factory=set)

    def bind(self, symbol: str, *options: str) -> None:
        """Restrict `symbol` to `options` (each a space-separated derivation the grammar allows)."""
        derivations = tuple(tuple(option.split()) for option in options)
        for tokens in derivations:
            if not derives(symbol, tokens):
                raise ValueError(f"<{symbol}> does not derive {' '.join(tokens)!r}")
        self.bindings[symbol] = derivations


def _sentence(rule: str, story: _Story, rng: random.Random) -> list[str]:
    """One sentence (lowercase-form tokens) of `rule` that respects the story's bindings."""
    rules = pruned_rules(frozenset(story.forbidden))
    tokens: list[str] = []
    expand(rules[rule], story.bindings, rules, rng, tokens)
    return tokens


# ---------------------------------------------------------------------------------------------
# Casting: the hero, the helper, the props and the setting a story binds.
# ---------------------------------------------------------------------------------------------


def _pick_kind(rng: random.Random) -> tuple[str, dict, str | None]:
    """A hero: (noun, its kind's homes/regions/moves, fixed pronoun or None)."""
    # Children make up about a fifth of heroes, as in the picture books this imitates.
    if rng.random() < 0.2:
        noun = rng.choice(list(CHILD_KINDS))
        return noun, CHILD_KIND, CHILD_KINDS[noun]
    kind = ANIMAL_KINDS[rng.choice(list(ANIMAL_KINDS))]
    return rng.choice(kind["nouns"]), kind, None


def _pick_helper(rng: random.Random, avoid: str) -> tuple[str, tuple[str, ...], str | None]:
    """A helper: (noun, how it moves, fixed pronoun or None), never the hero's own kind."""
    # Mostly animals; a grown-up now and then keeps the cast varied.
    while True:
        if rng.random() < 0.25:
            noun = rng.choice(list(HELPER_PEOPLE))
            moves, pronoun = HELPER_PEOPLE_MOVES, HELPER_PEOPLE[noun]
        else:
            kind = ANIMAL_KINDS[rng.choice(list(ANIMAL_KINDS))]
            noun, moves, pronoun = rng.choice(kind["nouns"]), kind["moves"], None
        if noun != avoid:
            return noun, moves, pronoun


_PRONOUNS = {"he": ("he", "his", "him", "himself"), "she": ("she", "her", "her", "herself")}
# Share of heroes and helpers introduced with a name ("a fox named Pip").
_NAMED_SHARE = 0.6


def _cast_name(story: _Story, role: str, pronoun: str, rng: random.Random, avoid: str) -> str:
    """Name a role (or leave it nameless) and forbid the introduction that would not fit."""
    name = rng.choice([n for n in NAMES_FOR[pronoun] if n != avoid])
    if rng.random() < _NAMED_SHARE:
        story.bind(f"{role}_name", name)
        story.forbidden.add(f"{role}_intro_plain")
        return name
    story.forbidden.add(f"{role}_name")
    return ""


def _cast_hero(story: _Story, rng: random.Random) -> tuple[str, str]:
    """Bind the hero; returns (noun, name or "")."""
    hero, kind, pronoun = _pick_kind(rng)
    pronoun = pronoun or rng.choice(tuple(_PRONOUNS))
    for symbol, word in zip(("he", "his", "him", "himself"), _PRONOUNS[pronoun]):
        story.bind(symbol, word)
    story.bind("hero_noun", hero)
    story.bind("hero_adj", rng.choice(LEXICON["hero_adj"]))
    story.bind("home_noun", rng.choice(kind["homes"]))
    story.bind("region", rng.choice(kind["regions"]))
    story.bind("hero_move", *kind["moves"])
    story.bind("hero_family", rng.choice(LEXICON["family"]))
    return hero, _cast_name(story, "hero", pronoun, rng, avoid="")


def _cast_helper(story: _Story, rng: random.Random, hero: str, hero_name: str) -> str:
    """Bind a helper of another kind and name than the hero; returns its noun."""
    helper, moves, pronoun = _pick_helper(rng, avoid=hero)
    pronoun = pronoun or rng.choice(tuple(_PRONOUNS))
    for symbol, word in zip(("helper_he", "helper_his", "helper_him"), _PRONOUNS[pronoun]):
        story.bind(symbol, word)
    story.bind("helper_noun", helper)
    story.bind("helper_adj", rng.choice(LEXICON["helper_adj"]))
    story.bind("helper_move", *moves)
    _cast_name(story, "helper", pronoun, rng, avoid=hero_name)
    return helper


def _cast_props(story: _Story, rng: random.Random, hero: str, helper: str) -> None:
    """The treasured object, the stranger in the lonely and rescue plots, and the fear."""
    story.bind("object", rng.choice(LEXICON["object"]))
    story.bind("object_adj", rng.choice(LEXICON["object_adj"]))
    story.bind("other_noun", rng.choice([a for a in LEXICON["animal"] if a not in (hero, helper)]))
    story.bind("other_adj", rng.choice(LEXICON["other_adj"]))
    story.bind("fear", " ".join(_sentence("fear", story, rng)))
    story.bind("stuck_where", " ".join(_sentence("stuck_where", story, rng)))


# Weather words a story may use; a few keep one story from being both sunny and snowy too often.
_WEATHER_PER_STORY = 3


def _cast_setting(story: _Story, rng: random.Random) -> None:
    story.bind("season", rng.choice(LEXICON["season"]))
    story.bind("weather_adj", *rng.sample(LEXICON["weather_adj"], _WEATHER_PER_STORY))


def _cast_goal(story: _Story, rng: random.Random) -> None:
    goal = rng.choice(GOALS)
    story.bind("goal_verb", goal["verb"])
    story.bind("goal_past", goal["past"])
    story.bind("goal_target", rng.choice(goal["targets"]))
    story.bind("goal_adj", rng.choice(goal["adjectives"]))
    story.bind("obstacle_adj", rng.choice(goal["blocking"]))


def _cast_gift(story: _Story, rng: random.Random) -> None:
    make = rng.choice(MAKES)
    story.bind("make_verb", make["verb"])
    story.bind("make_past", make["past"])
    story.bind("made_thing", rng.choice(make["things"]))
    story.bind("made_adj", *make["adjectives"])
    materials = make["materials"]
    story.bind("material", *materials)
    story.bind("needs", "{} , {} and {}".format(*rng.sample(materials, 3)))
    story.bind("made_fail", rng.choice(make["failures"]))


def _cast(rng: random.Random) -> _Story:
    """Bind a hero, a helper and the props that every plot may use."""
    story = _Story()
    hero, hero_name = _cast_hero(story, rng)
    helper = _cast_helper(story, rng, hero, hero_name)
    _cast_props(story, rng, hero, helper)
    _cast_setting(story, rng)
    _cast_goal(story, rng)
    _cast_gift(story, rng)
    return story


# ---------------------------------------------------------------------------------------------
# Plots and stories.
# ---------------------------------------------------------------------------------------------

# A plot is a list of beats: (chance the beat is told, sentence rules to pick one from).
_PLOTS = {
    "lost": (
        (1.0, ("opening",)),
        (0.4, ("describe",)),
        (1.0, ("lost_owns",)),
        (0.2, ("weather",)),
        (1.0, ("lost_loses",)),
        (0.4, ("sad",)),
        (0.5, ("lost_asks",)),
        (1.0, ("lost_search",)),
        (0.3, ("lost_search",)),
        (1.0, ("helper_arrives",)),
        (0.4, ("helper_asks",)),
        (0.3, ("lost_explains",)),
        (0.8, ("lost_helper_offers",)),
        (0.4, ("lost_search_together",)),
        (1.0, ("lost_finds",)),
        (0.5, ("thanks",)),
        (0.3, ("glad",)),
        (1.0, ("lost_ending",)),
        (0.08, ("the_end",)),
    ),
    "lonely": (
        (1.0, ("opening",)),
        (0.4, ("describe",)),
        (1.0, ("lonely_state",)),
        (0.5, ("lonely_wish",)),
        (0.2, ("weather",)),
        (1.0, ("lonely_sets_out",)),
        (1.0, ("lonely_meets_other",)),
        (0.8, ("lonely_asks",)),
        (1.0, ("lonely_rejected",)),
        (0.4, ("sad",)),
        (1.0, ("lonely_meets_helper", "helper_arrives")),
        (0.8, ("lonely_helper_says",)),
        (0.5, ("lonely_hero_answers",)),
        (1.0, ("lonely_play",)),
        (0.3, ("glad",)),
        (1.0, ("lonely_ending",)),
        (0.08, ("the_end",)),
    ),
    "goal": (
        (1.0, ("opening",)),
        (0.4, ("describe",)),
        (0.2, ("weather",)),
        (1.0, ("goal_wants",)),
        (0.4, ("goal_says",)),
        (1.0, ("goal_obstacle",)),
        (1.0, ("goal_tries",)),
        (0.3, ("sad",)),
        (1.0, ("helper_arrives",)),
        (0.4, ("helper_asks",)),
        (0.4, ("goal_explains",)),
        (1.0, ("goal_helper_plan",)),
        (1.0, ("goal_succeeds",)),
        (0.5, ("goal_after",)),
        (0.3, ("thanks",)),
        (1.0, ("goal_ending",)),
        (0.08, ("the_end",)),
    ),
    "scared": (
        (1.0, ("opening",)),
        (0.4, ("describe",)),
        (1.0, ("scared_fear",)),
        (1.0, ("scared_event",)),
        (0.3, ("weather",)),
        (1.0, ("scared_reacts",)),
        (0.4, ("scared_reacts",)),
        (1.0, ("helper_arrives",)),
        (0.4, ("helper_asks",)),
        (1.0, ("scared_helper_says",)),
        (1.0, ("scared_helper_acts",)),
        (1.0, ("scared_calm",)),
        (0.3, ("thanks",)),
        (1.0, ("scared_ending",)),
        (0.08, ("the_end",)),
    ),
    "gift": (
        (1.0, ("opening",)),
        (0.4, ("describe",)),
        (0.2, ("weather",)),
        (1.0, ("gift_wants",)),
        (0.7, ("gift_plan",)),
        (1.0, ("gift_attempt",)),
        (0.4, ("sad",)),
        (1.0, ("helper_arrives",)),
        (0.3, ("helper_asks",)),
        (1.0, ("gift_helper",)),
        (1.0, ("gift_success",)),
        (1.0, ("gift_gives",)),
        (0.3, ("glad",)),
        (1.0, ("gift_ending",)),
        (0.08, ("the_end",)),
    ),
    "rescue": (
        (1.0, ("opening",)),
        (0.4, ("describe",)),
        (0.2, ("weather",)),
        (1.0, ("rescue_hears",)),
        (1.0, ("rescue_finds",)),
        (0.7, ("rescue_plea",)),
        (1.0, ("rescue_tries",)),
        (0.4, ("rescue_tries",)),
        (1.0, ("helper_arrives",)),
        (0.3, ("helper_asks",)),
        (1.0, ("rescue_plan",)),
        (1.0, ("rescue_done",)),
        (0.7, ("rescue_thanks",)),
        (0.3, ("thanks",)),
        (1.0, ("rescue_ending",)),
        (0.08, ("the_end",)),
    ),
}

# Bounds a story must meet; drafts outside them are redrawn from the same stream.
MIN_SENTENCES, MAX_SENTENCES = 6, 14
MIN_WORDS, MAX_WORDS = 90, 220
# Draws after a sentence that repeats an earlier one before its beat is skipped; about 1 story in
# 700 repeats a sentence, and a second draw almost always differs.
_REDRAWS = 8


def _draft(rng: random.Random) -> list[list[str]]:
    story = _cast(rng)
    plot = _PLOTS[rng.choice(list(_PLOTS))]
    sentences: list[list[str]] = []
    for chance, rules in plot:
        if chance >= 1.0 or rng.random() < chance:
            sentence = _sentence(rng.choice(rules), story, rng)
            if sentence in sentences:
                sentence = _redraw(sentence, sentences, rules, story)
            if sentence is not None:
                sentences.append(sentence)
    return sentences


def _redraw(sentence: list[str], told: list[list[str]], rules: tuple[str, ...], story: _Story) -> list[str] | None:
    """Another sentence for a beat that repeated an earlier one (checker.py forbids repeats), or None.

    A beat told twice ("lost_search", "rescue_tries") can draw the same sentence again. The new
    draw comes from a stream seeded by the repeated sentence, so the story stream itself is
    untouched: every story without a repeat is the one the grammar wrote before this rule.
    """
    rng = random.Random(" ".join(sentence))
    for _ in range(_REDRAWS):
        sentence = _sentence(rng.choice(rules), story, rng)
        if sentence not in told:
            return sentence
    return None


def _word_count(tokens: list[str]) -> int:
    return sum(1 for tok in tokens if tok[0].isalpha())


def generate_story(rng: random.Random) -> str:
    """Write one story of 6-14 sentences and 90-220 words, drawing all choices from `rng`."""
    while True:
        sentences = _draft(rng)
        words = sum(_word_count(s) for s in sentences)
        if MIN_SENTENCES <= len(sentences) <= MAX_SENTENCES and MIN_WORDS <= words <= MAX_WORDS:
            return " ".join(realize(s) for s in sentences)


def iter_corpus(seed: int = 0) -> Iterator[str]:
    """An endless stream of stories, the same for the same seed."""
    rng = random.Random(seed)
    while True:
        yield generate_story(rng)


def generate_corpus(n_stories: int, seed: int = 0) -> list[str]:
    """The first `n_stories` stories of `iter_corpus(seed)`."""
    return list(itertools.islice(iter_corpus(seed), n_stories))
