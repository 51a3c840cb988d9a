"""unmask: a local engine, studio and server for diffusion language models.

The package namespace is lazy (PEP 562): `import unmask.cli` must not pull in torch, so that
`unmask --help` answers at once; `unmask.load` and friends import the engine on first use.
"""

from __future__ import annotations

from importlib import import_module

__version__ = "0.1.0"

_PUBLIC = {
    "DenoiseStep": "unmask.engine",
    "GenerationOptions": "unmask.options",
    "GenerationResult": "unmask.engine",
    "Model": "unmask.engine",
    "ModelLoadError": "unmask.loading",
    "load": "unmask.engine",
}

__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'unmask' has no attribute {name!r}")
