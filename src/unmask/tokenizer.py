"""Text <-> token ids: `tokenizers.Tokenizer` plus the checkpoint's chat template.

Notable features:
- Reads tokenizer.json and tokenizer_config.json; no `transformers` at run time.
- A folder with only the slow Qwen2 files (vocab.json + merges.txt, as Dream, Dream-Coder and
  DiffuCoder ship) gets the byte-level BPE transformers' Qwen2 converter builds from them, with
  the added tokens of tokenizer_config.json / added_tokens.json at their own ids. The result is
  cached as a tokenizer.json under unmask's cache ($UNMASK_CACHE, else ~/.cache/unmask), keyed by
  the files' hash; never written into the model folder or the Hugging Face cache.
- Chat templates render the way transformers' `apply_chat_template` does: a jinja2
  ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the `raise_exception`
  and `strftime_now` globals, a `tojson` filter that keeps non-ASCII text, and
  `add_generation_prompt`. The rendered text is encoded without adding special tokens again
  (the template already wrote them).
- Special tokens are found from the config, tokenizer_config.json (plain strings or
  AddedToken dicts), then well-known names (`<|mdm_mask|>`, `<|mask|>`, `<|im_end|>`, `<|eot_id|>`)
  among the *special* added tokens only: an ordinary vocabulary piece that happens to read `</s>`
  (Qwen's id 128247) is text, and must not end a generation.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path

from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers import Tokenizer as HFTokenizer

LONG_TEXT = 10_000  # characters above which encoding lets other threads run (see Tokenizer.encode)
# Dream, LLaDA2, SDAR, Fast-dLLM v2, then the generic spellings.
MASK_TOKEN_NAMES = ("<|mdm_mask|>", "<|mask|>", "<|MASK|>", "|<MASK>|", "[MASK]", "<mask>")
# Tokens that end an assistant turn in the chat formats of the supported families; they count
# only as special added tokens (never as ordinary vocabulary pieces).
END_OF_TURN_NAMES = ("<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<|end_of_text|>", "</s>")

FAST_FILE = "tokenizer.json"
SLOW_FILES = ("vocab.json", "merges.txt")  # the slow Qwen2 (GPT-2 style) byte-level BPE files
# Every file the slow tokenizer is built from, so each is part of the cache key.
SLOW_INPUTS = (*SLOW_FILES, "tokenizer_config.json", "added_tokens.json", "special_tokens_map.json")
# tokenizer_class values whose vocab.json + merges.txt are Qwen2's format (DreamTokenizer is a
# copy of Qwen2Tokenizer); any other class splits text differently (GPT-2's regex, no NFC).
QWEN2_CLASSES = ("Qwen2Tokenizer", "Qwen2TokenizerFast", "DreamTokenizer")
# Qwen2's pre-tokenizer split, as transformers' `Qwen2Converter` (convert_slow_tokenizer.py)
# and `Qwen2Tokenizer` write it: single digits, letters with one leading non-letter, newlines kept.
QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
SPECIAL_TOKEN_KEYS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
CACHE_ENV = "UNMASK_CACHE"  # unmask's cache root; default $XDG_CACHE_HOME/unmask or ~/.cache/unmask
# Part of the cache key: bump it when `build_from_slow_files` changes what it builds.
SLOW_BUILD_VERSION = "1"


class TemplateError(ValueError):
    """The chat template refused the conversation (its own `raise_exception`) or is broken."""


def _token_text(value) -> str | None:
    if isinstance(value, dict):
        return value.get("content")
    return value


class Tokenizer:
    def __init__(self, tokenizer: HFTokenizer, config: dict | None = None):
        self.inner = tokenizer
        self.config = config or {}
        self.chat_template: str | None = self._pick_template(self.config.get("chat_template"))
        self.bos_token = _token_text(self.config.get("bos_token"))
        self.eos_token = _token_text(self.config.get("eos_token"))
        self.pad_token = _token_text(self.config.get("pad_token"))
        self.mask_token = _token_text(self.config.get("mask_token"))
        self._template = None
        self._pieces: dict[int, str] = {}

    @staticmethod
    def has_files(folder: str | Path) -> bool:
        """Whether `from_folder` finds a tokenizer here: tokenizer.json, or vocab.json + merges.txt."""
        folder = Path(folder)
        return (folder / FAST_FILE).is_file() or all((folder / name).is_file() for name in SLOW_FILES)

    @classmethod
    def from_folder(cls, folder: str | Path) -> Tokenizer:
        folder = Path(folder)
        if (folder / FAST_FILE).is_file():
            inner = HFTokenizer.from_file(str(folder / FAST_FILE))
        elif all((folder / name).is_file() for name in SLOW_FILES):
            inner = cached_slow_tokenizer(folder)
        else:
            raise FileNotFoundError(f"{folder}: no {FAST_FILE}, and no {' + '.join(SLOW_FILES)}")
        config = _read_json(folder / "tokenizer_config.json")
        # Newer checkpoints keep the template in its own file.
        jinja = folder / "chat_template.jinja"
        if jinja.is_file() and not config.get("chat_template"):
            config["chat_template"] = jinja.read_text(encoding="utf-8")
        return cls(inner, config)

    @staticmethod
    def _pick_template(template) -> str | None:
        if isinstance(template, list):  # [{"name": "default", "template": ...}, ...]
            named = {t.get("name"): t.get("template") for t in template}
            return named.get("default") or next(iter(named.values()), None)
        return template

    # -- ids ---------------------------------------------------------------------------------

    def token_id(self, text: str | None) -> int | None:
        return None if text is None else self.inner.token_to_id(text)

    @property
    def vocab_size(self) -> int:
        return self.inner.get_vocab_size(with_added_tokens=True)

    @property
    def special_tokens(self) -> dict[str, int]:
        """The added tokens flagged special, content -> id (what decoding skips)."""
        added = self.inner.get_added_tokens_decoder()
        return {token.content: i for i, token in sorted(added.items()) if token.special}

    @property
    def mask_id(self) -> int | None:
        """The declared mask token, else a special added token with a well-known mask name."""
        declared = self.token_id(self.mask_token)
        if declared is not None:
            return declared
        specials = self.special_tokens
        return next((specials[name] for name in MASK_TOKEN_NAMES if name in specials), None)

    @property
    def stop_ids(self) -> list[int]:
        """The declared eos token, then the special added tokens that end a turn."""
        specials = self.special_tokens
        found = [self.token_id(self.eos_token), *(specials.get(name) for name in END_OF_TURN_NAMES)]
        return list(dict.fromkeys(i for i in found if i is not None))

    # -- text --------------------------------------------------------------------------------

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        if len(text) > LONG_TEXT:
            # tokenizers' `encode` holds the GIL (a 468K-character prompt stalled every other
            # thread 0.18 s); `encode_batch` releases it, so a server's event loop keeps running.
            return self.inner.encode_batch([text], add_special_tokens=add_special_tokens)[0].ids
        return self.inner.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.inner.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def piece(self, token_id: int) -> str:
        """One token's text on its own (a byte-level piece of a split character shows as U+FFFD)."""
        text = self._pieces.get(token_id)
        if text is None:
            text = self._pieces[token_id] = self.inner.decode([token_id], skip_special_tokens=False)
        return text

    # -- chat --------------------------------------------------------------------------------

    def render_chat(self, messages: list[dict], add_generation_prompt: bool = True, **extra) -> str:
        """The conversation as the model's chat template writes it."""
        if not self.chat_template:
            raise TemplateError("this model has no chat template; send a plain prompt instead of messages")
        import jinja2

        if self._template is None:
            env = _chat_environment()
            try:
                self._template = env.from_string(self.chat_template)
            except jinja2.TemplateSyntaxError as err:
                raise TemplateError(f"the model's chat template does not parse: {err}") from None
        try:
            return self._template.render(
                messages=messages,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token or "",
                eos_token=self.eos_token or "",
                pad_token=self.pad_token or "",
                **extra,
            )
        except TemplateError:
            raise
        except jinja2.TemplateError as err:
            raise TemplateError(f"the chat template failed: {err}") from None

    def encode_chat(self, messages: list[dict], add_generation_prompt: bool = True, **extra) -> list[int]:
        return self.encode(self.render_chat(messages, add_generation_prompt, **extra), add_special_tokens=False)


# -- slow files -> tokenizers ------------------------------------------------------------------


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def read_merges(path: Path) -> list[tuple[str, str]]:
    """merges.txt as pairs, in rank order (the `#version` header line and blank lines skipped)."""
    merges = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or (number == 1 and line.startswith("#version")):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}:{number}: expected two pieces separated by a space, got {line!r}")
        merges.append((parts[0], parts[1]))
    return merges


def added_tokens(folder: Path, config: dict, vocab: dict[str, int]) -> dict[int, AddedToken]:
    """The added tokens as transformers loads them, by id: tokenizer_config.json's
    `added_tokens_decoder` (with its flags), then added_tokens.json's, then the special tokens the
    config and special_tokens_map.json name that are vocabulary pieces. A named token is special
    whatever its source says."""
    named = set()
    for source in (_read_json(folder / "special_tokens_map.json"), config):
        named.update(_token_text(source.get(key)) for key in SPECIAL_TOKEN_KEYS)
        named.update(_token_text(t) for t in source.get("additional_special_tokens") or [])
    named.discard(None)
    added: dict[int, AddedToken] = {}
    for key, entry in (config.get("added_tokens_decoder") or {}).items():
        added[int(key)] = AddedToken(
            entry["content"],
            single_word=entry.get("single_word", False),
            lstrip=entry.get("lstrip", False),
            rstrip=entry.get("rstrip", False),
            normalized=entry.get("normalized", False),
            special=entry.get("special", False) or entry["content"] in named,
        )
    known = {token.content for token in added.values()}
    listed = _read_json(folder / "added_tokens.json")
    for content, i in [*listed.items(), *((c, vocab[c]) for c in sorted(named) if c in vocab)]:
        if content not in known:
            added[int(i)] = AddedToken(content, normalized=False, special=content in named)
            known.add(content)
    return added


def build_from_slow_files(folder: str | Path) -> HFTokenizer:
    """The fast tokenizer transformers' `Qwen2Converter` makes from vocab.json + merges.txt.

    BPE with no unknown token and no byte fallback; NFC; Qwen2's regex split, then the byte
    mapping (ByteLevel without its own regex, and without a prefix space unless the config asks);
    a ByteLevel decoder; a post-processor that adds no token. Added tokens keep their ids.
    """
    folder = Path(folder)
    config = _read_json(folder / "tokenizer_config.json")
    kind = config.get("tokenizer_class")
    if kind is not None and kind not in QWEN2_CLASSES:
        raise ValueError(
            f"{folder}: no {FAST_FILE}, and tokenizer_class {kind!r} is not one whose {' + '.join(SLOW_FILES)} "
            f"unmask can read (only {', '.join(QWEN2_CLASSES)})"
        )
    vocab = _read_json(folder / "vocab.json")
    extra = added_tokens(folder, config, vocab)
    # An added token outside the vocabulary is put in it at its own id, so that adding it below
    # keeps that id (tokenizers would otherwise number new tokens from the end of the vocabulary).
    for i, token in extra.items():
        vocab[token.content] = i
    inner = HFTokenizer(
        models.BPE(
            vocab=vocab,
            merges=read_merges(folder / "merges.txt"),
            dropout=None,
            unk_token=None,
            continuing_subword_prefix="",
            end_of_word_suffix="",
            fuse_unk=False,
            byte_fallback=False,
        )
    )
    inner.normalizer = normalizers.NFC()
    inner.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=bool(config.get("add_prefix_space", False)), use_regex=False),
        ]
    )
    inner.decoder = decoders.ByteLevel()
    inner.post_processor = processors.ByteLevel(trim_offsets=False)
    inner.add_tokens([extra[i] for i in sorted(extra)])
    return inner


def cache_root() -> Path:
    """unmask's cache: $UNMASK_CACHE, else $XDG_CACHE_HOME/unmask, else ~/.cache/unmask."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "unmask"


def slow_cache_path(folder: str | Path) -> Path:
    """Where the tokenizer.json built from `folder`'s slow files is cached (by their sha256)."""
    digest = hashlib.sha256(f"unmask-slow-tokenizer-{SLOW_BUILD_VERSION}".encode())
    for name in SLOW_INPUTS:
        path = Path(folder) / name
        data = path.read_bytes() if path.is_file() else b""
        digest.update(f"\0{name}\0{path.is_file()}\0{len(data)}\0".encode())
        digest.update(data)
    return cache_root() / "tokenizers" / digest.hexdigest() / FAST_FILE


def cached_slow_tokenizer(folder: str | Path) -> HFTokenizer:
    """`build_from_slow_files(folder)`, read from the cache when it was built before."""
    path = slow_cache_path(folder)
    if path.is_file():
        try:
            return HFTokenizer.from_file(str(path))
        except Exception:  # a damaged cache entry (tokenizers raises a bare Exception): build again
            pass
    inner = build_from_slow_files(folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_text(inner.to_str(), encoding="utf-8")
        os.replace(partial, path)  # readers never see a half-written file
    except OSError:
        pass  # a read-only cache only costs the next load the build again
    return inner


def _raise(message: str):
    raise TemplateError(message)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _chat_environment():
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env
