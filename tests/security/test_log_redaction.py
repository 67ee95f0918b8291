"""Secure logging: the redaction patterns, the filter, and both servers' real log output."""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manara.config import Settings
from manara.logs import JsonFormatter, RedactingFilter, configure_logging
from manara.security.redaction import iban_valid, luhn_valid, redact
from manara.workspace import Workspace
from tests.serving.conftest import MODEL, register, sklearn_pipeline, synthetic_frame

FILLER = st.text(alphabet="abcdefghij XYZ,:;()[]-_", max_size=30)


def _luhn_complete(body: str) -> str:
    """Append the Luhn check digit to ``body``."""
    for check in "0123456789":
        if luhn_valid([int(c) for c in body + check]):
            return body + check
    raise AssertionError("unreachable")


@st.composite
def emirates_ids(draw: st.DrawFn) -> str:
    year = draw(st.integers(1940, 2025))
    serial = draw(st.integers(0, 9_999_999))
    digits = _luhn_complete(f"784{year:04d}{serial:07d}")
    if draw(st.booleans()):
        return f"{digits[:3]}-{digits[3:7]}-{digits[7:14]}-{digits[14]}"
    return digits


@st.composite
def uae_ibans(draw: st.DrawFn) -> str:
    bank = draw(st.integers(0, 999))
    account = draw(st.integers(0, 10**16 - 1))
    bban = f"{bank:03d}{account:016d}"
    # ISO 13616: check digits make (BBAN + "AE00" as digits) mod 97 equal 1.
    numeric = int(bban + "1014" + "00")
    iban = f"AE{98 - numeric % 97:02d}{bban}"
    if draw(st.booleans()):
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


@st.composite
def uae_phones(draw: st.DrawFn) -> str:
    operator = draw(st.sampled_from(["50", "52", "54", "55", "56", "58"]))
    number = f"{draw(st.integers(0, 9_999_999)):07d}"
    style = draw(st.sampled_from(["intl", "intl-compact", "national", "national-dash", "00"]))
    return {
        "intl": f"+971 {operator} {number[:3]} {number[3:]}",
        "intl-compact": f"+971{operator}{number}",
        "national": f"0{operator} {number[:3]} {number[3:]}",
        "national-dash": f"0{operator}-{number[:3]}-{number[3:]}",
        "00": f"00971{operator}{number}",
    }[style]


emails = st.builds(
    "{}.{}@{}.{}".format,
    st.text("abcdefghijklmnop0123456789", min_size=1, max_size=10),
    st.text("abcdefghijklmnop", min_size=1, max_size=8),
    st.text("abcdefghijklmnop", min_size=1, max_size=10),
    st.sampled_from(["com", "ae", "co.uk", "gov.ae"]),
)


def _digits(value: str) -> str:
    return "".join(char for char in value if char.isdigit())


@settings(max_examples=150, deadline=None)
@given(
    pii=st.one_of(emirates_ids(), uae_ibans(), uae_phones(), emails),
    before=FILLER,
    after=FILLER,
)
def test_pii_never_emitted(pii: str, before: str, after: str) -> None:
    cleaned = redact(f"{before} {pii} {after}")
    assert pii not in cleaned, cleaned
    digits = _digits(pii)
    if len(digits) >= 9:
        assert digits not in _digits(cleaned), cleaned


@settings(max_examples=150, deadline=None)
@given(
    port=st.integers(1, 65535),
    count=st.integers(0, 10**12),
    seconds=st.integers(0, 2**31),
    millis=st.integers(10**12, 2 * 10**12 - 1),
    hex_id=st.binary(min_size=16, max_size=16).map(bytes.hex),
    moment=st.datetimes(),
)
def test_ordinary_numbers_kept(
    port: int, count: int, seconds: int, millis: int, hex_id: str, moment: object
) -> None:
    text = (
        f"listening on 127.0.0.1:{port} rows={count} epoch={seconds} ms={millis} "
        f"id={hex_id} at {moment}"
    )
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer mnr_0123456789ab_s3cretpart", "s3cretpart"),
        ("key mnr_0123456789ab_s3cretpart", "s3cretpart"),
        ("jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl", "c2lnbmF0dXJl"),
        ("url postgresql://app:hunter2@db:5432/x", "hunter2"),
        ("password=hunter2 next", "hunter2"),
        ('{"client_secret": "abc123xyz"}', "abc123xyz"),
        ("GET /x?api_key=abc123xyz&page=2", "abc123xyz"),
        ("id AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        ("secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG\n-----END PRIVATE KEY-----", "MIGHAgEAMBMG"),
        ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI truncated", "MHcCAQEEI"),
        ("card 4111 1111 1111 1111", "1111 1111"),
        ("card 5500005555555559", "5500005555555559"),
        ("amex 3782 822463 10005", "822463"),
        ("iban GB82 WEST 1234 5698 7654 32", "WEST"),
        ("eid ٧٨٤-١٩٩٠-١٢٣٤٥٦٧-٦", "١٢٣٤٥٦٧"),
        ("call +44 20 7946 0958", "7946"),
        ("office +971 4 123 4567", "123 4567"),
    ],
)
def test_secret_redacted(text: str, secret: str) -> None:
    assert secret not in redact(text), redact(text)


def test_check_digits() -> None:
    assert luhn_valid([int(c) for c in "784199012345676"])
    assert not luhn_valid([int(c) for c in "784199012345671"])
    assert iban_valid("AE070331234567890123456")
    assert not iban_valid("AE080331234567890123456")


def test_invalid_card_kept() -> None:
    assert redact("order 4111111111111112") == "order 4111111111111112"


def _record_through(handler: logging.Handler, exc: Exception) -> str:
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise exc
        except type(exc):
            logger.exception(
                "failed for %s with key %s", "jane@example.com", "mnr_0a0a0a0a0a0a_k3y"
            )
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return handler.stream.getvalue()  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize("formatter", [logging.Formatter(), JsonFormatter()])
def test_filter_covers_args_and_traceback(formatter: logging.Formatter) -> None:
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(formatter)
    output = _record_through(handler, ValueError("bad IBAN AE070331234567890123456"))
    assert "jane@example.com" not in output
    assert "k3y" not in output
    assert "AE070331234567890123456" not in output
    assert "ValueError" in output, "the traceback is missing"
    assert "[IBAN]" in output


def test_configured_handler_covers_uvicorn() -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    # Servers started by earlier tests may have raised uvicorn's levels.
    uvicorn_loggers = [logging.getLogger(name) for name in ("uvicorn.access", "uvicorn.error")]
    levels = [logger.level for logger in uvicorn_loggers]
    stream = io.StringIO()
    try:
        for logger in uvicorn_loggers:
            logger.setLevel(logging.INFO)
        configure_logging("INFO")
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/x?token=abc123", "1.1", 200
        )
        logging.getLogger("uvicorn.error").warning("client jane@example.com sent junk")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for logger, level in zip(uvicorn_loggers, levels, strict=True):
            logger.setLevel(level)
    output = stream.getvalue()
    assert "abc123" not in output
    assert "jane@example.com" not in output
    assert "uvicorn.access" in output


def test_configure_logging_resets_uvicorn() -> None:
    access = logging.getLogger("uvicorn.access")
    stale = logging.NullHandler()
    saved = (access.propagate, list(access.handlers))
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    # The state that an in-process uvicorn with access_log=False leaves behind.
    access.propagate = False
    access.addHandler(stale)
    try:
        configure_logging("INFO")
        propagates = access.propagate
        handlers = list(access.handlers)
    finally:
        root.handlers[:] = saved_root[0]
        root.setLevel(saved_root[1])
        access.propagate = saved[0]
        access.handlers[:] = saved[1]
    assert propagates, "uvicorn.access records would not reach the root handler"
    assert handlers == []


# Both servers, end to end -----------------------------------------------------

KEY_PII = {
    "email": "jane.doe@example.com",
    "eid": "784-1990-1234567-6",
    "phone": "+971 50 123 4567",
    "iban": "AE070331234567890123456",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    manara = str(Path(sys.executable).parent / "manara")
    with log.open("wb") as sink:
        return subprocess.Popen([manara, *args], env=env, stdout=sink, stderr=subprocess.STDOUT)


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited with {process.returncode}"
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within 90 s")


@pytest.fixture(scope="module")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Run both servers as ``manara`` processes, send requests that carry secrets and PII."""
    folder = tmp_path_factory.mktemp("logs")
    home = folder / "home"
    workspace = Workspace.open(Settings(home=home))
    frame, labels = synthetic_frame(200, seed=3)
    register(workspace, MODEL, sklearn_pipeline(frame, labels), frame.head(20))
    key = workspace.issue_key(workspace.local_admin()).token
    workspace.close()

    env = {**os.environ, "MANARA_HOME": str(home)}
    plane_port, serve_port = _free_port(), _free_port()
    plane = _start(["server", "--port", str(plane_port)], env, folder / "plane.log")
    serve = _start(
        ["serve", MODEL, "--port", str(serve_port), "--log-level", "debug"],
        env,
        folder / "serve.log",
    )
    try:
        _wait(f"http://127.0.0.1:{plane_port}/health/live", plane)
        _wait(f"http://127.0.0.1:{serve_port}/v2/health/live", serve)
        _send(f"http://127.0.0.1:{plane_port}", f"http://127.0.0.1:{serve_port}", key)
    finally:
        for process in (plane, serve):
            process.terminate()
            process.wait(30)
    output = (folder / "plane.log").read_text() + (folder / "serve.log").read_text()
    yield output, key


def _send(plane: str, serve: str, key: str) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    pii = KEY_PII
    httpx.get(f"{plane}/api/v1/experiments?api_key={key}&email={pii['email']}", headers=auth)
    httpx.get(f"{plane}/api/v1/runs/{pii['eid']}", headers=auth)
    httpx.get(f"{plane}/api/v1/resolve", params={"ref": pii["iban"]}, headers=auth)
    httpx.get(f"{plane}/api/v1/experiments", headers={"Authorization": f"Bearer {key}x"})
    httpx.get(f"{serve}/v2/models/{pii['eid']}/ready", headers=auth)
    body = {"id": f"{pii['email']} {pii['phone']}", "inputs": []}
    httpx.post(f"{serve}/v2/models/{MODEL}/infer", json=body, headers=auth)
    # A request line that is not HTTP makes uvicorn log a warning of its own.
    with socket.create_connection(("127.0.0.1", int(serve.rsplit(":", 1)[1]))) as raw:
        raw.sendall(f"BROKEN {pii['email']}\r\n\r\n".encode())
        raw.recv(1024)


def test_servers_log_requests(server_logs: tuple[str, str]) -> None:
    output, _ = server_logs
    assert "/api/v1/runs/[EMIRATES_ID]" in output, output[-3000:]
    assert "/v2/models/[EMIRATES_ID]/ready" in output, output[-3000:]
    assert '"logger":"uvicorn.access"' in output


def test_servers_never_log_key(server_logs: tuple[str, str]) -> None:
    output, key = server_logs
    secret_part = key.split("_", 2)[2]
    assert secret_part not in output


@pytest.mark.parametrize("kind", sorted(KEY_PII))
def test_servers_never_log_pii(server_logs: tuple[str, str], kind: str) -> None:
    output, _ = server_logs
    value = KEY_PII[kind]
    assert value not in output
    assert value.replace(" ", "+") not in output
    assert value.replace("@", "%40").replace("+", "%2B").replace(" ", "%20") not in output
