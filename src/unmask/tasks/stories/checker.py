"""The story checker: does a whole story keep its characters, its pronouns and its ending straight?

The recognizer judges sentences one by one, so it cannot see a girl called Archie who is "he" two
sentences later, a helper named before anyone met it, a sentence told twice, or a story cut off
mid-sentence. This module checks four rules over the whole text, on the surface form alone, so it
runs on a model's output as well as on the grammar's own stories (where all four hold, tested):

- `introduced`: every character is introduced ("a fox named Pip", "there was a dog called Rex",
  "along came an owl") before a name or "the <noun>" refers to it; a name is introduced once, and
  "Pip was a silly owl" must name the noun Pip was introduced with.
- `pronouns`: he/him/his/himself and she/her/herself agree with the characters' genders. A gender
  comes from the noun (girl, king), the name (Mia, Max; pet names such as Pip suit either), "It
  was a mole" and "its" (the grammar's strangers are "it"), and the pronouns themselves. Two
  rules, both exact on the grammar's stories: some assignment of genders must give every pronoun
  a character of its gender introduced before it; and in a sentence about one character (it comes
  first, not after a preposition; no other character, no object him/her), every pronoun before
  ", and" is that one's.
- `repeated`: no sentence occurs twice.
- `ending`: the last sentence is complete and is one of the grammar's endings (or "The end." right
  after one).

Notable features:
- Genders are solved as a tiny constraint problem (a few characters, he/she/it each), so
  "a fox ... she ... an owl ... he" is fine while "a girl ... he" with no boy around is not.
- A surface reading cannot resolve every pronoun: with two characters of one gender either may
  be meant. On the grammar's stories one flipped pronoun is caught about 61% of the time (tested).
- A failure names its rule, the sentence (0-based) and what went wrong; all rules run on every
  story, so a corpus gets a share per rule.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from .grammar import _SENTENCE_RULES, articles_agree, derives
from .lexicon import CHILD_KINDS, HELPER_PEOPLE, LEXICON, NAMES_FOR
from .recognizer import _TEXT_TOKEN, _normalized_tokens, split_sentences

CHECKS = ("introduced", "pronouns", "repeated", "ending")

_NAMES = frozenset(LEXICON["name"])
_NOUNS = frozenset(LEXICON["hero_noun"]) | frozenset(LEXICON["helper_noun"]) | frozenset(LEXICON["animal"])
_NOUN_GENDER = {**CHILD_KINDS, **{noun: g for noun, g in HELPER_PEOPLE.items() if g}}
# Words that may stand between an article and the noun it introduces ("a very silly mouse").
_MODIFIERS = frozenset(w for k, words in LEXICON.items() if k.endswith("_adj") or k == "trait" for w in words) | {
    "very"
}
# Nouns a character noun may modify ("the giant oak tree"): then it is not a character.
_MODIFIED = frozenset(w for k in ("site", "cover", "tree_kind", "container", "field_place") for w in LEXICON[k]) | {
    "tree",
    "path",
}
# Character nouns that are also other words ("count the sheep", "the giant oak"): "the sheep"
# refers to a character only once a sheep was introduced.
_AMBIGUOUS = _NOUNS & frozenset(
    w for k, words in LEXICON.items() if k not in ("hero_noun", "helper_noun", "animal", "other_noun") for w in words
)
_PREPOSITIONS = frozenset({"of", "to", "with", "from", "about", "for", "by", "beside", "near"})
_PRONOUN_GENDER = {
    "he": "he",
    "him": "he",
    "his": "he",
    "himself": "he",
    "she": "she",
    "her": "she",
    "herself": "she",
    "its": "it",  # only in a sentence about one character: "The cow shook its head."
}
# A character of no known gender; "it" only once "its" or "It was a ..." says so.
_ANY = frozenset(("he", "she", "it"))
_OBJECT_PRONOUNS = frozenset({"him", "her"})  # "her" may be either character's: the subject rule skips it
_ENDINGS = tuple(rule for rule in _SENTENCE_RULES if rule.endswith("_ending"))
_TERMINAL = frozenset('.!?"')
_MAX_ASSIGNMENTS = 20_000


# The genders a name suits: she_names "she", he_names "he", pet names both.
_NAME_GENDERS = {name: frozenset(g for g, names in NAMES_FOR.items() if name in names) for name in _NAMES}


@dataclass(frozen=True)
class Failure:
    """One broken rule: which (`CHECKS`), in which sentence (0-based), and what."""

    check: str
    sentence: int
    detail: str


@dataclass(frozen=True)
class StoryCheck:
    """The verdict on one story: its sentences and every failure found."""

    sentences: tuple[str, ...]
    failures: tuple[Failure, ...]

    @property
    def passed(self) -> bool:
        return not self.failures

    def failed(self, check: str) -> bool:
        return any(f.check == check for f in self.failures)


@dataclass
class _Character:
    noun: str
    name: str | None
    genders: frozenset[str]
    at: tuple[int, int]  # (sentence, token) of the introduction


@dataclass
class _Reading:
    """What a pass over the story found: characters, pronoun constraints and failures."""

    characters: list[_Character] = field(default_factory=list)
    # Each constraint: (sentence, pronoun, gender, candidate character indices).
    constraints: list[tuple[int, str, str, tuple[int, ...]]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    introductions: set[int] = field(default_factory=set)  # sentences that introduce a character


def _words(sentence: str) -> list[str]:
    """Tokens with sentence capitals folded to lowercase; names keep theirs."""
    return [tok if tok in _NAMES or tok == "I" else tok.lower() for tok in _TEXT_TOKEN.findall(sentence)]


def _head(tokens: list[str], k: int) -> int | None:
    """Index of the character noun of a noun phrase whose determiner is at k, or None."""
    j = k + 1
    while j < len(tokens) and j - k <= 3 and tokens[j] in _MODIFIERS and tokens[j] not in _NOUNS:
        j += 1
    if j >= len(tokens) or tokens[j] not in _NOUNS:
        return None
    after = tokens[j + 1] if j + 1 < len(tokens) else ""
    if after in _MODIFIED or after == "were":  # "the giant oak", "the sheep were bleating"
        return None
    return j


def _read(sentences: list[list[str]]) -> _Reading:
    r = _Reading()
    by_name: dict[str, int] = {}
    by_noun: dict[str, int] = {}

    def fail(check: str, s: int, detail: str) -> None:
        r.failures.append(Failure(check, s, detail))

    for s, tokens in enumerate(sentences):
        quoted = False
        # Outside quotes, in order: ("who", character, after a preposition) or ("pronoun", word, False).
        mentions: list[tuple[str, object, bool]] = []
        skip_until = -1
        for k, tok in enumerate(tokens):
            if tok == '"':
                quoted = not quoted
                continue
            if k <= skip_until:
                continue
            if tok in ("a", "an", "the") and (j := _head(tokens, k)) is not None:
                noun = tokens[j]
                skip_until = j
                if tok == "the":
                    if noun not in by_noun and noun in _AMBIGUOUS:
                        continue  # "count the sheep": sheep to count, not a character
                    if noun not in by_noun:
                        fail("introduced", s, f"'the {noun}' was never introduced")
                        by_noun[noun] = len(r.characters)
                        r.characters.append(_Character(noun, None, _ANY, (s, k)))
                    who = by_noun[noun]
                elif k >= 2 and tokens[k - 1] in ("was", "is") and tokens[k - 2] in _NAMES:
                    # "Pip was a silly owl": a description of Pip, not a new character.
                    who = by_name.get(tokens[k - 2])
                    if who is not None and not r.characters[who].noun:
                        r.characters[who].noun = noun  # a name never introduced: now it has a noun
                    if who is not None and r.characters[who].noun != noun:
                        fail(
                            "introduced",
                            s,
                            f"{tokens[k - 2]} was introduced as a {r.characters[who].noun}, not a {noun}",
                        )
                    if who is None:
                        continue
                elif k > 0 and tokens[k - 1] == "about":
                    continue  # "a story about a brave zebra": a character of that story, not this one
                else:
                    genders = frozenset((_NOUN_GENDER[noun],)) if noun in _NOUN_GENDER else _ANY
                    if tokens[max(k - 2, 0) : k] == ["it", "was"]:
                        genders = frozenset(("it",))  # "It was a mole, stuck in the mud."
                    name = None
                    if j + 2 < len(tokens) and tokens[j + 1] in ("named", "called") and tokens[j + 2] in _NAMES:
                        name = tokens[j + 2]
                        skip_until = j + 2
                        if name in by_name:
                            fail("introduced", s, f"{name} is introduced a second time")
                        if not genders & _NAME_GENDERS[name]:
                            fail("pronouns", s, f"a {noun} cannot be called {name}")
                        # After a clash either gender may follow: the clash is the one failure.
                        genders = (genders & _NAME_GENDERS[name]) or (genders | _NAME_GENDERS[name])
                    who = len(r.characters)
                    r.characters.append(_Character(noun, name, genders, (s, k)))
                    r.introductions.add(s)
                    by_noun[noun] = who
                    if name:
                        by_name[name] = who
                if not quoted:
                    mentions.append(("who", who, k > 0 and tokens[k - 1] in _PREPOSITIONS))
            elif tok in _NAMES:
                if tok not in by_name:
                    fail("introduced", s, f"{tok} was never introduced")
                    by_name[tok] = len(r.characters)
                    r.characters.append(_Character("", tok, _NAME_GENDERS[tok], (s, k)))
                if not quoted:
                    mentions.append(("who", by_name[tok], k > 0 and tokens[k - 1] in _PREPOSITIONS))
            elif tok in _PRONOUN_GENDER:
                gender = _PRONOUN_GENDER[tok]
                candidates = tuple(i for i, c in enumerate(r.characters) if c.at <= (s, k))
                r.constraints.append((s, tok, gender, candidates))
                if not quoted:
                    mentions.append(("pronoun", tok, False))
            elif tok == "its" and not quoted:
                mentions.append(("its", tok, False))
            elif tok == "and" and tokens[k - 1] == "," and not quoted:
                mentions.append(("and", tok, False))
        _subject_rule(r, s, mentions)
    return r


def _subject_rule(r: _Reading, s: int, mentions: list[tuple[str, object, bool]]) -> None:
    """In a sentence about one character, every pronoun outside quotes is that character's.

    The character must come first and not after a preposition: in "With the help of Poppy, he
    visited the sea" the sentence is about "he", not Poppy. Only pronouns before ", and" count.
    """
    if not mentions:
        return
    whos = {m for kind, m, _ in mentions if kind == "who"}
    # A new clause may have a new subject: "At last, the mole was free, and she cheered."
    kinds = [kind for kind, _, _ in mentions]
    first_clause = mentions[: kinds.index("and")] if "and" in kinds else mentions
    pronouns = [m for kind, m, _ in first_clause if kind not in ("who", "and")]
    if len(whos) > 1 or _OBJECT_PRONOUNS & set(pronouns) or not pronouns:
        return
    if whos:
        (who,) = whos
        if mentions[0][0] != "who" or mentions[0][2]:
            return
        for word in pronouns:
            r.constraints.append((s, word, _PRONOUN_GENDER[word], (who,)))
    elif "its" not in pronouns:
        first = _PRONOUN_GENDER[pronouns[0]]
        for word in pronouns[1:]:
            if _PRONOUN_GENDER[word] != first:
                r.failures.append(
                    Failure("pronouns", s, f"'{pronouns[0]}' and '{word}' in a sentence about one character")
                )
                return


def _solve_genders(r: _Reading) -> None:
    """Add a failure at the first pronoun no assignment of genders can satisfy.

    Assignments cover only the characters constraints have named so far, and each constraint
    filters them, so the set stays small; past `_MAX_ASSIGNMENTS` (a model's text with a crowd of
    characters) the remaining pronouns are let pass.
    """
    involved: list[int] = []
    assignments: set[tuple[str, ...]] = {()}
    for s, word, gender, candidates in sorted(r.constraints, key=lambda c: c[0]):
        if not candidates:
            r.failures.append(Failure("pronouns", s, f"'{word}' before any character"))
            return
        new = [i for i in candidates if i not in involved]
        if new:
            involved += new
            domains = [sorted(r.characters[i].genders) for i in new]
            assignments = {a + b for a in assignments for b in itertools.product(*domains)}
        slots = [involved.index(i) for i in candidates]
        kept = {a for a in assignments if any(a[j] == gender for j in slots)}
        if not kept:
            who = ", ".join(_describe(r.characters[i]) for i in candidates)
            r.failures.append(Failure("pronouns", s, f"'{word}' fits none of: {who}"))
            return
        if len(kept) > _MAX_ASSIGNMENTS:
            return
        assignments = kept


def _describe(c: _Character) -> str:
    genders = "/".join(sorted(c.genders))
    return f"{c.name or 'the ' + c.noun} ({genders})" if c.noun else f"{c.name} ({genders})"


def _ending(sentences: list[str]) -> Failure | None:
    if not sentences:
        return Failure("ending", 0, "no sentences")
    last = len(sentences) - 1
    if sentences[last][-1] not in _TERMINAL:
        return Failure("ending", last, "the last sentence is cut off")
    tokens = _normalized_tokens(sentences[last])
    if tokens == ["the", "end", "."] and last > 0:
        last -= 1
        tokens = _normalized_tokens(sentences[last])
    if tokens is None or not articles_agree(tokens) or not any(derives(rule, tokens) for rule in _ENDINGS):
        return Failure("ending", last, "the story does not end with an ending")
    return None


def check_story(text: str) -> StoryCheck:
    """Check one story against all four rules (`CHECKS`)."""
    sentences = split_sentences(text)
    reading = _read([_words(s) for s in sentences])
    _solve_genders(reading)
    failures = reading.failures
    seen: dict[str, int] = {}
    for s, sentence in enumerate(sentences):
        if sentence in seen:
            failures.append(Failure("repeated", s, f"sentence {seen[sentence]} again: {sentence!r}"))
        seen.setdefault(sentence, s)
    if (end := _ending(sentences)) is not None:
        failures.append(end)
    order = {check: i for i, check in enumerate(CHECKS)}
    return StoryCheck(tuple(sentences), tuple(sorted(failures, key=lambda f: (order[f.check], f.sentence))))


def introductions(sentences: list[str]) -> set[int]:
    """Indices of the sentences that introduce a character ("Then Pip met an owl named Max.").

    A training row that drops sentences to fit its canvas keeps these, so that every name and
    "the <noun>" it keeps still refers to someone the row introduced.
    """
    return _read([_words(s) for s in sentences]).introductions


def anchors(sentences: list[str]) -> set[int]:
    """The sentences a story shortened to fit a canvas must keep to pass every rule: the first,
    each introduction, and the ending (with the one before a closing "The end.")."""
    keep = {0, len(sentences) - 1} | introductions(sentences) if sentences else set()
    if len(sentences) > 1 and _normalized_tokens(sentences[-1]) == ["the", "end", "."]:
        keep.add(len(sentences) - 2)
    return keep


def story_scores(texts: Iterable[str]) -> dict:
    """Share of stories passing every rule, and per rule the share failing it.

    Returns:
        {"stories": n, "passed": share, "failed": {check: share for check in CHECKS}}.
    """
    results = [check_story(t) for t in texts]
    n = len(results)
    return {
        "stories": n,
        "passed": sum(r.passed for r in results) / n if n else 0.0,
        "failed": {check: (sum(r.failed(check) for r in results) / n if n else 0.0) for check in CHECKS},
    }
