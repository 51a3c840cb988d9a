"""Text <-> token ids: `tokenizers.Tokenizer` plus the checkpoint's chat template.

Notable features:
- Reads tokenizer.json and tokenizer_config.json only; no `transformers` at run time.
- Chat templates render the way transformers' `apply_chat_template` does: a jinja2
  ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the `raise_exception`
  and `strftime_now` globals, a `tojson` filter that keeps non-ASCII text, and
  `add_generation_prompt`. The rendered text is encoded without adding special tokens again
  (the template already wrote them).
- Special tokens are found from the config, tokenizer_config.json (plain strings or
  AddedToken dicts), then well-known names (`<|mdm_mask|>`, `<|mask|>`, `<|im_end|>`, `<|eot_id|>`).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer

MASK_TOKEN_NAMES = ("<|mdm_mask|>", "<|mask|>", "[MASK]", "<mask>")
# Tokens that end an assistant turn in the chat formats of the supported families.
END_OF_TURN_NAMES = ("<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<|end_of_text|>", "</s>")


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

    @classmethod
    def from_folder(cls, folder: str | Path) -> Tokenizer:
        folder = Path(folder)
        inner = HFTokenizer.from_file(str(folder / "tokenizer.json"))
        config_path = folder / "tokenizer_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
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
    def mask_id(self) -> int | None:
        for name in (self.mask_token, *MASK_TOKEN_NAMES):
            found = self.token_id(name)
            if found is not None:
                return found
        return None

    @property
    def stop_ids(self) -> list[int]:
        ids = []
        for name in (self.eos_token, *END_OF_TURN_NAMES):
            found = self.token_id(name)
            if found is not None and found not in ids:
                ids.append(found)
        return ids

    # -- text --------------------------------------------------------------------------------

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
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
