"""Checkpoints of every family as a user would pull them, at reduced size: the real config.json
(every key kept, widths and depth shrunk), the real tokenizer and chat-template files where this
workplace has them (`tests/real/`, copied from ../shared/real-checkpoints), and random weights with
the real parameter names. What cannot be had here is said per family.

- sdar: SDAR-1.7B-Chat's config, vocabulary and chat template (Qwen3 vocabulary, full size).
- fast-dllm-v2: Fast_dLLM_v2_7B's config and tokenizer_config; its folder ships no vocabulary
  files, and its model is Qwen2.5's, so Dream's (also Qwen2.5's) vocab.json and merges.txt stand in.
- llada2: LLaDA2.0-mini's config; no tokenizer files were published with the training copy, so a
  character-level tokenizer with the real special-token names stands in, at a vocabulary of 512.
- diffusion-gemma: see `diffusion_gemma`.
- llada-moe: no public config.json could be had; our golden set's (every key of the hub config
  class, tests/golden/lladamoe-tiny) under the hub's spelling (model_type "llada",
  architectures LLaDAMoEModelLM), with a character-level tokenizer. A full-canvas family.
"""

from __future__ import annotations

import json
import shutil
import string
from pathlib import Path

REAL = Path(__file__).parent / "real"
SMALL = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4}


def write_checkpoint(folder: Path, config: dict, seed: int = 0) -> Path:
    from .conftest import write_checkpoint as write

    return write(folder, config, seed)


def copy_files(source: Path, folder: Path, names) -> None:
    for name in names:
        if (source / name).exists():
            shutil.copy(source / name, folder / name)


def sdar(folder: Path) -> Path:
    real = REAL / "sdar-1.7b-chat"
    config = json.loads((real / "config.json").read_text()) | SMALL | {"num_key_value_heads": 2, "head_dim": 32}
    write_checkpoint(folder, config)
    copy_files(
        real,
        folder,
        [
            "generation_config.json",
            "tokenizer_config.json",
            "vocab.json",
            "merges.txt",
            "added_tokens.json",
            "special_tokens_map.json",
            "chat_template.jinja",
        ],
    )
    return folder


def fast_dllm_v2(folder: Path) -> Path:
    real = REAL / "fast-dllm-v2-7b"
    config = json.loads((real / "config.json").read_text()) | SMALL | {"num_key_value_heads": 2, "bd_size": 8}
    config["layer_types"] = config["layer_types"][: SMALL["num_hidden_layers"]]
    write_checkpoint(folder, config)
    copy_files(
        real,
        folder,
        [
            "generation_config.json",
            "tokenizer_config.json",
            "added_tokens.json",
            "special_tokens_map.json",
            "chat_template.jinja",
        ],
    )
    copy_files(REAL / "dream-v0-instruct-7b", folder, ["vocab.json", "merges.txt"])
    return folder


LLADA2_VOCAB = 512
LLADA2_SPECIALS = {"<|endoftext|>": 500, "<|mask|>": 501, "<role>": 502, "</role>": 503}


def llada2(folder: Path) -> Path:
    real = REAL / "llada2.0-mini"
    config = json.loads((real / "config.json").read_text()) | SMALL
    config |= {
        "model_type": "llada2_moe",  # the hub's spelling; dFactory's copy says llada2_moe_veomni
        "num_key_value_heads": 2,
        "head_dim": 16,
        "rotary_dim": 8,
        "moe_intermediate_size": 32,
        "num_experts": 8,
        "num_experts_per_tok": 2,
        "n_group": 4,
        "topk_group": 2,
        "vocab_size": LLADA2_VOCAB,
        "pad_token_id": LLADA2_SPECIALS["<|endoftext|>"],
        "eos_token_id": LLADA2_SPECIALS["<|endoftext|>"],
    }
    write_checkpoint(folder, config)
    char_tokenizer(folder, LLADA2_VOCAB, LLADA2_SPECIALS)
    return folder


def char_tokenizer(
    folder: Path, vocab_size: int, specials: dict[str, int], eos: str = "<|endoftext|>", template: str | None = None
) -> None:
    """A character-level tokenizer.json: printable characters and Latin letters, then the special
    tokens at the ids given (`eos` names the end token; `template` is the chat template)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    chars = iter(list(string.printable[:95]) + [chr(c) for c in range(0xC0, 0x2B0)])
    by_id = {i: name for name, i in specials.items()}
    vocab = {by_id[i] if i in by_id else next(chars): i for i in range(vocab_size)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=" "))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(list(specials))
    tok.save(str(folder / "tokenizer.json"))
    config = {"eos_token": eos, "pad_token": eos}
    if "<|mask|>" in specials:
        config["mask_token"] = "<|mask|>"
    # LLaDA2's chat format: <role>ROLE</role>TEXT turns, then the assistant's role opened.
    config["chat_template"] = template or (
        "{% for m in messages %}<role>{{ m['role'] | upper }}</role>{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<role>ASSISTANT</role>{% endif %}"
    )
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def llada_moe(folder: Path) -> Path:
    golden = Path(__file__).parent / "golden" / "lladamoe-tiny"
    config = json.loads((golden / "config.json").read_text()) | {"model_type": "llada", "vocab_size": LLADA2_VOCAB}
    config |= {"mask_token_id": LLADA2_SPECIALS["<|mask|>"], "eos_token_id": LLADA2_SPECIALS["<|endoftext|>"]}
    config |= {"pad_token_id": LLADA2_SPECIALS["<|endoftext|>"]}
    write_checkpoint(folder, config)
    char_tokenizer(folder, LLADA2_VOCAB, LLADA2_SPECIALS)
    return folder


GEMMA_SPECIALS = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<start_of_image>": 253, "<end_of_image>": 254}
GEMMA_SPECIALS |= {"<image_soft_token>": 255}


def diffusion_gemma(folder: Path) -> Path:
    """No DiffusionGemma config.json is public: transformers' own serialisation of a tiny config
    (the golden set's, every key the class has) with its weights, and a character tokenizer."""
    golden = Path(__file__).parent / "golden" / "dgemma-tiny"
    folder.mkdir(parents=True, exist_ok=True)
    copy_files(golden, folder, ["config.json", "generation_config.json", "model.safetensors"])
    template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}model: {% endif %}"
    )
    char_tokenizer(folder, 256, GEMMA_SPECIALS, eos="<eos>", template=template)
    return folder


BLOCK_BUILDERS = {"sdar": sdar, "fast-dllm-v2": fast_dllm_v2, "llada2": llada2, "diffusion-gemma": diffusion_gemma}
BUILDERS = BLOCK_BUILDERS | {"llada-moe": llada_moe}
