"""Manara: an open-source ML platform, secure by default."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from manara.client import Client

__all__ = ["Client", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `import manara` stays cheap for the CLI.
    if name == "Client":
        from manara.client import Client

        return Client
    raise AttributeError(f"module 'manara' has no attribute {name!r}")
