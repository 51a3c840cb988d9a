"""Byte-level BPE tokenizers for the models unmask trains, written in the standard file layout.

Byte-level BPE (as GPT-2, Qwen2 and LLaDA use) never meets an unknown character, so user text
of any kind can be encoded; the special tokens are the ones the loader looks for by name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

END_TOKEN = "<|endoftext|>"  # end of a text; also fills the canvas after it (LLaDA's padding)
MASK_TOKEN = "<|mdm_mask|>"  # LLaDA's name for the mask token
SPECIAL_TOKENS = [END_TOKEN, MASK_TOKEN]


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    """A byte-level BPE tokenizer whose ids 0 and 1 are the end and mask tokens."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, folder: Path, chat_template: str | None = None) -> None:
    """tokenizer.json plus a tokenizer_config.json naming the special tokens."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": END_TOKEN,
        "pad_token": END_TOKEN,
        "mask_token": MASK_TOKEN,
        "model_max_length": 4096,
        "clean_up_tokenization_spaces": False,
    }
    if chat_template:
        config["chat_template"] = chat_template
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
