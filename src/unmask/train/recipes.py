"""Training recipes: everything needed to reproduce a model from the repository alone.

- `story`: a LLaDA-format model (~7M parameters) on stories from the seeded story grammar
  (tasks/stories/), so the official LLaDA and Fast-dLLM code could run it too.
- `sudoku`: a `grid` model (LLaDA blocks + row/column/box embeddings) on Sudoku solutions from
  the seeded generator (tasks/sudoku.py); solving is infilling the blanks.
- `web`: a LLaDA-format model on (request, program) pairs from the seeded scene generator
  (tasks/web/): small animations as HTML + SVG, written from English requests.
- `text`: a LLaDA-format model on the user's own text files.

Each recipe returns a `Recipe`: the config.json of the model, its batch sources, its training
settings, and the files (tokenizer, decoding defaults) that go into the exported folder.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from .bpe import END_TOKEN, MASK_TOKEN, SPECIAL_TOKENS, save_tokenizer, train_bpe
from .data import Alternating, DocumentBatches, GridBatches, HeadBatches, PairBatches, StreamBatches
from .loop import TrainConfig

END_ID, MASK_ID = 0, 1  # train_bpe puts the special tokens first

STORY_CORPUS = 100_000  # training stories (seed 0); novelty is measured against exactly these
STORY_VAL = 2_000  # held-out stories (seed 1)
STORY_VOCAB = 4096
STORY_LENGTHS = list(range(48, 257, 16))  # canvas lengths the model is shown
# Evaluations per text run: enough that a flat validation loss is noticed in the first half of
# the schedule (loop.FLAT_EVALS in a row), at ~1% of the training time (2 forward batches each).
TEXT_EVALS = 20

Report = Callable[[str], None]  # says what a slow stage is doing, one line at a time


def quiet(message: str) -> None:
    """Report nothing: the default for library callers and tests."""


@dataclass(frozen=True)
class Start:
    """A trained model a run starts from (`unmask train --init`), as a fine-tune does: the run
    keeps its architecture and its tokenizer, so the recipe's data is encoded with that tokenizer
    and its config must be the recipe's (`check_start`)."""

    ref: str
    folder: Path
    config: dict
    tokenizer: Tokenizer


def start_from(ref: str) -> Start:
    """The model `ref` names (an embedded name, a named model, a folder, a cached hub id)."""
    from ..loading import ModelLoadError, read_json, resolve

    try:
        folder = resolve(ref)
        config = read_json(folder / "config.json", "config.json")
    except ModelLoadError as err:
        raise ValueError(f"--init: {err}") from None
    if "quantization_config" in config:
        raise ValueError(f"--init: {ref} is quantized; start from its full-precision folder")
    if not (folder / "tokenizer.json").is_file():
        raise ValueError(f"--init: {folder} has no tokenizer.json, which the run must keep")
    config = {key: value for key, value in config.items() if key != "torch_dtype"}
    return Start(ref, folder, config, Tokenizer.from_file(str(folder / "tokenizer.json")))


def check_start(start: Start | None, model_config: dict) -> None:
    """Refuse, before any data is made, a start whose config is not the recipe's model, naming
    the fields that differ."""
    if start is None:
        return
    fields = [
        f"{key} is {start.config.get(key)!r}, the recipe's {value!r}"
        for key, value in model_config.items()
        if start.config.get(key) != value
    ]
    if fields:
        more = f" and {len(fields) - 4} more" if len(fields) > 4 else ""
        raise ValueError(f"--init: {start.ref} is not this recipe's model: {'; '.join(fields[:4])}{more}")


@dataclass
class Recipe:
    name: str
    model_config: dict
    train: Callable[[int], tuple]
    val: Callable[[int], tuple]
    config: TrainConfig
    export_files: Callable[[Path], None]
    notes: dict = field(default_factory=dict)


def llada_config(vocab: int, d_model: int, n_layers: int, n_heads: int, mlp: int, max_len: int) -> dict:
    """A config.json with the real LLaDA key names (see tests/golden/llada-tiny/config.json)."""
    return {
        "architectures": ["LLaDAModelLM"],
        "model_type": "llada",
        "block_type": "llama",
        "d_model": d_model,
        "n_heads": n_heads,
        "n_kv_heads": n_heads,
        "n_layers": n_layers,
        "mlp_hidden_size": mlp,
        "mlp_ratio": max(1, mlp // d_model),
        "vocab_size": vocab,
        "embedding_size": vocab,
        "max_sequence_length": max_len,
        "rope": True,
        "rope_theta": 10000.0,
        "rope_full_precision": True,
        "rms_norm_eps": 1e-5,
        "layer_norm_type": "rms",
        "activation_type": "silu",
        "include_bias": False,
        "include_qkv_bias": False,
        "weight_tying": False,
        "alibi": False,
        "scale_logits": False,
        "input_emb_norm": False,
        "mask_token_id": MASK_ID,
        "eos_token_id": END_ID,
        "pad_token_id": END_ID,
    }


def write_generation_config(folder: Path, defaults: dict) -> None:
    """Decoding defaults: LLaDA-style ids plus the settings the CLI and server start from."""
    config = {"eos_token_id": END_ID, "pad_token_id": END_ID, "mask_token_id": MASK_ID, "unmask": defaults}
    (folder / "generation_config.json").write_text(json.dumps(config, indent=2) + "\n")


# -- story ---------------------------------------------------------------------------------------


def story_data(
    work: Path, report: Report = quiet, tokenizer: Tokenizer | None = None
) -> tuple[Tokenizer, StoryDocuments, StoryDocuments]:
    """Tokenizer and the sentence-split token ids of the story corpus, with each story's anchors
    (the sentences a row shortened to fit its canvas keeps), cached under work/. A given tokenizer
    (a fine-tune's) is used instead of training one."""
    from ..tasks.stories import anchors, generate_corpus, split_sentences

    work.mkdir(parents=True, exist_ok=True)
    cache = work / "stories.safetensors"
    if (work / "tokenizer.json").exists() and cache.exists():
        tensors = load_file(str(cache))
        cached = Tokenizer.from_file(str(work / "tokenizer.json"))
        # Caches from before anchors, or encoded by another tokenizer than the given one, are rebuilt.
        if "train.anchor" in tensors and (tokenizer is None or cached.to_str() == tokenizer.to_str()):
            return cached, unflatten(tensors, "train"), unflatten(tensors, "val")
    report(f"generating {STORY_CORPUS:,} stories (once; cached in {work})...")
    corpus = generate_corpus(STORY_CORPUS, seed=0)
    if tokenizer is None:
        report(f"training a {STORY_VOCAB}-token BPE tokenizer...")
        tokenizer = train_bpe(corpus[:20_000], STORY_VOCAB)
    tokenizer.save(str(work / "tokenizer.json"))
    report(f"tokenizing {STORY_CORPUS + STORY_VAL:,} stories and finding their anchors...")
    train = encode_documents(tokenizer, corpus, split_sentences, anchors)
    val = encode_documents(tokenizer, generate_corpus(STORY_VAL, seed=1), split_sentences, anchors)
    save_file(flatten(train, "train") | flatten(val, "val"), str(cache))
    return tokenizer, train, val


@dataclass
class StoryDocuments:
    sentences: list[list[list[int]]]  # story -> sentence -> token ids
    anchors: list[frozenset[int]]  # story -> the sentences a shortened row keeps


def encode_documents(tokenizer: Tokenizer, texts: list[str], split, anchors) -> StoryDocuments:
    """Each text -> its sentences' token ids; every sentence after the first keeps its leading
    space, so the pieces concatenate to the encoding of the whole text."""
    docs, keep = [], []
    for text in texts:
        sentences = split(text)
        pieces = [sentences[0]] + [" " + s for s in sentences[1:]]
        docs.append([e.ids for e in tokenizer.encode_batch(pieces, add_special_tokens=False)])
        keep.append(frozenset(anchors(sentences)))
    return StoryDocuments(docs, keep)


def flatten(docs: StoryDocuments, prefix: str) -> dict[str, torch.Tensor]:
    tokens = [t for d in docs.sentences for s in d for t in s]
    sentence_lens = [len(s) for d in docs.sentences for s in d]
    anchor = [i in keep for d, keep in zip(docs.sentences, docs.anchors) for i in range(len(d))]
    return {
        f"{prefix}.tokens": torch.tensor(tokens, dtype=torch.int32),
        f"{prefix}.sentence_lens": torch.tensor(sentence_lens, dtype=torch.int32),
        f"{prefix}.doc_lens": torch.tensor([len(d) for d in docs.sentences], dtype=torch.int32),
        f"{prefix}.anchor": torch.tensor(anchor, dtype=torch.bool),
    }


def unflatten(tensors: dict[str, torch.Tensor], prefix: str) -> StoryDocuments:
    tokens = tensors[f"{prefix}.tokens"].tolist()
    sentence_lens = tensors[f"{prefix}.sentence_lens"].tolist()
    anchor = tensors[f"{prefix}.anchor"].tolist()
    docs, keep, pos, sent = [], [], 0, 0
    for n in tensors[f"{prefix}.doc_lens"].tolist():
        doc = []
        for length in sentence_lens[sent : sent + n]:
            doc.append(tokens[pos : pos + length])
            pos += length
        keep.append(frozenset(i for i in range(n) if anchor[sent + i]))
        sent += n
        docs.append(doc)
    return StoryDocuments(docs, keep)


def story_recipe(
    work: Path,
    steps: int = 10_500,
    batch_size: int = 64,
    seed: int = 0,
    report: Report = quiet,
    start: Start | None = None,
) -> Recipe:
    def config(vocab: int) -> dict:
        # The context is what it is trained on (prompt + canvas up to 256 tokens); past it, text degrades.
        return llada_config(vocab, d_model=256, n_layers=6, n_heads=4, mlp=768, max_len=max(STORY_LENGTHS))

    if start is not None:
        check_start(start, config(start.tokenizer.get_vocab_size()))
    tokenizer, train_docs, val_docs = story_data(work / "data", report, start and start.tokenizer)
    model_config = config(tokenizer.get_vocab_size())
    train = DocumentBatches(train_docs.sentences, END_ID, batch_size, STORY_LENGTHS, seed, train_docs.anchors)
    val_lengths = [96, 160, 256, 128]
    val_sources = [
        DocumentBatches(val_docs.sentences, END_ID, batch_size, [n], 100 + i, val_docs.anchors)
        for i, n in enumerate(val_lengths)
    ]

    def export(folder: Path) -> None:
        save_tokenizer(tokenizer, folder)
        write_generation_config(
            # Chosen by a sweep at 64 steps, checked on held-out seeds (benchmarks/embedded_quality.py;
            # see the model card).
            folder,
            {
                "max_new_tokens": 128,
                "steps": 64,
                "algorithm": "topk_margin",
                "block_length": 32,
                "temperature": 0.35,
                "spread": 2,
                "remask": 0.15,
            },
        )

    cfg = TrainConfig(steps=steps, lr=2e-3, warmup=300, eval_every=250, save_every=250, seed=seed, compile=True)
    return Recipe("story", model_config, train, lambda i: val_sources[i % 4](i), cfg, export)


# -- sudoku --------------------------------------------------------------------------------------

SUDOKU_POOL = 20_000  # base solutions; symmetry augmentation multiplies them without end


def sudoku_tokenizer() -> Tokenizer:
    """One token per cell: the end and mask tokens, then the digits 1-9 (ids 2..10)."""
    vocab = {END_TOKEN: END_ID, MASK_TOKEN: MASK_ID} | {str(d): d + 1 for d in range(1, 10)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=MASK_TOKEN))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    tokenizer.add_special_tokens([END_TOKEN, MASK_TOKEN])
    return tokenizer


def sudoku_solutions(work: Path, n: int, seed: int, report: Report = quiet) -> list[str]:
    from ..tasks.sudoku import random_solution

    work.mkdir(parents=True, exist_ok=True)
    cache = work / f"solutions-{seed}-{n}.txt"
    if cache.exists():
        return cache.read_text().split()
    report(f"generating {n:,} Sudoku solutions (once; cached in {work})...")
    rng = random.Random(seed)
    solutions = [random_solution(rng) for _ in range(n)]
    cache.write_text("\n".join(solutions) + "\n")
    return solutions


def sudoku_recipe(
    work: Path,
    steps: int = 3_000,
    batch_size: int = 128,
    seed: int = 0,
    report: Report = quiet,
    start: Start | None = None,
) -> Recipe:
    from ..tasks.sudoku import augment

    tokenizer = sudoku_tokenizer()
    digit_ids = {str(d): d + 1 for d in range(1, 10)}
    model_config = llada_config(11, d_model=192, n_layers=8, n_heads=6, mlp=512, max_len=81)
    model_config |= {"model_type": "grid", "architectures": ["GridModel"], "grid_size": 9, "box_size": 3}
    check_start(start, model_config)
    if start is not None and start.tokenizer.get_vocab() != tokenizer.get_vocab():
        raise ValueError(f"--init: {start.ref}'s tokenizer is not the recipe's (one token per digit)")
    train = GridBatches(
        sudoku_solutions(work / "data", SUDOKU_POOL, seed, report), augment, digit_ids, batch_size, seed
    )
    val = GridBatches(sudoku_solutions(work / "data", 500, seed + 1), augment, digit_ids, batch_size, seed + 1)

    def export(folder: Path) -> None:
        save_tokenizer(tokenizer, folder)
        write_generation_config(folder, {"algorithm": "low_confidence", "steps": None})

    cfg = TrainConfig(steps=steps, lr=1e-3, warmup=300, eval_every=250, save_every=250, seed=seed, compile=True)
    return Recipe("sudoku", model_config, train, val, cfg, export)


# -- web -----------------------------------------------------------------------------------------

WEB_VOCAB = 4096
WEB_LENGTH = 352  # request + program + end tokens: the longest pair (an argon atom) is ~330 tokens
WEB_ANSWER = 320  # the longest program (an argon atom) is 294 tokens, then its end
WEB_HEAD = 96  # request + svg line + value lines: the longest is 77 tokens
WEB_TRAIN_SEED, WEB_VAL_SEED = 0, 1  # benchmarks/embedded_quality.py measures on seeds 2 and up


def web_tokenizer(work: Path, report: Report = quiet, given: Tokenizer | None = None) -> Tokenizer:
    """Byte-level BPE over whitespace-separated words (each with the spaces and newline before
    it), so a line of code splits at its spaces only: `Math.cos(a),` is one token. Two splits
    more, for the values a program copies from its request: a plain word loses a trailing `,.?!:`,
    `-coloured` or `'s` (so "neon" is one token in "neon's"), and a colour name or a bare number
    stands alone, without its space or quotes, so "navy" is one token in `in navy,` and in
    `ballColor = "navy";`. With the punctuation attached (six request forms of a colour, two
    program forms), a 3M model at 1,800 steps read no named colour from the request
    (benchmarks/web_binding.py)."""
    from ..tasks.web import corpus_pair
    from ..tasks.web.programs import COLOURS

    path = work / "tokenizer.json"
    if given is not None:  # a fine-tune's: the model's own
        work.mkdir(parents=True, exist_ok=True)
        given.save(str(path))
        return given
    if path.exists():
        return Tokenizer.from_file(str(path))
    report(f"training a {WEB_VOCAB}-token BPE tokenizer on 20,000 pairs...")
    colours = "|".join([*COLOURS, "grey"])
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\s*\S+"), behavior="isolated"),
            pre_tokenizers.Split(
                Regex(r"^\s*[A-Za-z0-9]+(?=[,.?!:]+$|-[a-z]+[,.?!:]*$|'s[,.?!:]*$)"), behavior="isolated"
            ),
            pre_tokenizers.Split(
                Regex(rf"(?<![A-Za-z])(?:{colours})(?![A-Za-z])|(?<=^\s)\d+(?=;?$)"), behavior="isolated"
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=WEB_VOCAB,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(("\n".join(corpus_pair(WEB_TRAIN_SEED, i)) for i in range(20_000)), trainer)
    work.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return tokenizer


def web_pairs(tokenizer: Tokenizer, seed: int) -> Callable[[int], tuple[list[int], list[int]]]:
    """index -> (request ids, program ids): the program starts with the newline that ends the
    request, which is what the model writes first after a bare request."""
    from ..tasks.web import corpus_pair

    def pair(index: int) -> tuple[list[int], list[int]]:
        req, prog = corpus_pair(seed, index)
        return (
            tokenizer.encode(req, add_special_tokens=False).ids,
            tokenizer.encode("\n" + prog, add_special_tokens=False).ids,
        )

    return pair


def web_heads(tokenizer: Tokenizer, seed: int) -> Callable[[int], tuple[list[int], list[int]]]:
    """index -> (request ids, program head ids): the program up to its last value line, the only
    part the request decides (the body after it is the kind's template)."""
    from ..tasks.web import corpus_pair
    from ..tasks.web.programs import ADD

    def pair(index: int) -> tuple[list[int], list[int]]:
        req, prog = corpus_pair(seed, index)
        # Cut the whole program's tokens, not a tokenized prefix: "\nconst svg" is one token.
        encoding = tokenizer.encode("\n" + prog, add_special_tokens=False)
        cut = prog.index(ADD)  # the shared lines every body starts with after its value lines
        n = next(i for i, (start, _) in enumerate(encoding.offsets) if start >= cut)
        return tokenizer.encode(req, add_special_tokens=False).ids, encoding.ids[:n]

    return pair


def web_recipe(
    work: Path,
    steps: int = 10_000,
    batch_size: int = 32,
    seed: int = 0,
    report: Report = quiet,
    start: Start | None = None,
) -> Recipe:
    def config(vocab: int) -> dict:
        # Served prompts may be longer than the corpus's (~32 tokens): room for 96 before the program.
        # Tied embeddings: a colour or a count is the same token in the request and in the program,
        # so copying it is attending to it (the head reads the token's own embedding back out).
        return llada_config(vocab, d_model=192, n_layers=5, n_heads=4, mlp=512, max_len=WEB_LENGTH + 64) | {
            "weight_tying": True
        }

    if start is not None:
        check_start(start, config(start.tokenizer.get_vocab_size()))
    tokenizer = web_tokenizer(work / "data", report, start and start.tokenizer)
    model_config = config(tokenizer.get_vocab_size())
    # Every other step is a batch of heads: 4x the rows at under a third of the length, so 4x the
    # value lines at about the cost of a full batch. Copying the request's values is what the model
    # learns last, after a long plateau; the body it learns early. Measured by web_binding.py, named
    # colours read from the request: 1% at step 3,300 with full rows only, 63% at step 2,000 with heads.
    full = PairBatches(web_pairs(tokenizer, WEB_TRAIN_SEED + seed), END_ID, batch_size, WEB_LENGTH, seed)
    heads = HeadBatches(web_heads(tokenizer, WEB_TRAIN_SEED + seed), MASK_ID, 4 * batch_size, WEB_HEAD, seed + 7)
    train = Alternating([full, heads])
    val = PairBatches(web_pairs(tokenizer, WEB_VAL_SEED), END_ID, batch_size, WEB_LENGTH, seed + 1)

    def export(folder: Path) -> None:
        save_tokenizer(tokenizer, folder)
        write_generation_config(
            folder,
            {
                "max_new_tokens": WEB_ANSWER,
                "steps": 64,
                "algorithm": "low_confidence",
                "temperature": 0.0,
                "output": "svg",
            },
        )

    # lr 1e-3, not 2e-3: at 2e-3 the validation loss rose from step 1,250 to 1,950 (0.037 -> 0.056);
    # at 1e-3 it was 0.0146 at step 3,300, with more counts read from the request (web_binding.py).
    cfg = TrainConfig(steps=steps, lr=1e-3, warmup=200, eval_every=250, save_every=100, seed=seed, compile=True)
    return Recipe("web", model_config, train, val, cfg, export)


# -- the user's own text -------------------------------------------------------------------------


def text_recipe(
    work: Path,
    files: list[Path],
    steps: int = 2_000,
    batch_size: int = 32,
    length: int = 256,
    vocab: int = 8192,
    d_model: int = 256,
    n_layers: int = 6,
    seed: int = 0,
    report: Report = quiet,
    start: Start | None = None,
) -> Recipe:
    """A LLaDA-format model on text files: documents are separated by the end token and cut into
    random windows of `length` tokens; the last 2% of the tokens are held out for validation.
    A run with a `start` keeps that model's tokenizer and config."""
    if start is not None and start.config.get("model_type") != "llada":
        raise ValueError(f"--init: --data runs train LLaDA models; {start.ref} is {start.config.get('model_type')!r}")
    texts = []
    for path in files:
        try:
            texts.append(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"--data: cannot read {path} as UTF-8 text ({err})") from None
    if not any(t.strip() for t in texts):
        raise ValueError("--data: the files contain no text")
    size = sum(len(t.encode("utf-8")) for t in texts)
    if start is None:
        report(f"training a BPE tokenizer (up to {vocab} tokens) on {size / 1e3:,.0f} KB of text...")
        tokenizer = train_bpe(texts, vocab)
        end = END_ID
    else:
        tokenizer, end = start.tokenizer, int(start.config.get("eos_token_id", END_ID))
        length = min(length, int(start.config.get("max_sequence_length") or length))  # what it was built for
    report("tokenizing...")
    stream: list[int] = []
    for text in texts:
        stream.extend(tokenizer.encode(text, add_special_tokens=False).ids + [end])
    ids = torch.tensor(stream, dtype=torch.long)
    if ids.numel() < 2 * length:
        raise ValueError(f"--data: {ids.numel()} tokens is too little text for windows of {length}")
    split = max(length + 1, int(ids.numel() * 0.98))
    train_ids, val_ids = ids[:split], ids[max(0, split - length) :]
    model_config = start.config if start else None
    if model_config is None:
        model_config = llada_config(
            tokenizer.get_vocab_size(), d_model, n_layers, max(1, d_model // 64), 3 * d_model, 4096
        )

    def export(folder: Path) -> None:
        save_tokenizer(tokenizer, folder)
        write_generation_config(folder, {"max_new_tokens": 128, "steps": 64, "algorithm": "low_confidence"})

    cfg = TrainConfig(
        steps=steps,
        warmup=min(200, steps // 10 + 1),
        eval_every=max(1, min(250, steps // TEXT_EVALS)),
        save_every=max(1, min(250, steps)),
        seed=seed,
        eval_batches=2,
    )
    return Recipe(
        "text",
        model_config,
        StreamBatches(train_ids, batch_size, length, seed),
        StreamBatches(val_ids, batch_size, length, seed + 1),
        cfg,
        export,
    )
