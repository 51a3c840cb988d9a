"""`unmask quantize SRC DST --mode int8|int4`: a quantized copy of a checkpoint, to load in less memory.

Notable features:
- The copy is an ordinary checkpoint folder: safetensors weights (int8 per output channel, or int4
  in groups of `--group-size` inputs), config.json with a `quantization_config`, and the source's
  tokenizer and generation files, so `unmask run DST` loads it quantized without a flag.
- Weights are quantized one layer at a time as they are read and written as they are made, so
  quantizing a 7B model needs little more memory than its largest layer.
- Which layers stay in high precision, and why, is in `unmask.models.quant` and docs/models.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import app
from .common import err_console, guard
from .hub import human_size


@app.command()
def quantize(
    src: Annotated[str, typer.Argument(help="Model to quantize: name, folder or hub id.")],
    dst: Annotated[Path, typer.Argument(help="New folder for the quantized checkpoint.")],
    mode: Annotated[str, typer.Option("--mode", "-m", help="int8 (per output channel) or int4 (group-wise).")],
    group_size: Annotated[
        Optional[int], typer.Option("--group-size", min=2, help="int4: inputs per scale and zero (default 64).")
    ] = None,
) -> None:
    """Write a quantized copy of a checkpoint that loads in about a half (int8) or a third (int4) of
    the memory of bfloat16.

    Example: unmask quantize dream ./dream-int4 --mode int4
    """
    from .. import checkpoints

    def body() -> None:
        if mode not in ("int8", "int4"):
            raise ValueError(f"--mode: expected int8 or int4, got {mode!r}")
        if mode == "int8" and group_size is not None:
            raise ValueError("--group-size: int8 has one scale per output channel; give it with --mode int4 only")
        source = checkpoints.folder_of(src)
        if err_console.is_terminal:
            with err_console.status(f"quantizing {src} to {mode}…", spinner="dots"):
                out = checkpoints.quantize_folder(src, dst, mode, group_size)
        else:
            out = checkpoints.quantize_folder(src, dst, mode, group_size)
        before = sum(f.stat().st_size for f in checkpoints.weight_files(source))
        after = sum(f.stat().st_size for f in checkpoints.weight_files(out))
        typer.echo(
            f"wrote {out} ({mode}): weights {human_size(before)} -> {human_size(after)}; run it with `unmask run {out}`"
        )

    guard(body)
