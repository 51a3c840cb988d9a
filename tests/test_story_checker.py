"""Tests for the story checker: each rule catches hand-made bad stories, and the grammar's own pass.

The rules must be exact on the grammar's stories (every one passes), so the corpus tests are
exhaustive over a few thousand stories; the mutation tests then show that a rule sees what it
claims: a name nobody introduced, a duplicated sentence and a story cut mid-sentence are caught
every time. A single flipped pronoun is caught about 61% of the time on these stories (the rest
fit another character of that gender, which a surface reading cannot rule out); we demand 55%.
"""

import random
import re

import pytest

from unmask.tasks.stories import (
    CHECKS,
    check_story,
    generate_corpus,
    generator,
    split_sentences,
    story_scores,
)
from unmask.tasks.stories.lexicon import NAMES_FOR

GOOD = (
    "Once upon a time, a girl named Mia lived in a cottage. She loved to sing songs. "
    "One day, she could not find her kite. Then Mia met an owl named Max. "
    'He asked, "What is wrong, Mia?" Max found the kite by the pond and gave it back to her. '
    "And Mia never lost her kite again."
)
RESCUE = (
    "Once upon a time, a fox named Pip lived in a den. One day, Pip heard a cry for help by the river. "
    "There was a mole stuck in the mud. Then Pip met an owl called Quinn. "
    "Together, Pip and Quinn pulled the mole free. Pip felt proud that he had helped the mole."
)


def failures(text: str, check: str) -> list:
    return [f for f in check_story(text).failures if f.check == check]


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return generate_corpus(2000, seed=4242)  # a seed neither training (0) nor validation (1) uses


def test_the_grammar_writes_only_consistent_stories(corpus):
    bad = [(story, result.failures) for story in corpus if not (result := check_story(story)).passed]
    assert bad == []
    assert story_scores(corpus[:200]) == {"stories": 200, "passed": 1.0, "failed": dict.fromkeys(CHECKS, 0.0)}


def test_good_stories_pass():
    for story in (GOOD, RESCUE, GOOD + " The end."):
        assert check_story(story).passed, check_story(story).failures
    assert check_story(GOOD).sentences == tuple(split_sentences(GOOD))


def test_names_must_be_introduced_first():
    story = RESCUE.replace("Then Pip met an owl called Quinn. ", "").replace("Pip and Quinn", "Max and Quinn")
    found = failures(story, "introduced")
    assert [(f.sentence, f.detail) for f in found] == [
        (3, "Max was never introduced"),
        (3, "Quinn was never introduced"),
    ]
    assert not failures(story, "pronouns") and not failures(story, "ending")
    # The name comes before its introduction.
    early = GOOD.replace("She loved to sing songs.", "Max loved to sing songs.")
    assert [f.sentence for f in failures(early, "introduced")] == [1, 3]  # unknown, then introduced again


def test_characters_keep_their_noun():
    assert [
        f.detail for f in failures(GOOD.replace("by the pond", "by the pond. The badger smiled"), "introduced")
    ] == ["'the badger' was never introduced"]
    described = GOOD.replace("She loved to sing songs.", "Mia was a very silly owl.")
    assert [f.detail for f in failures(described, "introduced")] == ["Mia was introduced as a girl, not a owl"]
    assert check_story(GOOD.replace("She loved to sing songs.", "Mia was a very silly girl.")).passed
    # Words that are both a creature and something else are not characters there.
    assert check_story(GOOD.replace("She loved to sing songs.", "She liked to count the sheep.")).passed
    assert check_story(GOOD.replace("by the pond", "by the giant oak tree")).passed


def test_pronouns_agree_with_names_and_nouns():
    archie = GOOD.replace("named Mia", "named Archie").replace("Mia", "Archie")
    assert [(f.sentence, f.detail) for f in failures(archie, "pronouns")] == [(0, "a girl cannot be called Archie")]
    he_ran = GOOD.replace("One day, she could not", "One day, he could not")
    assert [(f.sentence, f.detail) for f in failures(he_ran, "pronouns")] == [(2, "'he' fits none of: Mia (she)")]
    # Once the owl Max is there, "he" has a character to refer to.
    assert check_story(GOOD.replace("Max found", "He found")).passed
    assert failures("He ran to the river. And the fox was never lonely again.", "pronouns")[0].detail == (
        "'he' before any character"
    )


def test_a_sentence_about_one_character_keeps_its_pronouns():
    # Max (he) is in the story, but the sentence is about Mia: "he" cannot be someone else here.
    story = GOOD.replace(
        "Max found the kite", "Mia was not very good at singing, but he always tried. Max found the kite"
    )
    assert [(f.sentence, f.detail) for f in failures(story, "pronouns")] == [(5, "'he' fits none of: Mia (she)")]
    story = GOOD.replace("Max found the kite", "She was so sad that he began to cry. Max found the kite")
    assert [f.detail for f in failures(story, "pronouns")] == ["'she' and 'he' in a sentence about one character"]
    assert failures(GOOD.replace("She loved to sing songs.", "The girl shook its head."), "pronouns")
    # With two characters in the sentence, each pronoun may be either one's.
    assert check_story(GOOD.replace("Max found the kite", "Mia hugged Max, and he smiled. Max found the kite")).passed


def test_repeated_sentences_are_caught():
    repeated = GOOD.replace("One day,", "She loved to sing songs. One day,")
    found = failures(repeated, "repeated")
    assert [(f.sentence, f.detail) for f in found] == [(2, "sentence 1 again: 'She loved to sing songs.'")]


def test_the_story_must_end():
    cut = GOOD[: GOOD.rindex(" her kite")]
    assert [(f.sentence, f.detail) for f in failures(cut, "ending")] == [(6, "the last sentence is cut off")]
    no_ending = GOOD.replace(" And Mia never lost her kite again.", "")
    assert [f.detail for f in failures(no_ending, "ending")] == ["the story does not end with an ending"]
    assert failures(no_ending + " The end.", "ending")
    assert failures("", "ending")[0].detail == "no sentences"
    assert failures("The end.", "ending")


def test_each_rule_catches_its_mutation_every_time(corpus):
    rng = random.Random(0)
    stories = [s for s in corpus[:400] if len(split_sentences(s)) > 2]
    for story in stories:
        sentences = split_sentences(story)
        k = rng.randrange(len(sentences) - 1)
        assert check_story(" ".join(sentences[: k + 1] + sentences[k:])).failed("repeated")
        words = [m.start() for m in re.finditer(r" \w", story)]
        assert check_story(story[: rng.choice(words[:-1])]).failed("ending")
        # A name nobody introduced, in place of any later use of a name.
        named = re.search(r" (?:named|called) ([A-Z]\w+)", story)
        if named and story.count(named.group(1)) > 1:
            stranger = next(n for n in NAMES_FOR["he"] if n in NAMES_FOR["she"] and n not in story)  # a pet name
            later = story.index(named.group(1), named.end())
            changed = story[:later] + stranger + story[later + len(named.group(1)) :]
            assert [f.check for f in check_story(changed).failures] == ["introduced"]


def test_a_flipped_pronoun_is_often_caught(corpus):
    flip = {"he": "she", "she": "he", "him": "her", "his": "her", "himself": "herself", "herself": "himself"}
    rng = random.Random(1)
    caught = total = 0
    for story in corpus[:1000]:
        found = list(re.finditer(r"\b(?:he|she|him|his|himself|herself)\b", story))
        if found:
            m = rng.choice(found)
            total += 1
            caught += check_story(story[: m.start()] + flip[m.group()] + story[m.end() :]).failed("pronouns")
    assert caught / total >= 0.55


def test_redrawing_a_repeated_beat_gives_another_sentence():
    rng = random.Random(3)
    story = generator._cast(rng)
    first = generator._sentence("lost_search", story, rng)
    again = generator._redraw(first, [first], ("lost_search",), story)
    assert again is not None and again != first
    assert again == generator._redraw(first, [first], ("lost_search",), story)  # seeded by the repeat
    assert generator._redraw(["the", "end", "."], [["the", "end", "."]], ("the_end",), story) is None


def test_scores_count_each_rule():
    repeated = GOOD.replace("One day,", "She loved to sing songs. One day,")
    scores = story_scores([GOOD, repeated, GOOD[:-10]])
    assert scores["stories"] == 3
    assert scores["passed"] == pytest.approx(1 / 3)
    assert scores["failed"] == {"introduced": 0.0, "pronouns": 0.0, "repeated": 1 / 3, "ending": 1 / 3}
    assert story_scores([]) == {"stories": 0, "passed": 0.0, "failed": dict.fromkeys(CHECKS, 0.0)}
