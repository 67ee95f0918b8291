"""VaultTransitKeyProvider: KEKs held by HashiCorp Vault's transit secrets engine.

Data keys are sent to ``POST /v1/<mount>/encrypt/<name>`` and
``/decrypt/<name>`` with ``associated_data`` (Vault 1.13 or later, on
``aes256-gcm96`` keys), so the context binding is checked inside Vault.
Key versions are Vault's own. Vault manages them as a floor rather than a
set, which shapes the lifecycle operations:

- ``retire(v)`` raises ``min_decryption_version`` to ``v + 1``, so versions
  are retired oldest first;
- ``reinstate(v)`` lowers it to ``v``, which reinstates every retired
  version from ``v`` up;
- ``destroy(v)`` retires ``v`` if needed and trims it
  (``POST /keys/<name>/trim`` with ``min_available_version = v + 1``),
  oldest first too.

The token needs ``update`` on encrypt, decrypt, rotate, config and trim,
and ``read`` on the key.
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from typing import Any

import httpx

from manara.config import Secret
from manara.errors import (
    AuthenticationError,
    ConflictError,
    IntegrityError,
    ManaraError,
    NotFoundError,
    UnavailableError,
)
from manara.security.keys.base import (
    KeyState,
    KeyVersion,
    WrappedKey,
    check_data_key,
    check_same_key,
)

logger = logging.getLogger(__name__)

PROVIDER = "vault-transit"


class VaultTransitKeyProvider:
    """A ``KeyProvider`` over Vault's transit HTTP API."""

    def __init__(
        self,
        address: str,
        token: Secret,
        key_name: str,
        mount: str = "transit",
        namespace: str | None = None,
        timeout_seconds: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"X-Vault-Token": token.get()}
        if namespace:
            headers["X-Vault-Namespace"] = namespace
        self._client = httpx.Client(
            base_url=f"{address.rstrip('/')}/v1/{mount.strip('/')}",
            headers=headers,
            timeout=timeout_seconds,
            transport=transport,
        )
        self._address = address
        self._name = key_name
        self._mount = mount.strip("/")

    @property
    def provider(self) -> str:
        return PROVIDER

    @property
    def key_id(self) -> str:
        return f"{self._mount}/{self._name}"

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise UnavailableError(
                f"Vault at {self._address} did not respond to {method} {path} ({exc}). "
                "Check that it is running and reachable, then retry."
            ) from exc
        if response.status_code >= 400:
            raise _vault_error(response, f"{method} {path}", self.key_id)
        if response.status_code == 204 or not response.content:
            return {}
        payload: dict[str, Any] = response.json()
        return payload.get("data") or {}

    def _info(self) -> dict[str, Any]:
        return self._call("GET", f"/keys/{self._name}")

    def active_version(self) -> int:
        return int(self._info()["latest_version"])

    def wrap(self, data_key: bytes, aad: bytes) -> WrappedKey:
        check_data_key(data_key)
        data = self._call(
            "POST",
            f"/encrypt/{self._name}",
            {"plaintext": _b64(data_key), "associated_data": _b64(aad)},
        )
        ciphertext = str(data["ciphertext"])
        return WrappedKey(PROVIDER, self.key_id, _version_of(ciphertext), ciphertext.encode())

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        check_same_key(PROVIDER, self.key_id, wrapped)
        ciphertext = wrapped.ciphertext.decode("ascii", errors="replace")
        if _version_of(ciphertext) != wrapped.version:
            raise IntegrityError(
                f"The wrapped data key names Vault key version {_version_of(ciphertext)} but "
                f"its header says {wrapped.version}; the object was changed. Restore it."
            )
        body = {"ciphertext": ciphertext, "associated_data": _b64(aad)}
        try:
            data = self._call("POST", f"/decrypt/{self._name}", body)
        except IntegrityError:
            self._raise_for_state(wrapped.version)
            raise
        return base64.b64decode(data["plaintext"])

    def _raise_for_state(self, version: int) -> None:
        """Turn a failed decrypt of a retired or trimmed version into a clear error."""
        for info in self.versions():
            if info.version != version:
                continue
            if info.state is KeyState.RETIRED:
                raise ConflictError(
                    f"Version {version} of Vault key {self.key_id!r} is retired, so it no "
                    "longer unwraps data keys. Reinstate it, then re-wrap the object.",
                    version=version,
                )
            if info.state is KeyState.DESTROYED:
                raise NotFoundError(
                    f"Version {version} of Vault key {self.key_id!r} was destroyed; objects "
                    "wrapped under it are unreadable for good (crypto-shredded).",
                    version=version,
                )

    def rotate(self) -> int:
        self._call("POST", f"/keys/{self._name}/rotate")
        version = self.active_version()
        logger.info("vault key rotated key=%s active_version=%d", self.key_id, version)
        return version

    def versions(self) -> list[KeyVersion]:
        info = self._info()
        latest = int(info["latest_version"])
        min_decryption = int(info.get("min_decryption_version") or 1)
        min_available = int(info.get("min_available_version") or 0)
        created = {int(k): v for k, v in (info.get("keys") or {}).items()}
        result = []
        for version in range(1, latest + 1):
            if version < min_available:
                state = KeyState.DESTROYED
            elif version < min_decryption:
                state = KeyState.RETIRED
            elif version == latest:
                state = KeyState.ACTIVE
            else:
                state = KeyState.ENABLED
            result.append(KeyVersion(version, state, _created_at(created.get(version))))
        return result

    def _floors(self) -> tuple[int, int, int]:
        info = self._info()
        return (
            int(info["latest_version"]),
            int(info.get("min_decryption_version") or 1),
            int(info.get("min_available_version") or 0),
        )

    def retire(self, version: int) -> None:
        latest, min_decryption, min_available = self._floors()
        _check_not_active(self.key_id, version, latest, "retired")
        if version < min_available:
            raise ConflictError(f"Version {version} of Vault key {self.key_id!r} is destroyed.")
        if version < min_decryption:
            return
        if version != min_decryption:
            raise ConflictError(
                f"Vault retires key versions oldest first; retire version {min_decryption} of "
                f"{self.key_id!r} before version {version}.",
                version=version,
            )
        self._call("POST", f"/keys/{self._name}/config", {"min_decryption_version": version + 1})
        logger.info("vault key version retired key=%s version=%d", self.key_id, version)

    def reinstate(self, version: int) -> None:
        _, min_decryption, min_available = self._floors()
        if version < max(min_available, 1):
            raise ConflictError(
                f"Version {version} of Vault key {self.key_id!r} was destroyed and cannot be "
                "reinstated."
            )
        if version >= min_decryption:
            return
        self._call("POST", f"/keys/{self._name}/config", {"min_decryption_version": version})
        logger.info("vault key versions reinstated key=%s from_version=%d", self.key_id, version)

    def destroy(self, version: int) -> None:
        latest, min_decryption, min_available = self._floors()
        _check_not_active(self.key_id, version, latest, "destroyed")
        oldest = max(min_available, 1)
        if version < oldest:
            return
        if version != oldest:
            raise ConflictError(
                f"Vault destroys key versions oldest first; destroy version {oldest} of "
                f"{self.key_id!r} before version {version}.",
                version=version,
            )
        if version >= min_decryption:
            self._call(
                "POST", f"/keys/{self._name}/config", {"min_decryption_version": version + 1}
            )
        self._call("POST", f"/keys/{self._name}/trim", {"min_available_version": version + 1})
        logger.warning("vault key version destroyed key=%s version=%d", self.key_id, version)


def _check_not_active(key_id: str, version: int, latest: int, verb: str) -> None:
    if version == latest:
        raise ConflictError(
            f"Version {version} of Vault key {key_id!r} is active and cannot be {verb}. "
            "Rotate first.",
            version=version,
        )
    if version < 1 or version > latest:
        raise NotFoundError(f"Version {version} of Vault key {key_id!r} not found.")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _version_of(ciphertext: str) -> int:
    prefix, _, rest = ciphertext.partition(":v")
    number, _, _ = rest.partition(":")
    if prefix != "vault" or not number.isdigit():
        raise IntegrityError(
            "The wrapped data key is not a Vault transit ciphertext ('vault:v<N>:...'); "
            "the object was changed. Restore it from a backup."
        )
    return int(number)


def _created_at(value: Any) -> datetime | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def _vault_error(response: httpx.Response, request: str, key_id: str) -> ManaraError:
    try:
        reasons = "; ".join(str(e) for e in response.json().get("errors", []))
    except ValueError:
        reasons = response.text[:200]
    where = f"Vault rejected {request} for key {key_id!r} with HTTP {response.status_code}"
    status = response.status_code
    if status in (401, 403):
        return AuthenticationError(
            f"{where}: {reasons}. Check the Vault token and its policy.", status=status
        )
    if status == 404:
        return NotFoundError(f"{where}: {reasons}. Check the mount and key name.", status=status)
    if status == 400 and "/decrypt/" in request:
        return IntegrityError(
            f"{where}: {reasons}. The wrapped data key or its context was changed, or the "
            "key version may no longer decrypt.",
            status=status,
        )
    if status >= 500 or status == 429:
        return UnavailableError(f"{where}: {reasons}. Retry later.", status=status)
    return ConflictError(f"{where}: {reasons}.", status=status)
