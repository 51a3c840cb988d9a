"""The recognizer: split text into sentences, accept the ones the grammar derives, score fluency.

A model's fluency is the share of its sentences that the story grammar derives, and its
creativity the share of those accepted sentences that never occurred in the training corpus.

Notable features:
- It is strict about surface form: capitals only at the start of a sentence or quotation (and
  for names and "I"), "a"/"an" chosen by the next word, canonical spacing around punctuation and
  quotes. Shuffled, truncated or misspelt sentences are rejected.
- Acceptance is one match of the sentence's words against the grammar's compiled `<sentence>`
  rule (grammar.py), the very trees the generator expands.
"""

from __future__ import annotations

import re

from .grammar import articles_agree, capital_slots, derives, render
from .lexicon import LEXICON

_TERMINAL = frozenset(".!?")
# Words, possibly with one apostrophe ("don't" is one token), or any other single character.
_TEXT_TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|[^\sA-Za-z]")
# Words that keep their capital letter anywhere in a sentence.
_PROPER = frozenset(LEXICON["name"]) | {"I"}


def split_sentences(text: str) -> list[str]:
    """Split text into sentences, keeping quoted dialogue with its speaker.

    A sentence ends after . ! or ? (and a closing quote right after it) unless the next word
    starts in lowercase, as in `"Help!" cried the fox.`. A trailing fragment without final
    punctuation is returned too, so that it can be counted as not accepted.
    """
    sentences, start, k, n = [], 0, 0, len(text)
    while k < n:
        if text[k] not in _TERMINAL:
            k += 1
            continue
        end = k + 1
        while end < n and text[end] in _TERMINAL:
            end += 1
        if end < n and text[end] == '"':
            end += 1
        rest = end
        while rest < n and text[rest].isspace():
            rest += 1
        if rest < n and text[rest].islower():
            k = end  # dialogue continues: "Help!" cried the fox.
            continue
        piece = text[start:end].strip()
        if piece:
            sentences.append(piece)
        start = k = end
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _normalized_tokens(sentence: str) -> list[str] | None:
    """Tokens in lexicon case, or None if the surface form itself is wrong."""
    text = sentence.strip()
    tokens = _TEXT_TOKEN.findall(text)
    if not tokens or render(tokens) != text:
        return None
    for k, slot in enumerate(capital_slots(tokens)):
        tok = tokens[k]
        if not slot:
            continue
        if not tok[0].isupper():
            return None
        if tok not in _PROPER:
            tokens[k] = tok[0].lower() + tok[1:]
    return tokens


def sentence_accepted(sentence: str) -> bool:
    """True iff the grammar derives `sentence` (surrounding whitespace ignored)."""
    tokens = _normalized_tokens(sentence)
    if tokens is None or not articles_agree(tokens):
        return False
    return derives("sentence", tokens)  # False as well for a word outside the vocabulary


def fluency(texts: list[str], corpus_sentences: set[str]) -> dict:
    """Score generated texts sentence by sentence against the grammar and a training corpus.

    Returns:
        {"sentences": count, "accepted": share derivable by the grammar, "novel": share of the
        accepted sentences absent from `corpus_sentences`, "distinct": share of distinct
        sentences among all}.
    """
    sentences = [s for text in texts for s in split_sentences(text)]
    accepted = [s for s in sentences if sentence_accepted(s)]
    novel = [s for s in accepted if s not in corpus_sentences]
    n = len(sentences)
    return {
        "sentences": n,
        "accepted": len(accepted) / n if n else 0.0,
        "novel": len(novel) / len(accepted) if accepted else 0.0,
        "distinct": len(set(sentences)) / n if n else 0.0,
    }
