"""Transport security of both servers: security headers, CORS and TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import Depends
from typer.testing import CliRunner

from manara.api.app import create_app
from manara.api.deps import authenticated_principal
from manara.cli.main import build_app
from manara.config import Settings, load_settings
from manara.errors import InvalidInputError
from manara.http_security import tls_options
from manara.serving.server import uvicorn_options, with_browser_access
from manara.workspace import Workspace
from tests.serving.conftest import Served, served_app
from tests.serving.conftest import served as served  # noqa: F401

EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "cache-control": "no-store",
}
ORIGIN = "https://ui.example.com"


def _assert_secure(response: httpx.Response, tls: bool = False) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, f"{name} on {response.request.url}"
    hsts = response.headers.get("strict-transport-security")
    if tls:
        assert hsts is not None and hsts.startswith("max-age="), response.headers
    else:
        assert hsts is None, "HSTS sent over plain HTTP"


@contextmanager
def serve(app: Any, **options: Any) -> Iterator[int]:
    """Run an ASGI app on uvicorn on a free loopback port; yield the port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port: int = listener.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, lifespan="on", ws="none", **uvicorn_options(), **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)
        listener.close()


def _preflight(url: str, origin: str) -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    return httpx.options(url, headers=headers)


# Security headers -------------------------------------------------------------


def test_control_plane_headers(sqlite_workspace: Workspace) -> None:
    app = create_app(sqlite_workspace)

    @app.get("/api/v1/broken", dependencies=[Depends(authenticated_principal)])
    def broken() -> None:
        raise RuntimeError("unexpected failure")

    key = sqlite_workspace.issue_key(sqlite_workspace.local_admin()).token
    auth = {"Authorization": f"Bearer {key}"}
    with serve(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        _assert_secure(http.get("/health/live"))
        _assert_secure(http.get("/api/v1/experiments"))
        _assert_secure(http.get("/api/v1/experiments", headers=auth))
        _assert_secure(http.get("/no/such/route"))
        failed = http.get("/api/v1/broken", headers=auth)
        assert failed.status_code == 500, failed.text
        assert failed.json()["error"]["code"] == "internal"
        _assert_secure(failed)


def test_inference_headers(served: Served) -> None:  # noqa: F811
    auth = {"Authorization": f"Bearer {served.client_key}"}
    with (
        serve(served_app(served)) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        _assert_secure(http.get("/v2/health/live"))
        _assert_secure(http.get("/v2/health/ready"))
        _assert_secure(http.get("/v2/health/ready", headers=auth))
        _assert_secure(http.post("/v2/models/churn/infer", headers=auth, content=b"{"))


# CORS -------------------------------------------------------------------------


def test_control_plane_cors_closed(sqlite_workspace: Workspace) -> None:
    with serve(create_app(sqlite_workspace)) as port:
        response = _preflight(f"http://127.0.0.1:{port}/api/v1/experiments", ORIGIN)
    assert "access-control-allow-origin" not in response.headers, response.headers


def test_control_plane_cors_configured(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", cors_origins=(ORIGIN,))
    workspace = Workspace.open(settings)
    try:
        with serve(create_app(workspace)) as port:
            url = f"http://127.0.0.1:{port}/api/v1/experiments"
            allowed = _preflight(url, ORIGIN)
            other = _preflight(url, "https://evil.example.com")
    finally:
        workspace.close()
    assert allowed.headers.get("access-control-allow-origin") == ORIGIN, allowed.headers
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    _assert_secure(allowed)
    assert "access-control-allow-origin" not in other.headers, other.headers


def test_inference_cors(served: Served) -> None:  # noqa: F811
    closed = with_browser_access(served_app(served), served.settings)
    with serve(closed) as port:
        response = _preflight(f"http://127.0.0.1:{port}/v2/models/churn/infer", ORIGIN)
    assert "access-control-allow-origin" not in response.headers, response.headers

    settings = served.settings.with_overrides(cors_origins=(ORIGIN,))
    with serve(with_browser_access(served_app(served), settings)) as port:
        allowed = _preflight(f"http://127.0.0.1:{port}/v2/models/churn/infer", ORIGIN)
        live = httpx.get(f"http://127.0.0.1:{port}/v2/health/live", headers={"Origin": ORIGIN})
    assert allowed.headers.get("access-control-allow-origin") == ORIGIN, allowed.headers
    _assert_secure(allowed)
    assert live.headers.get("access-control-allow-origin") == ORIGIN
    _assert_secure(live)


def test_cors_origins_setting() -> None:
    settings = load_settings({"MANARA_CORS_ORIGINS": f"{ORIGIN}, http://localhost:3000"})
    assert settings.cors_origins == (ORIGIN, "http://localhost:3000")
    assert load_settings({}).cors_origins == ()


def test_cors_rejects_wildcard(tmp_path: Path) -> None:
    workspace = Workspace.open(Settings(home=tmp_path / "home", cors_origins=("*",)))
    try:
        with pytest.raises(InvalidInputError, match="Invalid CORS origin"):
            create_app(workspace)
    finally:
        workspace.close()


# TLS --------------------------------------------------------------------------


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = folder / "cert.pem"
    key_path = folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_https(url: str, context: ssl.SSLContext, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _, stderr = process.communicate()
            raise RuntimeError(f"the server exited with {process.returncode}: {stderr.decode()}")
        try:
            httpx.get(url, verify=context, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("the server did not answer over TLS within 60 s")


def test_control_plane_over_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = _free_port()
    env = {
        **os.environ,
        "MANARA_HOME": str(tmp_path / "home"),
        "MANARA_TLS_CERT": str(cert),
        "MANARA_TLS_KEY": str(key),
    }
    command = [str(Path(sys.executable).parent / "manara"), "server", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    context = ssl.create_default_context(cafile=str(cert))
    try:
        _wait_https(f"https://127.0.0.1:{port}/health/live", context, process)
        response = httpx.get(f"https://127.0.0.1:{port}/health/live", verify=context)
        assert response.status_code == 200, response.text
        _assert_secure(response, tls=True)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=5)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"https://127.0.0.1:{port}/health/live", timeout=5)
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_inference_over_tls(served: Served, tmp_path: Path) -> None:  # noqa: F811
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    auth = {"Authorization": f"Bearer {served.client_key}"}
    with serve(served_app(served), **tls_options(cert, key)) as port:
        base = f"https://127.0.0.1:{port}"
        ready = httpx.get(f"{base}/v2/health/ready", headers=auth, verify=context)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=5)
    assert ready.status_code == 200, ready.text
    _assert_secure(ready, tls=True)


def test_tls_key_readable_by_others(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    key.chmod(0o644)
    with pytest.raises(InvalidInputError, match="chmod 600"):
        tls_options(cert, key)
    result = CliRunner().invoke(
        build_app(),
        ["server", "--tls-cert", str(cert), "--tls-key", str(key)],
        env={"MANARA_HOME": str(tmp_path / "home")},
    )
    assert result.exit_code == 2, result.output
    assert "chmod 600" in result.output


def test_tls_needs_both_files(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    with pytest.raises(InvalidInputError, match="--tls-key"):
        tls_options(cert, None)
    with pytest.raises(InvalidInputError, match="--tls-cert"):
        tls_options(None, key)
    assert tls_options(None, None) == {}


def test_tls_key_of_other_certificate(tmp_path: Path) -> None:
    cert, _ = _self_signed(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, other_key = _self_signed(other)
    with pytest.raises(InvalidInputError, match="could not be loaded together"):
        tls_options(cert, other_key)
