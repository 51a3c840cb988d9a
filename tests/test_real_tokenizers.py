"""Dream's real tokenizer files: the slow Qwen2 vocab.json + merges.txt, with no tokenizer.json.

The files in tests/real/dream-v0-instruct-7b/ are byte-identical copies of the published
Dream-org/Dream-v0-Instruct-7B folder (Apache-2.0; vendored at monash-yann/dllm-research @
ecd7cd2f8cbe67f49c34763ba56a451078be5635 : models/Dream-7B-Instruct/), configuration and
tokenizer only. transformers is the oracle here and nowhere else: unmask never imports it.

Notable features:
- The tokenizer unmask builds from the slow files gives the ids and the text transformers'
  `Qwen2Tokenizer` gives, on ~1,200 strings from a seeded generator that aims at where
  byte-level BPE goes wrong (the pre-tokenizer's regex, NFC, added tokens, whitespace runs).
- Chat templates render as `apply_chat_template` renders them, tools and tool turns included.
- The end ids are the special ones only: the ordinary piece `</s>` (128247) is text.
- A Dream-format folder with random weights and no tokenizer.json runs `unmask run` and `chat`.
"""

from __future__ import annotations

import json
import random
import shutil
import unicodedata
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from unmask import checkpoints
from unmask.cli import app
from unmask.engine import Canvas, Completion, GenerationOptions
from unmask.loading import special_ids
from unmask.pulling import pick_files
from unmask.tokenizer import CACHE_ENV, Tokenizer, cache_root, slow_cache_path

from .conftest import write_checkpoint

DREAM = Path(__file__).parent / "real" / "dream-v0-instruct-7b"
SLOW_FILES = (
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "special_tokens_map.json",
)
END_OF_TEXT, IM_START, IM_END, MASK = 151643, 151644, 151645, 151666
PLAIN_END_PIECE = 128247  # "</s>" in Qwen's vocabulary: an ordinary piece, not a special token
N_STRINGS = 1200


@pytest.fixture(scope="module", autouse=True)
def unmask_cache(tmp_path_factory):
    """Every tokenizer this module builds is cached in a temporary folder, never in ~/.cache."""
    root = tmp_path_factory.mktemp("unmask-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(root))
        yield root


@pytest.fixture(scope="module")
def ours() -> Tokenizer:
    return Tokenizer.from_folder(DREAM)


@pytest.fixture(scope="module")
def oracle():
    transformers = pytest.importorskip("transformers")
    return transformers.Qwen2Tokenizer.from_pretrained(str(DREAM))


# -- strings ------------------------------------------------------------------------------------

CODE = [
    'def area(r: float) -> float:\n    """Circle."""\n    return 3.14159 * r ** 2\n',
    "class Stack:\n\tdef __init__(self):\n\t\tself.items = []\n\n\tdef push(self, x):\n\t\tself.items.append(x)\n",
    "for i in range(10):\n    if i % 2 == 0:\n        print(f'{i:>4d} is even')  # comment\n",
    "@dataclass(frozen=True)\nclass P:\n    x: int = 0\n    y: int = 0\r\n",
    "const add = (a, b) => a + b;\nconsole.log(`sum: ${add(1, 2)}`);\nif (x === null) { return; }\n",
    "function f() {\n  return [1, 2, 3].map(x => x * 2).filter(Boolean);\n}\n\n\n",
    '<!DOCTYPE html>\n<html lang="en">\n  <head>\n    <meta charset="utf-8">\n  </head>\n'
    '  <body>\n\t<div class="a b">&amp; &lt;tag&gt;</div>\n    <!-- note -->\n  </body>\n</html>\n',
    '{"name": "unmask", "version": "0.1.0", "list": [1, 2.5, -3e10], "ok": true, "none": null}',
    '#!/usr/bin/env bash\nset -euo pipefail\nfor f in *.txt; do echo "$f" | wc -c; done\n',
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son' ORDER BY id DESC;",
    "x=1;y=2;z=x+y\tw = z*2  \n    ",
    "    indented\n        more\n\t\ttabbed\n  \t mixed \t\n",
    "it's don't I'M we'LL they'Ve she'd YOU'RE o'clock rock'n'roll 'quoted'",
]
EMOJI = [
    "😀",
    "👍🏽",
    "👨‍👩‍👧‍👦",
    "🏳️‍🌈",
    "🇫🇷🇯🇵",
    "1️⃣",
    "❤️‍🔥",
    "🧑🏿‍💻 at work",
    "I ❤ emoji 🎉🎉🎉!",
    "👩‍❤️‍💋‍👨",
]
SCRIPTS = [
    "中文分词测试，你好世界。",
    "日本語のテキスト：ひらがな、カタカナ、漢字。",
    "한국어 문장입니다. 안녕하세요!",
    "全角：ＡＢＣ１２３！？",
    "\u3000ideographic\u3000space",
    "مرحبا بالعالم",
    "مَرْحَبًا بِكُمْ",
    "\u200fRTL mark\u200e and LTR",
    "שָׁלוֹם עולם",
    "Ελληνικά κείμενα",
    "Русский текст, ёлка.",
    "हिन्दी पाठ",
    "ภาษาไทย",
    "Tiếng Việt có dấu",
]
# Decomposed and reordered marks, so that NFC changes the text before it is split.
COMBINING = [
    "e\u0301te\u0301",
    "A\u030angstro\u0308m",
    "n\u0303",
    "Z\u0327a\u0328",
    "a\u0323\u0302 vs a\u0302\u0323",
    "\u1100\u1161\u11a8",
    "Cafe\u0301 cre\u0300me bru\u0302le\u0301e",
    "Tie\u0302\u0301ng Vie\u0323\u0302t",
    "x\u0301\u0302\u0303\u0304",
    "\u212b\u2126",
    "ﬁ ligature, ǅ titlecase",
    "ñ vs n\u0303",
]
DIGITS = [
    "1234567890",
    "3.14159265358979",
    "1,000,000.00",
    "2024-01-31T12:34:56Z",
    "٣٤٥ ۱۲۳",
    "²³ ½ Ⅻ",
    "0x1F 0b1010 1e-9",
    "v1.2.3-rc.4+build.5",
    "99999999999999999999",
]
WHITESPACE = [
    " ",
    "   ",
    "\t",
    "\t\t\t",
    "\n",
    "\n\n\n",
    "\r\n",
    "\r\n\r\n",
    "line  \n",
    "trailing   ",
    "  leading",
    " \t \n \t",
    "a \n b",
    "\u00a0nbsp\u00a0",
    "em\u2003space",
    "\x0b\x0c",
    "\x85next line",
    "line\u2028sep",
    "zero\u200bwidth",
]
SPECIAL_LOOKING = [
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|im_end",
    "<|im_end|",
    "< |im_end|>",
    "<|IM_END|>",
    "<|im_end|><|im_end|>",
    "foo<|im_start|>bar",
    "<<|im_start|>>",
    "<s>",
    "</s>",
    "Use <s>old</s> new price",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>",
    "[MASK] <mask> <|mask|>",
    "<|beginoftext|>",
    "<|mdm_mask|> <|eot_id|>",
    "<|object_ref_start|>x<|object_ref_end|>",
]
WORDS = (
    "the quick brown fox jumps over lazy dog Hello world unmask diffusion model token "
    "straße naïve façade coöperate résumé jalapeño São Paulo Zürich"
).split()
PUNCTUATION = list("!?.,;:'\"()[]{}<>/\\|@#$%^&*-_=+~`")
UNICODE_RANGES = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x600, 0x6FF), (0x4E00, 0x4FFF)]
UNICODE_RANGES += [(0x3040, 0x30FF), (0xAC00, 0xAD00), (0x1F300, 0x1F64F), (0x2000, 0x206F), (0x300, 0x36F)]


def chat_turn(rng: random.Random) -> str:
    role = rng.choice(["system", "user", "assistant"])
    content = rng.choice([*WORDS, *SCRIPTS, *EMOJI, *CODE[:4]])
    return f"<|im_start|>{role}\n{content}<|im_end|>\n"


def random_unicode(rng: random.Random) -> str:
    chars = []
    for _ in range(rng.randint(1, 24)):
        lo, hi = rng.choice(UNICODE_RANGES)
        chars.append(chr(rng.randint(lo, hi)))
    return "".join(chars)


def varied_strings(n: int = N_STRINGS, seed: int = 0) -> list[str]:
    """Every fragment above alone, then seeded mixtures of them, until `n` distinct strings."""
    rng = random.Random(seed)
    pools = [CODE, EMOJI, SCRIPTS, COMBINING, DIGITS, WHITESPACE, SPECIAL_LOOKING]
    out = dict.fromkeys(s for pool in pools for s in pool)
    makers = [
        lambda: rng.choice(rng.choice(pools)),
        lambda: " ".join(rng.choices(WORDS, k=rng.randint(1, 12))),
        lambda: "".join(chat_turn(rng) for _ in range(rng.randint(1, 3))) + "<|im_start|>assistant\n",
        lambda: random_unicode(rng),
        lambda: "".join(rng.choices(PUNCTUATION, k=rng.randint(1, 8))),
        lambda: rng.choice(WHITESPACE) * rng.randint(1, 6),
        lambda: str(rng.randint(0, 10 ** rng.randint(1, 30))),
    ]
    separators = ["", " ", "  ", "\n", "\t", "\r\n", " \n", "\n\n", "   \t"]
    while len(out) < n:
        parts = [rng.choice(makers)() for _ in range(rng.randint(1, 4))]
        text = rng.choice(separators).join(parts)
        if rng.random() < 0.2:
            text += rng.choice(WHITESPACE)
        out[text] = None
    return list(out)[:n]


def test_generator_is_varied_and_fixed():
    strings = varied_strings()
    assert len(strings) == N_STRINGS == len(set(strings)) and strings == varied_strings()
    assert sum(unicodedata.normalize("NFC", s) != s for s in strings) >= 20, "NFC must matter to some"
    assert sum("<|im_end|>" in s for s in strings) >= 50


# -- ids and text --------------------------------------------------------------------------------


def test_published_examples(ours):
    assert ours.encode("Hello world") == [9707, 1879]
    assert ours.encode("<|im_start|>user\nHi<|im_end|>") == [IM_START, 872, 198, 13048, IM_END]
    assert ours.vocab_size == 151667


def test_same_ids_and_text_as_transformers(ours, oracle):
    strings = varied_strings()
    wrong_ids, wrong_text, wrong_plain = [], [], []
    for s in strings:
        ids = ours.encode(s)
        expected = oracle.encode(s, add_special_tokens=False)
        if ids != expected or ours.encode(s, add_special_tokens=False) != expected:
            wrong_ids.append((s, ids, expected))
            continue
        if ours.decode(ids, skip_special_tokens=False) != oracle.decode(ids, skip_special_tokens=False):
            wrong_text.append(s)
        if ours.decode(ids) != oracle.decode(ids, skip_special_tokens=True):
            wrong_plain.append(s)
    assert not wrong_ids, f"{len(wrong_ids)} of {len(strings)} strings differ, first: {wrong_ids[:3]}"
    assert not wrong_text, f"decodes differ: {wrong_text[:5]}"
    assert not wrong_plain, f"decodes without special tokens differ: {wrong_plain[:5]}"


def test_text_round_trips(ours):
    """Byte-level BPE loses nothing but the NFC it applies (outside added tokens)."""
    for s in varied_strings(300, seed=1):
        ids = ours.encode(s)
        assert unicodedata.normalize("NFC", ours.decode(ids, skip_special_tokens=False)) == unicodedata.normalize(
            "NFC", s
        )


def test_added_tokens_keep_their_ids_and_flags(ours):
    decoder = json.loads((DREAM / "tokenizer_config.json").read_text())["added_tokens_decoder"]
    added = ours.inner.get_added_tokens_decoder()
    assert {str(i): (t.content, t.special) for i, t in added.items()} == {
        k: (v["content"], v["special"]) for k, v in decoder.items()
    }
    for key, entry in decoder.items():
        assert ours.token_id(entry["content"]) == int(key)
        assert ours.encode(entry["content"]) == [int(key)]


# -- chat templates ------------------------------------------------------------------------------

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city, in °C",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}],
    [
        {"role": "user", "content": "Write a haiku about rain."},
        {"role": "assistant", "content": "Soft rain on the roof\nthe gutters hum a low tune\nsleep comes like a tide"},
        {"role": "user", "content": "Now one in 日本語, with an emoji 🌧️."},
    ],
    [
        {"role": "system", "content": "You answer in JSON."},
        {"role": "user", "content": "  spaces around  "},
        {"role": "assistant", "content": '{"ok": true}'},
        {"role": "system", "content": "A second system turn."},
        {"role": "user", "content": "Tabs\tand\nnewlines\r\n"},
    ],
    [{"role": "user", "content": "<|im_end|> inside a message, and Use <s>old</s> new price"}],
]
TOOL_CONVERSATION = [
    {"role": "user", "content": "Weather in Zürich?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich"}}}],
    },
    {"role": "tool", "content": '{"temp": 21}'},
    {"role": "tool", "content": '{"wind": "calm"}'},
    {"role": "assistant", "content": "21 °C and calm."},
]


@pytest.mark.parametrize("generation_prompt", [True, False])
def test_chat_templates_render_as_transformers(ours, oracle, generation_prompt):
    for messages in CONVERSATIONS:
        expected = oracle.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
        assert ours.render_chat(messages, add_generation_prompt=generation_prompt) == expected
        assert ours.encode_chat(messages, add_generation_prompt=generation_prompt) == oracle.encode(
            expected, add_special_tokens=False
        )
    expected = oracle.apply_chat_template(
        TOOL_CONVERSATION, tools=TOOLS, tokenize=False, add_generation_prompt=generation_prompt
    )
    assert ours.render_chat(TOOL_CONVERSATION, add_generation_prompt=generation_prompt, tools=TOOLS) == expected
    assert "<tool_call>" in expected and "<tool_response>" in expected


# -- end ids -------------------------------------------------------------------------------------


def dream_ids(tok):
    config = json.loads((DREAM / "config.json").read_text())
    generation = json.loads((DREAM / "generation_config.json").read_text())
    return special_ids(config, generation, tok)


def test_end_ids_are_the_special_ones(ours):
    assert ours.token_id("</s>") == PLAIN_END_PIECE, "the piece exists, as an ordinary one"
    assert ours.stop_ids == [END_OF_TEXT, IM_END]
    assert ours.mask_id == MASK
    ids = dream_ids(ours)
    assert ids.eos == [END_OF_TEXT, IM_END] and PLAIN_END_PIECE not in ids.eos
    assert ids.mask == MASK and ids.pad == END_OF_TEXT


def test_plain_end_piece_does_not_cut_a_completion(ours):
    before, after = ours.encode("Use <s>old"), ours.encode(" new price")
    region = [*before, PLAIN_END_PIECE, *after, END_OF_TEXT, END_OF_TEXT]
    model = SimpleNamespace(tokenizer=ours, ids=dream_ids(ours))
    completion = Completion(model, Canvas(ours.encode("Price:")), GenerationOptions(max_new_tokens=len(region)))
    completion.finish(region)
    assert completion.text == "Use <s>old</s> new price"
    assert completion.finish_reason == "stop"
    assert completion.usage()["completion_tokens"] == len(before) + 1 + len(after)


def test_a_special_end_token_still_cuts(ours):
    region = [*ours.encode("Done."), IM_END, *ours.encode(" never shown")]
    model = SimpleNamespace(tokenizer=ours, ids=dream_ids(ours))
    completion = Completion(model, Canvas([]), GenerationOptions(max_new_tokens=len(region)))
    completion.finish(region)
    assert completion.text == "Done." and completion.finish_reason == "stop"


def test_ordinary_pieces_named_like_end_tokens_are_not_stops(tmp_path):
    """A tokenizer.json whose `<|im_end|>` is a plain vocabulary piece gets no stop from it."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers

    vocab = {"a": 0, "<|im_end|>": 1, "</s>": 2, "<|mask|>": 3, "<|endoftext|>": 4}
    inner = HFTokenizer(models.WordLevel(vocab, unk_token="a"))
    inner.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    inner.add_special_tokens(["<|endoftext|>"])
    inner.save(str(tmp_path / "tokenizer.json"))
    tok = Tokenizer.from_folder(tmp_path)
    assert tok.stop_ids == [4] and tok.mask_id is None


# -- cache ---------------------------------------------------------------------------------------


def slow_copy(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in SLOW_FILES:
        shutil.copy(DREAM / name, folder / name)
    return folder


def test_built_tokenizer_is_cached_outside_the_model_folder(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    folder = slow_copy(tmp_path / "model")
    first = Tokenizer.from_folder(folder)
    cached = slow_cache_path(folder)
    assert cached.is_file() and cached.is_relative_to(cache / "tokenizers") and cached.name == "tokenizer.json"
    assert not (folder / "tokenizer.json").exists() and sorted(p.name for p in folder.iterdir()) == sorted(SLOW_FILES)

    def no_build(_folder):
        raise AssertionError("the second load must read the cache, not build again")

    monkeypatch.setattr("unmask.tokenizer.build_from_slow_files", no_build)
    second = Tokenizer.from_folder(folder)
    text = "<|im_start|>user\nCafe\u0301 ☕, 1234<|im_end|>"
    assert second.encode(text) == first.encode(text) and second.stop_ids == first.stop_ids
    assert second.inner.get_added_tokens_decoder() == first.inner.get_added_tokens_decoder()


def test_cache_key_follows_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    one, two = slow_copy(tmp_path / "one"), slow_copy(tmp_path / "two")
    assert slow_cache_path(one) == slow_cache_path(two), "same files, same entry"
    config = json.loads((two / "tokenizer_config.json").read_text())
    (two / "tokenizer_config.json").write_text(json.dumps(config | {"eos_token": "<|im_end|>"}))
    assert slow_cache_path(one) != slow_cache_path(two)


def test_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "unmask"


def test_other_slow_formats_are_refused(tmp_path):
    folder = slow_copy(tmp_path / "gpt2")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps(config | {"tokenizer_class": "GPT2Tokenizer"}))
    with pytest.raises(ValueError, match="GPT2Tokenizer"):
        Tokenizer.from_folder(folder)


# -- folders, pull, CLI --------------------------------------------------------------------------


def test_pull_fetches_the_slow_files():
    listing = [
        "config.json",
        "generation_config.json",
        *SLOW_FILES,
        "model.safetensors",
        "tokenization_dream.py",
        "README.md",
    ]
    assert set(pick_files(listing, None)) == set(listing) - {"tokenization_dream.py", "README.md"}


@pytest.fixture(scope="module")
def small_dream(tmp_path_factory) -> Path:
    """Dream's real config and tokenizer files, random weights at reduced size (full vocabulary)."""
    folder = tmp_path_factory.mktemp("small-dream")
    config = json.loads((DREAM / "config.json").read_text())
    config |= {
        "num_hidden_layers": 2,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    }
    write_checkpoint(folder, config)
    for name in ("generation_config.json", *SLOW_FILES):
        shutil.copy(DREAM / name, folder / name)
    return folder


def test_folder_reports_a_tokenizer(small_dream):
    info = checkpoints.describe(small_dream)
    assert info.tokenizer and info.chat_template and info.supported
    assert checkpoints.special_tokens(small_dream) == (MASK, [END_OF_TEXT, IM_END])


@pytest.mark.slow
def test_run_and_chat_on_a_folder_without_tokenizer_json(small_dream):
    assert not (small_dream / "tokenizer.json").exists()
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(small_dream), "Hello", "--json", "-n", "8", "--steps", "4"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["prompt"] == "Hello" and data["nfe"] <= 4 and data["finish_reason"] in ("stop", "length")
    assert isinstance(data["text"], str)
    result = runner.invoke(app, ["chat", str(small_dream), "-n", "8", "--steps", "4"], input="Hi\n/bye\n")
    assert result.exit_code == 0, result.output
    assert "no tokenizer" not in result.output and "Traceback" not in result.output
