"""Vault transit and KMS providers against a real HTTP server and a KMS-shaped client.

The Vault server below speaks the transit endpoints the provider calls
over real HTTP on 127.0.0.1 and seals keys with real AES-GCM, so the
provider's requests, status handling and base64 encoding are all exercised.
"""

import base64
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from manara.config import Secret
from manara.errors import (
    AuthenticationError,
    ConflictError,
    IntegrityError,
    NotFoundError,
    UnavailableError,
)
from manara.security import envelope
from manara.security.envelope import ArtifactContext, EnvelopeHeader
from manara.security.keys import CloudKMSKeyProvider, KeyState, VaultTransitKeyProvider

CONTEXT = ArtifactContext("alpha", "model-1", "confidential", "aws/me-central-1")
TOKEN = "s.test-token-1234"


class FakeTransit:
    """State of one aes256-gcm96 transit key."""

    def __init__(self) -> None:
        self.keys: dict[int, bytes] = {1: AESGCM.generate_key(bit_length=256)}
        self.created: dict[int, int] = {1: int(time.time())}
        self.latest = 1
        self.min_decryption = 1
        self.min_available = 0
        self.lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        return {
            "name": "artifacts",
            "type": "aes256-gcm96",
            "keys": {str(v): self.created[v] for v in self.keys},
            "latest_version": self.latest,
            "min_decryption_version": self.min_decryption,
            "min_available_version": self.min_available,
            "min_encryption_version": 0,
        }

    def encrypt(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys[self.latest]).encrypt(
            nonce,
            base64.b64decode(body["plaintext"]),
            base64.b64decode(body.get("associated_data", "")),
        )
        text = f"vault:v{self.latest}:{base64.b64encode(nonce + sealed).decode()}"
        return 200, {"data": {"ciphertext": text, "key_version": self.latest}}

    def decrypt(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        _, version_text, payload = body["ciphertext"].split(":", 2)
        version = int(version_text[1:])
        if version < self.min_decryption:
            return 400, {
                "errors": ["ciphertext or signature version is disallowed by policy (too old)"]
            }
        if version not in self.keys:
            return 400, {"errors": ["invalid key version"]}
        raw = base64.b64decode(payload)
        try:
            plaintext = AESGCM(self.keys[version]).decrypt(
                raw[:12], raw[12:], base64.b64decode(body.get("associated_data", ""))
            )
        except InvalidTag:
            return 400, {"errors": ["cipher: message authentication failed"]}
        return 200, {"data": {"plaintext": base64.b64encode(plaintext).decode()}}

    def rotate(self) -> tuple[int, dict[str, Any]]:
        self.latest += 1
        self.keys[self.latest] = AESGCM.generate_key(bit_length=256)
        self.created[self.latest] = int(time.time())
        return 200, {"data": self.info()}

    def config(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        requested = int(body["min_decryption_version"])
        if not 0 < requested <= self.latest or requested < self.min_available:
            return 400, {"errors": ["invalid min_decryption_version"]}
        self.min_decryption = requested
        return 204, {}

    def trim(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        requested = int(body["min_available_version"])
        if requested > self.min_decryption or requested < self.min_available:
            return 400, {"errors": ["invalid min_available_version"]}
        self.keys = {v: k for v, k in self.keys.items() if v >= requested}
        self.min_available = requested
        return 204, {}


def _handler(state: FakeTransit) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            self.send_response(status)
            data = json.dumps(payload).encode() if status != 204 else b""
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> None:
            if self.headers.get("X-Vault-Token") != TOKEN:
                self._send(403, {"errors": ["permission denied"]})
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            routes = {
                ("GET", "/v1/transit/keys/artifacts"): lambda: (200, {"data": state.info()}),
                ("POST", "/v1/transit/encrypt/artifacts"): lambda: state.encrypt(body),
                ("POST", "/v1/transit/decrypt/artifacts"): lambda: state.decrypt(body),
                ("POST", "/v1/transit/keys/artifacts/rotate"): state.rotate,
                ("POST", "/v1/transit/keys/artifacts/config"): lambda: state.config(body),
                ("POST", "/v1/transit/keys/artifacts/trim"): lambda: state.trim(body),
            }
            route = routes.get((method, self.path))
            if route is None:
                self._send(404, {"errors": [f"no handler for route {self.path}"]})
                return
            with state.lock:
                status, payload = route()
            self._send(status, payload)

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

    return Handler


@pytest.fixture
def vault() -> Iterator[tuple[str, FakeTransit]]:
    state = FakeTransit()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def transit(vault: tuple[str, FakeTransit]) -> Iterator[VaultTransitKeyProvider]:
    provider = VaultTransitKeyProvider(vault[0], Secret(TOKEN), "artifacts")
    try:
        yield provider
    finally:
        provider.close()


def test_vault_round_trip(transit: VaultTransitKeyProvider) -> None:
    blob = envelope.encrypt(b"weights", CONTEXT, transit)
    header, _ = EnvelopeHeader.decode(blob)
    assert header.wrapped.provider == "vault-transit"
    assert header.wrapped.key_id == "transit/artifacts"
    assert header.wrapped.ciphertext.startswith(b"vault:v1:")
    assert envelope.decrypt(blob, CONTEXT, transit) == b"weights"


def test_vault_binds_context(transit: VaultTransitKeyProvider) -> None:
    blob = envelope.encrypt(b"weights", CONTEXT, transit)
    header, offset = EnvelopeHeader.decode(blob)
    moved = replace(CONTEXT, region="gcp/me-west1")
    forged = replace(header, context=moved).encode() + blob[offset:]
    with pytest.raises(IntegrityError, match="authentication failed"):
        envelope.decrypt(forged, moved, transit)


def test_vault_rejects_mismatched_version(transit: VaultTransitKeyProvider) -> None:
    blob = envelope.encrypt(b"weights", CONTEXT, transit)
    header, offset = EnvelopeHeader.decode(blob)
    forged = replace(header, wrapped=replace(header.wrapped, version=2)).encode() + blob[offset:]
    with pytest.raises(IntegrityError, match="header says 2"):
        envelope.decrypt(forged, CONTEXT, transit)


def test_vault_key_lifecycle(
    transit: VaultTransitKeyProvider, vault: tuple[str, FakeTransit]
) -> None:
    old = envelope.encrypt(b"old object", CONTEXT, transit)
    kept = envelope.encrypt(b"kept object", CONTEXT, transit)
    assert transit.rotate() == 2
    assert envelope.decrypt(old, CONTEXT, transit) == b"old object"
    kept = envelope.rewrap(kept, transit)
    assert EnvelopeHeader.decode(kept)[0].wrapped.version == 2

    transit.retire(1)
    assert [v.state for v in transit.versions()] == [KeyState.RETIRED, KeyState.ACTIVE]
    assert envelope.decrypt(kept, CONTEXT, transit) == b"kept object"
    with pytest.raises(ConflictError, match="retired"):
        envelope.decrypt(old, CONTEXT, transit)

    transit.reinstate(1)
    assert envelope.decrypt(old, CONTEXT, transit) == b"old object"

    transit.destroy(1)
    assert 1 not in vault[1].keys
    assert [v.state for v in transit.versions()] == [KeyState.DESTROYED, KeyState.ACTIVE]
    with pytest.raises(NotFoundError, match="crypto-shredded"):
        envelope.decrypt(old, CONTEXT, transit)
    assert envelope.decrypt(kept, CONTEXT, transit) == b"kept object"


def test_vault_order_rules(transit: VaultTransitKeyProvider) -> None:
    transit.rotate()
    transit.rotate()
    with pytest.raises(ConflictError, match="oldest first"):
        transit.retire(2)
    with pytest.raises(ConflictError, match="oldest first"):
        transit.destroy(2)
    with pytest.raises(ConflictError, match="active"):
        transit.retire(3)


def test_vault_bad_token(vault: tuple[str, FakeTransit]) -> None:
    provider = VaultTransitKeyProvider(vault[0], Secret("s.wrong-token"), "artifacts")
    try:
        with pytest.raises(AuthenticationError, match="permission denied") as caught:
            envelope.encrypt(b"weights", CONTEXT, provider)
    finally:
        provider.close()
    assert "s.wrong-token" not in caught.value.message


def test_vault_unreachable() -> None:
    provider = VaultTransitKeyProvider(
        "http://127.0.0.1:9", Secret(TOKEN), "artifacts", timeout_seconds=2
    )
    try:
        with pytest.raises(UnavailableError, match="did not respond"):
            provider.active_version()
    finally:
        provider.close()


class FakeClientError(Exception):
    """Shaped like botocore's ClientError: the AWS error code is in ``response``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"An error occurred ({code}): {message}")
        self.response = {"Error": {"Code": code, "Message": message}}


class FakeKMS:
    """A KMS with the boto3 method names that seals with real AES-GCM."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}

    def create_key(self, **kwargs: Any) -> dict[str, Any]:
        arn = f"arn:aws:kms:me-central-1:000000000000:key/{uuid.uuid4()}"
        self.keys[arn] = {"key": AESGCM.generate_key(bit_length=256), "state": "Enabled"}
        return {"KeyMetadata": {"Arn": arn, "KeyId": arn.rsplit("/", 1)[1]}}

    def _usable(self, arn: str) -> bytes:
        if arn not in self.keys:
            raise FakeClientError("NotFoundException", f"Key '{arn}' does not exist")
        entry = self.keys[arn]
        if entry["state"] == "Disabled":
            raise FakeClientError("DisabledException", f"{arn} is disabled.")
        if entry["state"] != "Enabled":
            raise FakeClientError("KMSInvalidStateException", f"{arn} is pending deletion.")
        key: bytes = entry["key"]
        return key

    def encrypt(
        self, *, KeyId: str, Plaintext: bytes, EncryptionContext: dict[str, str]
    ) -> dict[str, Any]:
        nonce = os.urandom(12)
        aad = json.dumps(EncryptionContext, sort_keys=True).encode()
        sealed = AESGCM(self._usable(KeyId)).encrypt(nonce, Plaintext, aad)
        encoded = KeyId.encode()
        blob = len(encoded).to_bytes(2, "big") + encoded + nonce + sealed
        return {"CiphertextBlob": blob, "KeyId": KeyId}

    def decrypt(
        self, *, KeyId: str, CiphertextBlob: bytes, EncryptionContext: dict[str, str]
    ) -> dict[str, Any]:
        size = int.from_bytes(CiphertextBlob[:2], "big")
        arn = CiphertextBlob[2 : 2 + size].decode(errors="replace")
        if arn != KeyId:
            raise FakeClientError("IncorrectKeyException", "The key ID does not match.")
        rest = CiphertextBlob[2 + size :]
        aad = json.dumps(EncryptionContext, sort_keys=True).encode()
        try:
            plaintext = AESGCM(self._usable(KeyId)).decrypt(rest[:12], rest[12:], aad)
        except InvalidTag:
            raise FakeClientError("InvalidCiphertextException", "") from None
        return {"Plaintext": plaintext, "KeyId": KeyId}

    def disable_key(self, *, KeyId: str) -> dict[str, Any]:
        self.keys[KeyId]["state"] = "Disabled"
        return {}

    def enable_key(self, *, KeyId: str) -> dict[str, Any]:
        self.keys[KeyId]["state"] = "Enabled"
        return {}

    def schedule_key_deletion(self, *, KeyId: str, PendingWindowInDays: int) -> dict[str, Any]:
        self.keys[KeyId]["state"] = "PendingDeletion"
        self.keys[KeyId]["pending_days"] = PendingWindowInDays
        return {}


class KMSSetup(NamedTuple):
    client: FakeKMS
    provider: CloudKMSKeyProvider
    table_path: Path

    def table(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.table_path.read_text())
        return loaded


@pytest.fixture
def kms(tmp_path: Path) -> KMSSetup:
    client = FakeKMS()
    path = tmp_path / "keys" / "kms.json"
    return KMSSetup(client, CloudKMSKeyProvider(client, path), path)


def test_kms_round_trip(kms: KMSSetup) -> None:
    blob = envelope.encrypt(b"weights", CONTEXT, kms.provider)
    assert envelope.decrypt(blob, CONTEXT, kms.provider) == b"weights"
    assert len(kms.client.keys) == 1
    assert all(v["material"].startswith("arn:aws:kms:") for v in kms.table()["versions"])


def test_kms_binds_context(kms: KMSSetup) -> None:
    provider = kms.provider
    blob = envelope.encrypt(b"weights", CONTEXT, provider)
    header, offset = EnvelopeHeader.decode(blob)
    moved = replace(CONTEXT, classification="public")
    forged = replace(header, context=moved).encode() + blob[offset:]
    with pytest.raises(IntegrityError, match="InvalidCiphertextException"):
        envelope.decrypt(forged, moved, provider)


def test_kms_key_lifecycle(kms: KMSSetup) -> None:
    client, provider = kms.client, kms.provider
    old = envelope.encrypt(b"old object", CONTEXT, provider)
    assert provider.rotate() == 2
    assert len(client.keys) == 2
    assert envelope.decrypt(old, CONTEXT, provider) == b"old object"
    first_arn = kms.table()["versions"][0]["material"]

    provider.retire(1)
    assert client.keys[first_arn]["state"] == "Disabled"
    with pytest.raises(ConflictError, match="retired"):
        envelope.decrypt(old, CONTEXT, provider)
    provider.reinstate(1)
    assert envelope.decrypt(old, CONTEXT, provider) == b"old object"

    provider.destroy(1)
    assert client.keys[first_arn]["state"] == "PendingDeletion"
    assert client.keys[first_arn]["pending_days"] == 7
    assert first_arn not in json.dumps(kms.table())
    with pytest.raises(NotFoundError, match="crypto-shredded"):
        envelope.decrypt(old, CONTEXT, provider)


def test_kms_disabled_outside_manara(kms: KMSSetup) -> None:
    client, provider = kms.client, kms.provider
    blob = envelope.encrypt(b"weights", CONTEXT, provider)
    for entry in client.keys.values():
        entry["state"] = "Disabled"
    with pytest.raises(ConflictError, match="DisabledException"):
        envelope.decrypt(blob, CONTEXT, provider)
