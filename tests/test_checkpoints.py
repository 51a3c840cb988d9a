"""`unmask.checkpoints`: what a folder holds, read from its files without loading the weights."""

from __future__ import annotations

import subprocess
import sys

from safetensors.torch import load_file

from unmask import checkpoints

from .conftest import GOLDEN


def test_parameters_and_dtype_of_a_folder_that_is_not_loaded():
    folder = GOLDEN / "dream-tiny"
    expected = sum(t.numel() for t in load_file(str(folder / "model.safetensors")).values())
    assert checkpoints.count_parameters(folder) == expected
    c = checkpoints.describe(folder)
    assert (c.parameters, c.dtype, c.source) == (expected, "float32", "folder")
    assert c.supported and c.reason is None and c.family == "dream" and c.model_type == "Dream"
    assert c.context_length == 2048 and not c.tokenizer and not c.chat_template


def test_an_unsupported_or_empty_folder_says_why(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    c = checkpoints.describe(tmp_path, "gpt2")
    assert not c.supported and "'gpt2'" in c.reason and not c.complete and c.parameters is None
    (tmp_path / "config.json").write_text("not json")
    c = checkpoints.describe(tmp_path)
    assert not c.has_config and not c.supported and "config.json" in c.reason


def test_importing_the_cli_imports_no_torch():
    """`unmask --help` must answer at once: the package namespace is lazy, checkpoints imports
    the loader and the registry only inside functions, and the verbs import the engine late."""
    code = (
        "import sys, unmask, unmask.checkpoints, unmask.cli\nassert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
