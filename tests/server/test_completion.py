"""FinalText: append-only text from out-of-order commits, split UTF-8, stop strings, end tokens."""

from __future__ import annotations

import pytest

from unmask.server.textstream import FinalText, first_stop, held_tail
from unmask.tokenizer import Tokenizer

END, MASK = 0, 1


@pytest.fixture(scope="module")
def tok(server_models):
    return Tokenizer.from_folder(server_models["tiny"])


def feed(final: FinalText, ids: list[int], order: list[int]) -> list[str]:
    return [final.push([p], [ids[p]]) for p in order]


def test_text_waits_for_the_committed_prefix(tok):
    ids = tok.encode("The fox ran to the river", add_special_tokens=False)
    final = FinalText(tok, len(ids), MASK, [END])
    deltas = feed(final, ids, list(reversed(range(len(ids)))))
    assert deltas[:-1] == [""] * (len(ids) - 1)  # nothing is final until position 0 is
    assert deltas[-1] == tok.decode(ids) and final.finish_reason == "length"
    assert final.completion_tokens == len(ids)


def test_deltas_concatenate_to_the_whole_decode(tok):
    ids = tok.encode("The bear slept in the cave. A bird sang.", add_special_tokens=False)
    final = FinalText(tok, len(ids), MASK, [END])
    order = [2, 0, 1, 5, 3, 4] + list(range(6, len(ids)))
    assert "".join(feed(final, ids, order)) == tok.decode(ids)


def test_split_characters_are_held_back(tok):
    ids = tok.encode("fox 🦊 ran", add_special_tokens=False)
    assert "\ufffd" in tok.decode(ids[:3]) or "\ufffd" in tok.decode(ids[:4]), "the emoji must span tokens"
    final = FinalText(tok, len(ids), MASK, [END])
    deltas = feed(final, ids, list(range(len(ids))))
    assert all("\ufffd" not in d for d in deltas)
    assert "".join(deltas) == "fox 🦊 ran"


def test_stop_strings_hold_back_and_cut(tok):
    ids = tok.encode("The fox ran to the river", add_special_tokens=False)
    final = FinalText(tok, len(ids), MASK, [END], stops=["the river", "ran away"])
    deltas = feed(final, ids, list(range(len(ids))))
    text = "".join(deltas)
    assert text == "The fox ran to " and final.finish_reason == "stop"
    assert not any(d.endswith("ran") for d in deltas[:-1] if d), "a possible stop start is held back"
    # Tokens needed to see the stop string whole, not the whole canvas:
    assert tok.decode(ids[: final.completion_tokens]).endswith("the river")


def test_end_token_finishes(tok):
    ids = tok.encode("The fox", add_special_tokens=False) + [END, 7, 8]
    final = FinalText(tok, len(ids), MASK, [END])
    feed(final, ids, [0, 1, 2])
    assert final.done and final.finish_reason == "stop" and final.text == "The fox"
    assert final.completion_tokens == 2 and final.push([3], [9]) == ""


def test_first_ending_stop_wins():
    assert first_stop("xabcdef", ["abcdef", "bc"]) == (2, 4)
    assert first_stop("xabcdef", ["zz"]) is None
    assert held_tail("the fox ra", ["ran away", "x"]) == 2
    assert held_tail("the fox", ["ran"]) == 0
