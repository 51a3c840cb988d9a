"""The lexicon: the word lists in lexicon.json, and the word classes the grammar draws from them.

Every word a story can contain is listed in lexicon.json or in a template (grammar.py). The JSON
holds plain data; this module reads it and derives the word classes (`LEXICON`). Its keys:

- `she_names`, `he_names`, `pet_names`: names are proper nouns, so none may equal a lowercase
  vocabulary word (tested): a capitalised "Daisy" at the start of a sentence must mean the name,
  never a flower. Names are grouped by the pronoun they suit; pet names suit either.
- `animal_kinds`: animals grouped by where they live and how they move (nouns, homes, regions,
  moves), so a story keeps a fox in a den and lets a duck swim. The recognizer is lenient here
  and accepts any animal in any home.
- `child_kinds`, `child_kind`: children are heroes only; their noun fixes the pronoun. The
  second key is their homes, regions and moves, shaped like one animal kind.
- `helper_people`, `helper_people_moves`: grown-ups who may come to help; a gendered noun fixes
  the pronoun (null: the story draws one).
- `objects`: things a hero can treasure, lose, carry or find.
- `foods`: singular to plural; the singular follows "a"/"an", the plural fills lists and likings.
- `goals`: a verb with the targets it suits and the adjectives that describe and block them.
- `makes`: presents to make for family: the verb, things, adjectives, materials (phrases) and
  ways to go wrong (phrases).
- `words`: the other word classes, by the name templates use for them.
- `role_aliases`: story roles reuse general classes under their own names, so that a story can
  bind them.
"""

from __future__ import annotations

import json
from importlib import resources


def _frozen(value):
    """JSON lists become tuples, so that no table can be changed by accident."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


_DATA = _frozen(json.loads(resources.files(__package__).joinpath("lexicon.json").read_text(encoding="utf-8")))

NAMES_FOR: dict[str, tuple[str, ...]] = {
    "she": _DATA["she_names"] + _DATA["pet_names"],
    "he": _DATA["he_names"] + _DATA["pet_names"],
}
ANIMAL_KINDS: dict[str, dict[str, tuple[str, ...]]] = _DATA["animal_kinds"]
CHILD_KINDS: dict[str, str] = _DATA["child_kinds"]
CHILD_KIND: dict[str, tuple[str, ...]] = _DATA["child_kind"]
HELPER_PEOPLE: dict[str, str | None] = _DATA["helper_people"]
HELPER_PEOPLE_MOVES: tuple[str, ...] = _DATA["helper_people_moves"]
GOALS: tuple[dict, ...] = _DATA["goals"]
MAKES: tuple[dict, ...] = _DATA["makes"]
ROLE_ALIASES: dict[str, str] = _DATA["role_aliases"]


def _words(*lists) -> tuple[str, ...]:
    """The words of all lists in first-seen order, without repeats."""
    return tuple(dict.fromkeys(word for words in lists for word in words))


def _build_lexicon() -> dict[str, tuple[str, ...]]:
    foods = _DATA["foods"]
    lexicon = {
        "name": _words(_DATA["she_names"], _DATA["he_names"], _DATA["pet_names"]),
        "object": _words(_DATA["objects"]),
        "food": _words(foods),
        "food_plural": _words(foods.values()),
    }
    lexicon.update((name, _words(words)) for name, words in _DATA["words"].items())
    kinds = list(ANIMAL_KINDS.values()) + [CHILD_KIND]
    animals = [kind["nouns"] for kind in ANIMAL_KINDS.values()]
    lexicon["animal"] = _words(*animals)
    lexicon["hero_noun"] = _words(*animals, CHILD_KINDS)
    lexicon["helper_noun"] = _words(*animals, HELPER_PEOPLE)
    lexicon["home_noun"] = _words(*(kind["homes"] for kind in kinds))
    lexicon["region"] = _words(*(kind["regions"] for kind in kinds))
    lexicon["move"] = _words(*(kind["moves"] for kind in kinds), HELPER_PEOPLE_MOVES)
    lexicon["goal_verb"] = _words(goal["verb"] for goal in GOALS)
    lexicon["goal_past"] = _words(goal["past"] for goal in GOALS)
    lexicon["goal_target"] = _words(*(goal["targets"] for goal in GOALS))
    lexicon["goal_adj"] = _words(*(goal["adjectives"] for goal in GOALS))
    lexicon["obstacle_adj"] = _words(*(goal["blocking"] for goal in GOALS))
    lexicon["make_verb"] = _words(make["verb"] for make in MAKES)
    lexicon["make_past"] = _words(make["past"] for make in MAKES)
    lexicon["made_thing"] = _words(*(make["things"] for make in MAKES))
    lexicon["made_adj"] = _words(*(make["adjectives"] for make in MAKES))
    for alias, source in ROLE_ALIASES.items():
        lexicon[alias] = lexicon[source]
    return lexicon


# Word class name -> its words, in first-seen order.
LEXICON: dict[str, tuple[str, ...]] = _build_lexicon()
