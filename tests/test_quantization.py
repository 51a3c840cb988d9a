"""Weight-only int8 / int4 quantization: every matmul path equals the dequantized reference, quantized
models stay close to the float model, `unmask quantize` round-trips, the fit check names its fix,
and a load holds one copy of the weights (peak RSS measured in a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from typer.testing import CliRunner

import unmask
from unmask import checkpoints, loading
from unmask.cli import app
from unmask.loading import ModelLoadError
from unmask.models import architecture_for, quant

from .conftest import TINY_DREAM, TINY_LLADA

# Wide enough that every layer's inputs divide into int4 groups of 32 or 64.
WIDE_DREAM = TINY_DREAM | {"hidden_size": 64, "intermediate_size": 128}
WIDE_LLADA = TINY_LLADA | {"d_model": 64, "mlp_hidden_size": 128}
# Dream-v0-Instruct-7B's config.json, the sizes the memory estimate reads.
DREAM_7B = {
    "model_type": "Dream",
    "vocab_size": 152064,
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "tie_word_embeddings": False,
}
DREAM_7B_PARAMS = 7_615_616_512  # the hub index's total_size / 2 bytes
GB = 1e9


def write_checkpoint(folder, config, seed=0, dtype=torch.float32):
    """A random-weight checkpoint; a tied model stores its table once, as the hub files do."""
    folder.mkdir(parents=True, exist_ok=True)
    arch = architecture_for(config["model_type"])
    torch.manual_seed(seed)
    net = arch.make_model(arch.make_args(config))
    state = {k: v.detach().to(dtype).clone().contiguous() for k, v in net.state_dict().items()}
    if config.get("tie_word_embeddings"):
        del state["lm_head.weight"]
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def linear_and_input(n, k, dtype, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(n, k, generator=g) * 0.05
    b = torch.randn(n, generator=g) * 0.1 if bias else None
    x = torch.randn(3, 5, k, generator=g).to(dtype)  # (B, L, K): the modules take any leading shape
    return weight, b, x


def reference(x, stored, mode, bias):
    """The dequantized matmul in float32: what every path must equal."""
    y = F.linear(x.float(), quant.dequantize(stored, mode))
    return y if bias is None else y + bias.float()


def assert_matches(y, ref, dtype):
    assert y.dtype == dtype and y.shape == ref.shape
    # bfloat16 keeps 8 bits of mantissa: outputs agree to its rounding, float32 to its own.
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-5
    assert (y.float() - ref).abs().max() <= tol * ref.abs().max()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("rows", [5, 64])  # the CPU kernel below INT8_KERNEL_MAX_ROWS, dequantizing above
def test_int8_linear_equals_dequantized_reference(dtype, rows):
    weight, bias, x = linear_and_input(48, 96, dtype)
    x = x.reshape(-1, 96)[:rows] if rows <= 15 else torch.randn(2, rows // 2, 96).to(dtype)
    stored = quant.quantize_weight(weight, "int8")
    module = quant.build(torch.nn.Linear(96, 48), stored, "int8", bias, dtype)
    assert module.kernel == (dtype == torch.bfloat16)  # the packed CPU kernel is there for bfloat16
    assert_matches(module(x), reference(x, stored, "int8", bias), dtype)


def test_dequantize_path_works_in_blocks(monkeypatch):
    monkeypatch.setattr(quant, "DEQUANT_BLOCK", 96 * 10)  # ten rows of the weight at a time
    weight, bias, x = linear_and_input(48, 96, torch.float32)
    for mode in ("int8", "int4"):
        stored = quant.quantize_weight(weight, mode, 32)
        module = quant.build(torch.nn.Linear(96, 48), stored, mode, bias, torch.float32)
        assert_matches(module(x), reference(x, stored, mode, bias), torch.float32)


def test_int8_kernel_takes_an_unaligned_weight():
    weight, _, x = linear_and_input(32, 64, torch.bfloat16)
    stored = quant.quantize_weight(weight, "int8")
    base = torch.zeros(32 * 64 + 4, dtype=torch.int8)
    base[4:] = stored["weight"].view(-1)
    unaligned = base[4:].view(32, 64)  # as a view of a file laid out by another writer could be
    module = quant.Int8Linear(unaligned, stored["scales"], None, torch.bfloat16)
    assert_matches(module(x), reference(x, stored, "int8", None), torch.bfloat16)


@pytest.mark.parametrize(
    "n, k, group, dtype, kernel",
    [
        (48, 128, 32, torch.bfloat16, "cpu"),
        (64, 256, 64, torch.bfloat16, "cpu"),
        (32, 256, 128, torch.bfloat16, "cpu"),
        (4160, 256, 64, torch.bfloat16, "cpu"),  # packed for the kernel in blocks of rows
        (48, 128, 64, torch.float32, None),  # float32: dequantize, then matmul
        (24, 128, 64, torch.bfloat16, None),  # 24 outputs: the CPU kernel wants multiples of 16
        (32, 96, 48, torch.bfloat16, None),  # a group size the kernels do not take
    ],
)
def test_int4_linear_equals_dequantized_reference(n, k, group, dtype, kernel):
    weight, bias, x = linear_and_input(n, k, dtype)
    stored = quant.quantize_weight(weight, "int4", group)
    module = quant.build(torch.nn.Linear(k, n), stored, "int4", bias, dtype)
    assert module.kernel == kernel
    assert_matches(module(x), reference(x, stored, "int4", bias), dtype)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_cuda_paths_equal_dequantized_reference(mode):
    weight, bias, x = linear_and_input(64, 256, torch.bfloat16)
    stored = {k: v.cuda() for k, v in quant.quantize_weight(weight, mode, 64).items()}
    module = quant.build(torch.nn.Linear(256, 64), stored, mode, bias.cuda(), torch.bfloat16)
    if mode == "int4":
        assert module.kernel == 8  # tinygemm, 8 inner k tiles
    ref = reference(x.cuda(), stored, mode, bias.cuda())
    assert_matches(module(x.cuda()), ref, torch.bfloat16)


def test_quantized_embedding_gathers_dequantized_rows():
    table = torch.randn(50, 64)
    ids = torch.tensor([[3, 7, 49], [0, 3, 12]])
    for mode in ("int8", "int4"):
        stored = quant.quantize_weight(table, mode, 32)
        module = quant.build(torch.nn.Embedding(50, 64), stored, mode, None, torch.float32)
        torch.testing.assert_close(module(ids), quant.dequantize(stored, mode)[ids])


@pytest.mark.parametrize("mode, group", [("int8", None), ("int4", 32), ("int4", 128)])
def test_rounding_is_to_the_nearest_level(mode, group):
    weight = torch.randn(16, 256) * torch.linspace(0.01, 2, 16)[:, None]  # rows of very different range
    stored = quant.quantize_weight(weight, mode, group)
    error = (quant.dequantize(stored, mode) - weight).abs()
    step = stored["scales"].float()
    if mode == "int8":
        assert (error <= step[:, None] / 2 + 1e-6).all()
        return
    step = step.repeat_interleave(group, dim=1)
    zero = stored["zeros"].float().repeat_interleave(group, dim=1)
    # Inside the 16 levels, half a level (the search may clip a group's extremes to its end levels).
    inside = (weight >= zero - 8 * step) & (weight <= zero + 7 * step)
    assert inside.float().mean() > 0.95
    assert (error[inside] <= step[inside] / 2 + 1e-6).all()
    levels = quant.unpack_nibbles(stored["weight"])
    assert ((levels == 0) | (levels == 15))[~inside].all()


def min_max_int4(weight, group):
    """The plain alternative the search must beat: the 16 levels spanning each group's [min, max]."""
    g = weight.reshape(weight.shape[0], -1, group)
    scales = ((g.amax(-1) - g.amin(-1)) / 15).to(torch.bfloat16).float()
    zeros = (g.amin(-1) + 8 * scales).to(torch.bfloat16).float()
    q = ((g - zeros[..., None]) / scales[..., None]).round().add(8).clamp(0, 15)
    return ((q - 8) * scales[..., None] + zeros[..., None]).reshape(weight.shape)


@pytest.mark.parametrize("group", [32, 64])
def test_int4_scale_search_beats_min_max_and_keeps_group_means(group):
    weight = torch.randn(64, 512, generator=torch.Generator().manual_seed(3)) * 0.02
    found = quant.dequantize(quant.quantize_weight(weight, "int4", group), "int4")
    plain = min_max_int4(weight, group)

    def per_group(w):
        return (w - weight).reshape(64, -1, group)

    err, plain_err = per_group(found).pow(2).sum(-1), per_group(plain).pow(2).sum(-1)
    # No group worse (the grid of 15 steps is min/max's levels, refitted), up to the bfloat16 rounding
    # of the scale and zero: one group of the 32 x 16 here comes out 1.0104x min/max's error.
    assert (err <= plain_err * 1.02 + 1e-12).all()
    assert err.sum() < 0.95 * plain_err.sum()
    # The least-squares fit keeps each group's mean: its mean error is well below min/max's.
    assert per_group(found).mean(-1).abs().mean() < 0.7 * per_group(plain).mean(-1).abs().mean()


def test_int4_scale_search_handles_constant_and_zero_groups():
    weight = torch.zeros(16, 64)
    weight[1] = 0.5
    weight[2, :32] = -1.0
    stored = quant.quantize_weight(weight, "int4", 32)
    assert torch.isfinite(stored["scales"].float()).all() and torch.isfinite(stored["zeros"].float()).all()
    torch.testing.assert_close(quant.dequantize(stored, "int4"), weight, atol=1e-6, rtol=0.01)


def test_plan_keeps_norms_and_tensor_heads_and_ties_tables():
    def plan(config, mode="int4"):
        arch = architecture_for(config["model_type"])
        with torch.device("meta"):
            return quant.plan(arch.make_model(arch.make_args(config)), mode, 32)

    dream = plan(WIDE_DREAM)
    assert dream["lm_head"] == ("int8", None) and dream["model.embed_tokens"] == ("int4", 32)  # quant.TABLES
    assert dream["model.layers.0.mlp.down_proj"] == ("int4", 32) and not any("norm" in n for n in dream)
    tied = plan(WIDE_DREAM | {"tie_word_embeddings": True})
    assert "lm_head" not in tied and tied["model.embed_tokens"] == ("int4", 32)  # one table serves both
    assert set(plan(WIDE_DREAM, "int8").values()) == {("int8", None)}
    llada = plan(WIDE_LLADA)
    assert "model.transformer.ff_out" not in llada  # LLaDA multiplies by its head's tensor
    assert llada["model.transformer.blocks.1.ff_out"] == ("int4", 32) and llada["model.transformer.wte"] == ("int4", 32)
    assert "model.transformer.wte" not in plan(WIDE_LLADA | {"weight_tying": True})
    # A width the groups do not divide gets int8 rather than staying in high precision.
    assert plan(WIDE_DREAM | {"intermediate_size": 80})["model.layers.0.mlp.down_proj"] == ("int8", None)


def test_cpu_packed_layout_is_learnt_from_the_kernel():
    positions = quant.cpu_pack_positions(256)
    assert positions is not None and positions.shape == (quant.CPU_PACK_ROWS, 256)
    levels = torch.randint(0, 16, (4160, 256), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    packed = quant.pack_for_cpu(quant.pack_nibbles(levels))  # 65 blocks, packed in row blocks
    rows = torch.tensor([0, 1, 31, 32, 63, 64, 1000, 4159])
    assert torch.equal(quant.packed_levels(packed, positions, rows), levels[rows])


def test_pack_in_place_equals_a_copy_and_reuses_the_weight():
    weight, bias, x = linear_and_input(128, 256, torch.bfloat16)
    stored = quant.quantize_weight(weight, "int4", 64)
    copy = quant.build(torch.nn.Linear(256, 128), stored, "int4", bias, torch.bfloat16)
    handed = {k: v.clone() for k, v in stored.items()}
    in_place = quant.build(torch.nn.Linear(256, 128), handed, "int4", bias, torch.bfloat16, in_place=True)
    assert in_place.weight.data_ptr() == handed["weight"].data_ptr()  # no second (N, K/2) buffer
    assert torch.equal(in_place.weight, copy.weight) and torch.equal(in_place(x), copy(x))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])  # CPU kernel / dequantized table
def test_tied_int4_table_is_one_copy_for_embedding_and_head(dtype):
    table, _, x = linear_and_input(192, 128, dtype, bias=False)
    stored = quant.quantize_weight(table, "int4", 32)
    reference_table = quant.dequantize(stored, "int4")
    embedding = quant.build(
        torch.nn.Embedding(192, 128), {k: v.clone() for k, v in stored.items()}, "int4", None, dtype
    )
    head = quant.tie_head(embedding)
    assert head.tied and head.weight.data_ptr() == embedding.weight.data_ptr()
    assert head.kernel == ("cpu" if dtype == torch.bfloat16 else None)
    assert (embedding.positions is not None) == (dtype == torch.bfloat16)  # rows read from the packed layout
    ids = torch.tensor([[0, 5, 63, 64, 191], [100, 127, 128, 3, 3]])
    torch.testing.assert_close(embedding(ids), reference_table[ids].to(dtype), rtol=0, atol=0)
    assert_matches(head(x), F.linear(x.float(), reference_table), dtype)


@pytest.mark.parametrize("config", [WIDE_DREAM, WIDE_LLADA, WIDE_DREAM | {"tie_word_embeddings": True}])
@pytest.mark.parametrize("mode", ["int8", "int4"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_quantized_tiny_model_generates_close_to_float(tmp_path, config, mode, dtype):
    folder = write_checkpoint(tmp_path / "m", config)
    full = unmask.load(folder, dtype="float32", device="cpu")
    small = unmask.load(folder, dtype=dtype, device="cpu", quantize=mode)
    assert any(isinstance(m, (quant.Int8Linear, quant.Int4Linear)) for m in small.net.modules())
    x = torch.randint(2, 60, (2, 12), generator=torch.Generator().manual_seed(1))
    ref, out = full.logits(x), small.logits(x)
    # int4 rounds every weight, the token table too, to one of 16 levels: ~7% of random logits here.
    assert ((out - ref).norm() / ref.norm()) < (0.03 if mode == "int8" else 0.09)
    assert (out.argmax(-1) == ref.argmax(-1)).float().mean() > 0.8
    assert small.num_parameters == full.num_parameters  # the weights as trained, not the packed bytes
    result = small.generate(x[:1].tolist(), max_new_tokens=8, steps=4, seed=0)
    assert len(result.sequences[0]) == 12 + 8 and result.nfe == 4


def test_quantize_as_read_equals_quantize_after_load(tmp_path):
    folder = write_checkpoint(tmp_path / "m", WIDE_LLADA, dtype=torch.bfloat16)  # the same numbers either way
    after = quant.quantize_(unmask.load(folder, dtype="bfloat16").net, "int4")
    x = torch.randint(2, 60, (1, 10))
    as_read = unmask.load(folder, dtype="bfloat16", quantize="int4")
    assert torch.equal(as_read.net(x), after(x))


def test_tied_int4_table_loads_as_one_packed_copy(tmp_path):
    folder = write_checkpoint(tmp_path / "m", WIDE_DREAM | {"tie_word_embeddings": True}, dtype=torch.bfloat16)
    model = unmask.load(folder, dtype="bfloat16", quantize="int4")
    embedding, head = model.net.model.embed_tokens, model.net.lm_head
    assert isinstance(head, quant.Int4Linear) and head.kernel == "cpu" and head.tied
    assert embedding.positions is not None and embedding.weight.data_ptr() == head.weight.data_ptr()
    x = torch.randint(2, 60, (2, 10))
    after = quant.quantize_(unmask.load(folder, dtype="bfloat16").net, "int4")
    assert torch.equal(model.net(x), after(x))
    reloaded = unmask.load(loading.save_quantized(folder, tmp_path / "q", "int4"))
    assert torch.equal(reloaded.net(x), after(x))
    assert model.num_parameters == reloaded.num_parameters == unmask.load(folder).num_parameters


def dgemma_checkpoint(folder, seed=0):
    """DiffusionGemma cut down (the golden set's config, every key of the class), widened so that
    both fused expert weights divide into int4 groups of 64, random weights: (E, N, K) experts
    gate_up (4, 128, 64) and down (4, 64, 64)."""
    from .families import diffusion_gemma

    diffusion_gemma(folder)  # config, generation config and a character tokenizer
    config = json.loads((folder / "config.json").read_text())
    config["text_config"] |= {"moe_intermediate_size": 64, "intermediate_size": 128}
    arch = architecture_for(config)
    net = arch.make_model(arch.make_args(config))
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, p in net.state_dict().items():  # 1-D: norms and scalars as made (ones); the rest random
        state[name] = (torch.randn(p.shape, generator=g) * 0.05 if p.ndim >= 2 else p).contiguous()
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def rounded_reference(folder, mode):
    """The float32 model with every weight the plan quantizes replaced by its dequantized rounding:
    what a quantized model computes, up to its compute dtype."""
    model = unmask.load(folder, dtype="float32")
    with torch.no_grad():
        for name, (chosen, group) in quant.plan(model.net, mode).items():
            w = model.net.get_parameter(quant.weight_key(model.net, name))
            flat = w.reshape(-1, w.shape[-1])
            w.copy_(quant.dequantize(quant.quantize_weight(flat, chosen, group), chosen).reshape(w.shape))
    return model


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_diffusion_gemma_experts_quantize_per_expert(tmp_path, mode):
    folder = dgemma_checkpoint(tmp_path / "dgemma")
    full = unmask.load(folder, dtype="bfloat16")
    small = unmask.load(folder, dtype="bfloat16", quantize=mode)
    planned = quant.plan(full.net, mode)
    layer = small.net.model.decoder.layers[0]
    assert planned["model.decoder.layers.0.experts.gate_up_proj"] == planned["model.decoder.layers.0.experts.down_proj"]
    assert planned["model.decoder.layers.0.experts.down_proj"] == ((mode, 64) if mode == "int4" else (mode, None))
    assert isinstance(layer.experts, quant.QuantizedExperts) and not list(layer.experts.parameters())
    kind = quant.Int4Linear if mode == "int4" else quant.Int8Linear
    assert len(layer.experts.gate_up_proj) == 4 and all(isinstance(m, kind) for m in layer.experts.down_proj)
    assert type(layer.router.proj) is torch.nn.Linear  # routers stay in the run dtype
    # Memory: the experts' bytes against their bfloat16 weights (int8 ~0.5x, int4 ~0.28x).
    experts = full.net.model.decoder.layers[0].experts
    bf16 = sum(p.numel() * p.element_size() for p in experts.parameters())
    held = sum(b.numel() * b.element_size() for b in layer.experts.buffers())
    assert held <= (0.52 if mode == "int8" else 0.3) * bf16
    assert small.num_parameters == full.num_parameters
    # The loader's estimate knows what is quantized (the experts) and what is not (the table, read as a tensor).
    tensors = {t.data_ptr(): t.numel() * t.element_size() for t in [*small.net.parameters(), *small.net.buffers()]}
    config = json.loads((folder / "config.json").read_text())
    estimate = loading.memory_needed(config, full.num_parameters, torch.bfloat16, mode).weights
    assert 0.95 < estimate / sum(tensors.values()) < 1.05
    # Logits: the dequantized reference's, up to bfloat16 compute (its own effect on the plain model).
    x = torch.randint(3, 250, (2, 12), generator=torch.Generator().manual_seed(1))
    ref, out = rounded_reference(folder, mode).logits(x), small.logits(x)
    plain, plain32 = full.logits(x), unmask.load(folder, dtype="float32").logits(x)
    assert ((out - ref).norm() / ref.norm()) < 1.5 * ((plain - plain32).norm() / plain32.norm())
    assert (out.argmax(-1) == ref.argmax(-1)).float().mean() > 0.9
    exact = unmask.load(folder, dtype="float32", quantize=mode)  # float32: the dequantizing paths
    torch.testing.assert_close(exact.logits(x), ref, rtol=1e-4, atol=1e-4)
    if mode == "int8":  # int4's 8% per weight moves these random logits by half: Gemma's normed q and
        # k at attention scale 1 make random attention peaked (the experts alone move them 14%)
        assert ((out - plain).norm() / plain.norm()) < 0.05
    result = small.generate(x[:1].tolist(), max_new_tokens=8, seed=0)
    assert len(result.sequences[0]) == 12 + 8
    # `unmask quantize` writes the fused layout ((E, N, K/2) weights); it loads to the same logits.
    reloaded = unmask.load(loading.save_quantized(folder, tmp_path / "q", mode), dtype="bfloat16")
    assert isinstance(reloaded.net.model.decoder.layers[1].experts, quant.QuantizedExperts)
    torch.testing.assert_close(reloaded.logits(x), out, rtol=0, atol=0)


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_unmask_quantize_round_trip_loads_and_generates(tmp_path, mode):
    out = tmp_path / f"story-{mode}"
    result = invoke("quantize", "story", out, "--mode", mode)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "unmask"
    assert config["quantization_config"]["bits"] == int(mode[3:])
    assert (out / "tokenizer.json").is_file() and (out / "generation_config.json").is_file()
    model = unmask.load(out)
    # The file's tensors equal those of quantizing while loading, so the two give the same logits.
    x = torch.tensor([model.tokenizer.encode("Once upon a time,", add_special_tokens=False)])
    torch.testing.assert_close(model.logits(x), unmask.load("story", quantize=mode).logits(x), rtol=0, atol=0)
    ran = invoke("run", out, "Once upon a time,", "--steps", "8", "-n", "16", "--seed", "1", "--no-live")
    assert ran.exit_code == 0 and ran.output.startswith("Once upon a time,"), ran.output
    assert (out / "model.safetensors").stat().st_size < 0.6 * sum(
        f.stat().st_size for f in checkpoints.weight_files(checkpoints.folder_of("story"))
    )


def test_loaded_quantized_checkpoint_holds_no_float_weight_for_quantized_layers(tmp_path):
    out = loading.save_quantized("story", tmp_path / "q", "int4")
    header = checkpoints.safetensors_header(out / "model.safetensors")
    model = unmask.load(out)
    planned = quant.plan(unmask.load("story").net, "int4")
    assert planned  # every block projection and the embedding
    for name, (mode, _) in planned.items():
        assert header[f"{name}.weight"]["dtype"] == ("U8" if mode == "int4" else "I8")
        module = model.net.get_submodule(name)
        assert isinstance(module, (quant.Int4Linear, quant.Int8Linear, quant.QuantizedEmbedding))
        assert module.weight.dtype == (torch.int8 if mode == "int8" else torch.uint8)
        assert not list(module.parameters())
        # Besides the bias, only scales and zeros are float: a small share of the weight's numbers.
        floats = [b for key, b in module.named_buffers() if b.is_floating_point() and key != "bias"]
        assert sum(b.numel() for b in floats) * 8 <= module.weight.numel()


def test_quantized_checkpoint_refuses_another_mode(tmp_path):
    out = loading.save_quantized("story", tmp_path / "q", "int8")
    with pytest.raises(ModelLoadError, match="already quantized to int8"):
        unmask.load(out, quantize="int4")
    with pytest.raises(ModelLoadError, match="already quantized"):
        loading.save_quantized(out, tmp_path / "again", "int4")
    with pytest.raises(ModelLoadError, match="not an empty folder"):
        loading.save_quantized("story", out, "int4")
    with pytest.raises(ModelLoadError, match="quantize: expected int8 or int4"):
        unmask.load("story", quantize="int3")


def test_fit_check_refuses_naming_the_fix():
    bf16 = loading.memory_needed(DREAM_7B, DREAM_7B_PARAMS, torch.bfloat16).total
    int4 = loading.memory_needed(DREAM_7B, DREAM_7B_PARAMS, torch.bfloat16, "int4").total
    assert 15.2 * GB < bf16 < 17.5 * GB and 5 * GB < int4 < 7 * GB
    with pytest.raises(ModelLoadError) as refused:
        loading.check_fits(DREAM_7B, DREAM_7B_PARAMS, torch.bfloat16, None, 512, int(9.8 * GB))
    message = str(refused.value)
    assert "\n" not in message and "9.8 GB is free" in message and f"needs about {bf16 / GB:.1f} GB" in message
    assert "try --quantize int8 (about " in message  # int8 (~8.7 GB) fits in 9.8 GB: the better of the two
    with pytest.raises(ModelLoadError, match=r"try --quantize int4 \(about \d+\.\d GB\)"):
        loading.check_fits(DREAM_7B, DREAM_7B_PARAMS, torch.bfloat16, None, 512, int(6.5 * GB))
    with pytest.raises(ModelLoadError, match="even --quantize int4 needs about"):
        loading.check_fits(DREAM_7B, DREAM_7B_PARAMS, torch.bfloat16, "int8", 512, 2 * GB)
    assert loading.check_fits(DREAM_7B, DREAM_7B_PARAMS, torch.bfloat16, None, 512, 32 * GB).total == bf16
    assert loading.check_fits(DREAM_7B, DREAM_7B_PARAMS, torch.bfloat16, None, 512, None).total == bf16


def test_a_load_that_does_not_fit_is_refused_before_reading(tmp_path, monkeypatch):
    folder = write_checkpoint(tmp_path / "m", WIDE_DREAM)
    monkeypatch.setattr(loading, "free_memory", lambda device: 1000)
    monkeypatch.setattr(loading, "load_weights", lambda *a, **k: pytest.fail("weights were read"))
    with pytest.raises(ModelLoadError, match=r"0\.0 GB is free; even --quantize int4 needs about"):
        unmask.load(folder)


def test_memory_needs_from_the_headers(tmp_path):
    folder = write_checkpoint(tmp_path / "m", WIDE_DREAM)
    needs = checkpoints.memory_needs(folder)
    assert list(needs) == ["float32", "bfloat16", "int8", "int4"]
    weights = [needs[k].weights for k in needs]
    assert weights == sorted(weights, reverse=True)
    n = sum(p.numel() for p in unmask.load(folder).net.parameters())
    assert needs["float32"].weights == 4 * n and needs["bfloat16"].weights == 2 * n
    quantized = checkpoints.memory_needs(loading.save_quantized(folder, tmp_path / "q", "int4"))
    assert list(quantized) == ["int4"] and quantized["int4"] == needs["int4"]


def test_auto_dtype_on_cpu_follows_native_bfloat16(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(loading, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    assert loading.pick_dtype("auto", {}, cpu, 1_000) == torch.bfloat16
    monkeypatch.setattr(loading, "cpu_flags", lambda: frozenset({"avx2"}))
    assert loading.pick_dtype("auto", {}, cpu, 1_000) == torch.float32
    assert loading.pick_dtype("auto", {}, cpu, 7_000_000_000) == torch.bfloat16  # float32 would not fit
    assert loading.pick_dtype("float32", {}, cpu, 1_000) == torch.float32


def test_server_loader_quantizes():
    from unmask.server.app import default_loader
    from unmask.server.settings import Settings

    assert Settings.from_env({}, quantize="int8").quantize == "int8"
    model = default_loader("story", "int8")
    assert isinstance(model.net.model.transformer.blocks[0].q_proj, quant.Int8Linear)


RSS_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    import unmask.loading as loading

    torch.set_num_threads(1)
    folder, dtype, quantize = sys.argv[1], sys.argv[2], sys.argv[3]
    checkpoint = loading.load_checkpoint(folder, dtype, "cpu", None if quantize == "none" else quantize)
    with torch.no_grad():  # one pass reads every weight: a mapped file's pages count from then on
        checkpoint.net(torch.arange(8)[None])
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print(int(line.split()[1]) / 1024)
    """
)


def peak_rss_mb(*args) -> float:
    done = subprocess.run([sys.executable, "-c", RSS_SCRIPT, *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return float(done.stdout.split()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM from /proc/self/status")
def test_a_load_holds_one_copy_of_the_weights(tmp_path):
    # ~200 MB of float32: 49M parameters, large enough that the process baseline does not dominate.
    config = WIDE_DREAM | {"vocab_size": 8192, "hidden_size": 512, "intermediate_size": 1536, "num_hidden_layers": 12}
    config |= {"num_attention_heads": 8, "num_key_value_heads": 8}
    folder = write_checkpoint(tmp_path / "m", config)
    # The baseline: the same process with a model of a few kilobytes (imports, kernel libraries).
    tiny = write_checkpoint(tmp_path / "tiny", WIDE_DREAM)
    n = sum(p.numel() for p in unmask.load(folder, dtype="bfloat16").net.parameters())
    for dtype, itemsize in (("float32", 4), ("bfloat16", 2)):  # as stored (a view of the file) and converted
        weights = n * itemsize / 2**20
        baseline = peak_rss_mb(tiny, dtype, "none")
        assert peak_rss_mb(folder, dtype, "none") - baseline <= 1.15 * weights, dtype
    # Quantizing as read adds the read buffer and one block of rows with its temporaries.
    int8 = quant.stored_bytes(n, "int8") / 2**20
    overhead = 3 * loading.READ_CHUNK_BYTES / 2**20
    assert peak_rss_mb(folder, "bfloat16", "int8") - peak_rss_mb(tiny, "bfloat16", "int8") <= 1.15 * int8 + overhead
    # int4 packs in place and hands freed pages back after every layer: within 5% of its tensors
    # (the loader's estimate), plus one block of rows and its temporaries.
    int4 = loading.memory_needed(config, n, torch.bfloat16, "int4").weights / 2**20
    block = 8 * loading.QUANTIZE_BLOCK_BYTES / 2**20
    assert peak_rss_mb(folder, "bfloat16", "int4") - peak_rss_mb(tiny, "bfloat16", "int4") <= 1.05 * int4 + block
