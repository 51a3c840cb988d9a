"""Tiny-config tests per architecture, and proofs that every fast path equals the reference path."""

from __future__ import annotations

import pytest
import torch

import unmask
from unmask.models import KVStore

from .conftest import TINY_DREAM, TINY_LLADA, write_checkpoint


@pytest.fixture(scope="module", params=["dream", "llada", "grid", "mmada"])
def tiny(request, tmp_path_factory):
    config = {
        "dream": TINY_DREAM,
        "llada": TINY_LLADA,
        "grid": TINY_LLADA | {"model_type": "grid", "grid_size": 4, "box_size": 2},
        # MMaDA's text side is LLaDA's network under its own model_type (MMadaModelLM(LLaDAModelLM)).
        "mmada": TINY_LLADA | {"model_type": "mmada", "architectures": ["MMadaModelLM"]},
    }[request.param]
    folder = write_checkpoint(tmp_path_factory.mktemp(request.param), config, seed=3)
    return unmask.load(folder, dtype="float32", device="cpu")


def ids(batch=2, length=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(2, 60, (batch, length), generator=g)


def test_shapes_and_dtype(tiny):
    logits = tiny.logits(ids(3, 10))
    assert logits.shape == (3, 10, 64) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()


def test_bidirectional(tiny):
    x = ids(1, 12)
    y = x.clone()
    y[0, -1] = (y[0, -1] + 1) % 60 + 2
    a, b = tiny.logits(x), tiny.logits(y)
    assert not torch.allclose(a[0, 0], b[0, 0]), "changing the last token must change the first logit"


def test_batched_equals_single(tiny):
    x = ids(3, 9)
    batched = tiny.logits(x)
    for row in range(3):
        torch.testing.assert_close(batched[row], tiny.logits(x[row : row + 1])[0], atol=1e-5, rtol=1e-5)


def test_left_padding_matches_unpadded(tiny):
    if tiny.config["model_type"] == "grid":
        pytest.skip("grid positions are absolute board cells; there is no padding")
    x = ids(1, 8)
    padded = torch.cat([torch.full((1, 3), 1), x], dim=1)
    mask = torch.tensor([[0] * 3 + [1] * 8])
    torch.testing.assert_close(tiny.logits(padded, mask)[:, 3:], tiny.logits(x), atol=1e-4, rtol=1e-4)


def test_bfloat16_close_to_float32(tiny, tmp_path):
    folder = tiny.path
    low = unmask.load(folder, dtype="bfloat16", device="cpu")
    assert low.dtype == torch.bfloat16
    x = ids(2, 10)
    full, half = tiny.logits(x), low.logits(x)
    assert half.dtype == torch.float32
    scale = full.abs().max()
    assert (full - half).abs().max() / scale < 0.05
    agree = (full.argmax(-1) == half.argmax(-1)).float().mean()
    assert agree > 0.9
    # bf16 runs end to end through the sampler too
    out = low.generate([[5, 6, 7]], max_new_tokens=8, steps=4)
    assert len(out.sequences[0]) == 11


@pytest.mark.parametrize("window", [(6, 12), (6, 9), (0, 12)])
def test_cached_window_equals_full_pass(tiny, window):
    """With unchanged tokens, a pass over a window through the KV store equals the full pass."""
    x = ids(2, 12)
    net = tiny.net
    full = net(x)
    store = KVStore(net.n_layers)
    net(x, cache=store, start=0)
    a, b = window
    part = net(x[:, a:b], torch.arange(a, b)[None].expand(2, -1), None, store, a)
    torch.testing.assert_close(part, full[:, a:b], atol=1e-5, rtol=1e-5)


def test_keep_slices_the_head(tiny):
    x = ids(2, 12)
    torch.testing.assert_close(tiny.net(x, keep=(4, 9)), tiny.net(x)[:, 4:9])


def test_generation_batched_equals_single(tiny):
    prompts = [[5, 6, 7, 8], [9, 10, 11, 12]]
    both = tiny.generate(prompts, max_new_tokens=8, steps=8)
    for row, prompt in enumerate(prompts):
        assert tiny.generate([prompt], max_new_tokens=8, steps=8).sequences[0] == both.sequences[row]


def test_left_padded_generation_matches_single(tiny):
    if tiny.config["model_type"] == "grid":
        pytest.skip("grid positions are absolute board cells; there is no padding")
    prompts = [[5, 6, 7, 8, 9], [9, 10]]
    both = tiny.generate(prompts, max_new_tokens=8, steps=8)
    alone = tiny.generate([prompts[1]], max_new_tokens=8, steps=8)
    assert both.sequences[1][3:] == alone.sequences[0]


def test_grid_rejects_a_canvas_larger_than_the_board(tiny):
    if tiny.config["model_type"] != "grid":
        pytest.skip("grid only")
    with pytest.raises(ValueError, match="board"):
        tiny.logits(ids(1, 17))
