"""A seeded grammar of short children's stories, and the recognizer that scores fluency with it.

The small models unmask trains on a CPU learn from stories this package writes. Their fluency
is then measured as the share of generated sentences that the same grammar derives, and their
creativity as the share of those accepted sentences that never occurred in the training corpus.

Modules, each with its notable features:
- `lexicon`: the word lists (lexicon.json) and the word classes built from them.
- `grammar`: the sentence templates in a tiny EBNF, and the engine that parses, expands,
  compiles and counts them; one grammar drives both generation and recognition.
- `generator`: casting a hero and helper, plots, and the seeded story and corpus functions.
- `recognizer`: sentence splitting, acceptance and the fluency score.
- `checker`: the story-level rules (characters introduced, pronouns agree, no repeats, an ending).
"""

from .checker import CHECKS, anchors, check_story, introductions, story_scores
from .generator import generate_corpus, generate_story, iter_corpus
from .grammar import sentence_space, vocabulary
from .recognizer import fluency, sentence_accepted, split_sentences

__all__ = [
    "CHECKS",
    "anchors",
    "check_story",
    "fluency",
    "generate_corpus",
    "generate_story",
    "introductions",
    "iter_corpus",
    "sentence_accepted",
    "sentence_space",
    "split_sentences",
    "story_scores",
    "vocabulary",
]
