"""KV cache policies: which slice of the canvas each model pass recomputes.

A diffusion model's keys and values change whenever any token changes, so exact caching is
impossible; Fast-dLLM (arXiv:2505.22618, Sec. 3.2) observes that they barely change within a block
and reuses them:

- `none`:   every pass runs the whole canvas.
- `prefix`: each block opens with a full pass that fills the cache; later passes recompute the
            block and everything after it, and reuse the keys/values before the block.
- `dual`:   later passes recompute only the block, reusing cached keys/values on both sides.

The model writes the recomputed keys/values into the store (models.layers.KVStore), so the window
is all a policy decides.
"""

from __future__ import annotations

from dataclasses import dataclass

CACHE_POLICIES = ("none", "prefix", "dual")


@dataclass(frozen=True)
class Window:
    start: int  # first canvas position fed to the model
    end: int  # one past the last
    cached: bool  # whether the pass reads/writes the KV store


def window_for(policy: str, first_pass: bool, block: tuple[int, int], length: int, lead: int = 0) -> Window:
    """The window for a pass. `lead` extra positions before the block are recomputed too: a
    logit-shifted model needs position start-1 to predict the block's first token."""
    if policy == "none":
        return Window(0, length, False)
    if first_pass:
        return Window(0, length, True)
    start = max(block[0] - lead, 0)
    return Window(start, length if policy == "prefix" else block[1], True)
