"""Beyond one request at a time: batch jobs over JSONL files, and serving from several processes.

- `lines`: a JSONL line becomes an engine request and its answer an output line, resumably
  (no Ray; what `unmask batch` runs on the local engine, and what each Ray Data actor runs).
- `ray_batch`: the same lines as a Ray Data pipeline whose actors each hold one model.
- `ray_serve`: the server's FastAPI app deployed with Ray Serve, one engine per replica.

Ray is an extra (`pip install 'unmask[ray]'`); only the `ray_*` modules import it, and only
when asked (`require_ray`), so the core installs and imports without it.
"""

from __future__ import annotations

RAY_MISSING = "--ray needs Ray, which is not installed: pip install 'unmask[ray]'"


class RayMissing(RuntimeError):
    """Ray was asked for and is not installed (a one-line error naming the extra)."""


def require_ray() -> None:
    """Raise `RayMissing` unless `ray` (with Data and Serve) imports."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise RayMissing(RAY_MISSING) from None
