"""Key encryption keys: the ``KeyProvider`` port and its backends.

``LocalKeyring`` keeps KEKs in a 0600 file under ``MANARA_HOME/keys``;
``VaultTransitKeyProvider`` and ``CloudKMSKeyProvider`` keep them in Vault
or a cloud KMS. ``manara.security.keys.base`` defines the version states.
"""

from __future__ import annotations

from manara.config import Settings
from manara.security.keys.base import (
    DATA_KEY_BYTES,
    KeyProvider,
    KeyState,
    KeyVersion,
    WrappedKey,
)
from manara.security.keys.kms import CloudKMSKeyProvider
from manara.security.keys.local import LocalKeyring, default_keyring_path
from manara.security.keys.vault import VaultTransitKeyProvider

__all__ = [
    "DATA_KEY_BYTES",
    "CloudKMSKeyProvider",
    "KeyProvider",
    "KeyState",
    "KeyVersion",
    "LocalKeyring",
    "VaultTransitKeyProvider",
    "WrappedKey",
    "local_keyring",
]


def local_keyring(settings: Settings) -> LocalKeyring:
    """Return the workspace keyring at ``<home>/keys/keyring.json``."""
    return LocalKeyring(default_keyring_path(settings.home))
