"""The HTTP server: OpenAI-compatible routes, the native per-step stream, limits and security.

`create_app(Settings(...))` builds the app; `unmask serve` runs it with uvicorn.
"""

from .app import create_app
from .limits import Limits
from .settings import DEFAULT_HOST, DEFAULT_MODEL, DEFAULT_PORT, Settings

__all__ = ["DEFAULT_HOST", "DEFAULT_MODEL", "DEFAULT_PORT", "Limits", "Settings", "create_app"]
