"""Tokenizer and chat templates, on tiny tokenizer.json files shaped like Dream's and LLaDA's."""

from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from unmask.tokenizer import TemplateError, Tokenizer

# Same shape as Qwen2.5's template, which Dream ships (system default, im_start/im_end turns).
QWEN2_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'system' and loop.first %}{%- continue %}{%- endif %}"
    "{%- if message.role not in ['user', 'assistant'] %}{{ raise_exception('Unknown role: ' + message.role) }}{%- endif %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Same shape as LLaDA-8B-Instruct's template (LLaMA-3 headers, bos before the first turn).
LLADA_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

SPECIALS = {
    "qwen2": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|mask|>"],
    "llada": [
        "<|startoftext|>",
        "<|endoftext|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eot_id|>",
        "<|mdm_mask|>",
    ],
}


def make_tokenizer(folder, style: str) -> Tokenizer:
    folder.mkdir(parents=True, exist_ok=True)
    inner = HFTokenizer(models.BPE())
    inner.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    inner.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=SPECIALS[style], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    inner.train_from_iterator(["Hello there, how are you? I am a tiny tokenizer. Température: 20°C."] * 20, trainer)
    inner.save(str(folder / "tokenizer.json"))
    if style == "qwen2":
        config = {
            "chat_template": QWEN2_TEMPLATE,
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "bos_token": None,
        }
    else:
        config = {
            "chat_template": LLADA_TEMPLATE,
            "bos_token": {"content": "<|startoftext|>", "special": True},
            "eos_token": {"content": "<|eot_id|>", "special": True},
        }
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return Tokenizer.from_folder(folder)


def test_qwen2_style_template(tmp_path):
    tok = make_tokenizer(tmp_path / "q", "qwen2")
    text = tok.render_chat([{"role": "user", "content": "Hello there"}])
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n"
    )
    with_system = tok.render_chat(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], add_generation_prompt=False
    )
    assert with_system == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"


def test_llada_style_template(tmp_path):
    tok = make_tokenizer(tmp_path / "l", "llada")
    text = tok.render_chat([{"role": "user", "content": "  Hello there  "}])
    assert text == (
        "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    ids = tok.encode_chat([{"role": "user", "content": "Hello"}])
    assert ids[0] == tok.token_id("<|startoftext|>"), "the template's bos is encoded once, not twice"
    assert tok.mask_id == tok.token_id("<|mdm_mask|>")
    assert tok.token_id("<|eot_id|>") in tok.stop_ids


def test_raise_exception_becomes_template_error(tmp_path):
    tok = make_tokenizer(tmp_path / "q", "qwen2")
    with pytest.raises(TemplateError, match="Unknown role: tool"):
        tok.render_chat([{"role": "tool", "content": "x"}])


def test_tojson_keeps_unicode_and_sandbox_blocks_attributes(tmp_path):
    tok = make_tokenizer(tmp_path / "q", "qwen2")
    tok.chat_template = "{{ messages | tojson }}"
    tok._template = None
    assert tok.render_chat([{"role": "user", "content": "20°C"}]) == '[{"role": "user", "content": "20°C"}]'
    tok.chat_template = "{{ messages.__class__.__mro__ }}"
    tok._template = None
    with pytest.raises(TemplateError, match="unsafe"):
        tok.render_chat([{"role": "user", "content": "x"}])


def test_round_trip_and_pieces(tmp_path):
    tok = make_tokenizer(tmp_path / "q", "qwen2")
    text = "Hello there, Température: 20°C."
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert "".join(tok.piece(i) for i in ids if "\ufffd" not in tok.piece(i)).startswith("Hello")


def test_no_template(tmp_path):
    tok = make_tokenizer(tmp_path / "q", "qwen2")
    tok.chat_template = None
    with pytest.raises(TemplateError, match="no chat template"):
        tok.render_chat([{"role": "user", "content": "x"}])


def test_long_text_encodes_the_same_while_letting_other_threads_run():
    import unmask
    from unmask.tokenizer import LONG_TEXT

    tok = unmask.load("story").tokenizer
    text = "The fox ran to the river. " * (LONG_TEXT // 20)
    assert len(text) > LONG_TEXT
    assert tok.encode(text, add_special_tokens=False) == tok.inner.encode(text, add_special_tokens=False).ids
