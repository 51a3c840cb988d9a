"""Completion: append-only text from out-of-order commits and revocations, split UTF-8, stop
strings, end tokens, infill gaps; the one place a generation's answer is built."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from unmask.engine import Canvas, Completion, GenerationOptions, SpecialIds, StepEvent
from unmask.engine.completion import first_stop, held_tail
from unmask.tokenizer import Tokenizer

END, MASK = 0, 1


@pytest.fixture(scope="module")
def tok(server_models):
    return Tokenizer.from_folder(server_models["tiny"])


def model_of(tok):
    return SimpleNamespace(tokenizer=tok, ids=SpecialIds(mask=MASK, eos=[END], pad=END))


class Replay:
    """Feeds a Completion as the sampler would: `settled` is the first masked position, or the
    start of a block that remask may still revoke."""

    def __init__(self, completion: Completion, length: int):
        self.c, self.region, self.i = completion, [MASK] * length, 0

    def step(self, commits: dict[int, int], revoked=(), open_from: int | None = None) -> str:
        for p in revoked:
            self.region[p] = MASK
        for p, t in commits.items():
            self.region[p] = t
        settled = next((i for i, t in enumerate(self.region) if t == MASK), len(self.region))
        if open_from is not None:
            settled = min(settled, open_from)
        self.i += 1
        event = StepEvent(
            self.i - 1, 8, 0, list(commits), list(commits.values()), 0, self.i, 0.01 * self.i, list(revoked), settled
        )
        return self.c.step(event)


def completion(tok, n: int, stops=None, canvas=None) -> Completion:
    return Completion(model_of(tok), canvas or Canvas([]), GenerationOptions(max_new_tokens=n), stops)


def feed(c: Completion, ids: list[int], order: list[int]) -> list[str]:
    replay = Replay(c, len(ids))
    return [replay.step({p: ids[p]}) for p in order]


def test_text_waits_for_the_settled_prefix(tok):
    ids = tok.encode("The fox ran to the river", add_special_tokens=False)
    c = completion(tok, len(ids))
    deltas = feed(c, ids, list(reversed(range(len(ids)))))
    assert deltas[:-1] == [""] * (len(ids) - 1)  # nothing is final until position 0 is
    assert deltas[-1] == tok.decode(ids) and c.finish_reason == "length"
    assert c.completion_tokens == len(ids)


def test_deltas_concatenate_to_the_whole_decode(tok):
    ids = tok.encode("The bear slept in the cave. A bird sang.", add_special_tokens=False)
    c = completion(tok, len(ids))
    order = [2, 0, 1, 5, 3, 4] + list(range(6, len(ids)))
    assert "".join(feed(c, ids, order)) == tok.decode(ids)


def test_revocable_tokens_are_not_sent(tok):
    """Committed tokens of a block that remask may still revoke are drafts: nothing is sent
    before the block is filled, and a revoked draft never reaches the text."""
    good = tok.encode("The fox ran to the river", add_special_tokens=False)
    n = len(good)
    c = completion(tok, n)
    replay = Replay(c, n)
    assert replay.step({0: good[0], 1: 99, 2: good[2]}, open_from=0) == ""
    assert replay.step({1: good[1]}, revoked=[1], open_from=0) == ""
    rest = {p: good[p] for p in range(3, n)}
    assert replay.step(rest) == tok.decode(good)
    assert c.text == tok.decode(good) and c.revocations == 1 and c.commits == n + 1


def test_split_characters_are_held_back(tok):
    ids = tok.encode("fox 🦊 ran", add_special_tokens=False)
    assert "\ufffd" in tok.decode(ids[:3]) or "\ufffd" in tok.decode(ids[:4]), "the emoji must span tokens"
    c = completion(tok, len(ids))
    deltas = feed(c, ids, list(range(len(ids))))
    assert all("\ufffd" not in d for d in deltas)
    assert "".join(deltas) == "fox 🦊 ran"


def test_stop_strings_hold_back_and_cut(tok):
    ids = tok.encode("The fox ran to the river", add_special_tokens=False)
    c = completion(tok, len(ids), stops=["the river", "ran away"])
    deltas = feed(c, ids, list(range(len(ids))))
    text = "".join(deltas)
    assert text == "The fox ran to " and c.finish_reason == "stop"
    assert not any(d.endswith("ran") for d in deltas[:-1] if d), "a possible stop start is held back"
    # Tokens needed to see the stop string whole, not the whole canvas:
    assert tok.decode(ids[: c.completion_tokens]).endswith("the river")


def test_end_token_finishes(tok):
    ids = tok.encode("The fox", add_special_tokens=False) + [END, 7, 8]
    c = completion(tok, len(ids))
    feed(c, ids, [0, 1, 2])
    assert c.done and c.finish_reason == "stop" and c.text == "The fox"
    assert c.completion_tokens == 2


def test_infill_keeps_fixed_text_and_ends_each_gap(tok):
    a = tok.encode(" fox", add_special_tokens=False)
    fixed = tok.encode(" and then", add_special_tokens=False)
    b = tok.encode(" bear", add_special_tokens=False)
    gap1, gap2 = len(a) + 1, len(b)
    region = [MASK] * gap1 + fixed + [MASK] * gap2
    canvas = Canvas([5], region, "The", [(None, gap1), (" and then", len(fixed)), (None, gap2)])
    c = Completion(model_of(tok), canvas, GenerationOptions(max_new_tokens=len(region)))
    final = a + [END] + fixed + b
    c.finish(final)
    assert c.text == " fox and then bear" and c.finish_reason == "stop"
    assert c.completion_tokens == len(a) + len(b)
    gaps_only = Completion(model_of(tok), canvas, GenerationOptions(max_new_tokens=len(region)), fixed_text=False)
    gaps_only.finish(final)
    assert gaps_only.text == " fox bear"


def test_first_ending_stop_wins():
    assert first_stop("xabcdef", ["abcdef", "bc"]) == (2, 4)
    assert first_stop("xabcdef", ["zz"]) is None
    assert held_tail("the fox ra", ["ran away", "x"]) == 2
    assert held_tail("the fox", ["ran"]) == 0
