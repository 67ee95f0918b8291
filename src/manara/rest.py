"""HTTP transport of the SDK: one httpx client, errors mapped back by code."""

from __future__ import annotations

from typing import Any

import httpx

from manara.errors import (
    AuthenticationError,
    ManaraError,
    UnavailableError,
    error_from_code,
)
from manara.security.redaction import mask_url_passwords

API_PREFIX = "/api/v1"


class RestTransport:
    def __init__(self, url: str, token: str | None, timeout: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = self._client.request(
                method,
                API_PREFIX + path,
                json=json,
                params=params,
                content=content,
                headers=headers,
            )
        except httpx.TransportError as exc:
            message = (
                f"Cannot reach the Manara server at {self.url}: {exc}. "
                "Check that `manara server` runs and the URL is right."
            )
            # Not chained: the transport error's own text may carry the unmasked URL,
            # and its message is already part of this one.
            raise UnavailableError(mask_url_passwords(message)) from None
        if response.is_success:
            return response
        raise self._error(response)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    @staticmethod
    def _error(response: httpx.Response) -> ManaraError:
        try:
            body = response.json()
            error = body["error"]
            return error_from_code(error["code"], error["message"], error.get("details"))
        except (ValueError, KeyError, TypeError):
            if response.status_code == 401:
                return AuthenticationError("The server rejected the credentials.")
            return ManaraError(
                f"The server returned HTTP {response.status_code}: {response.text[:300]}"
            )

    def close(self) -> None:
        self._client.close()
