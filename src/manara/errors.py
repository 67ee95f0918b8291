"""Exception tree for Manara.

Every error carries a stable ``code`` that survives the wire: the REST API
sends it and the SDK maps it back through a closed registry, never by class
name. Errors are grouped by what the caller can do about them::

    ManaraError
    ├── InvalidInputError        fix the request (bad value, missing column)
    │   └── SignatureError       inference input does not match the model signature
    ├── NotFoundError            the experiment, run, model, version or alias does not exist
    ├── ConflictError            the thing already exists, or the state forbids the change
    ├── AuthenticationError      no credential, or one that is invalid or expired
    │   └── RateLimitedError     locked out after repeated failures; retry after a delay
    ├── PermissionDeniedError    the principal may not perform this action
    ├── IntegrityError           stored data no longer matches its digest; never retry
    ├── UnsafeArtifactError      an artifact format that can run code on load
    └── UnavailableError         a dependency is down or busy; retry later

The HTTP status of each error is decided in the API layer only
(``manara.api.errors``).
"""

from __future__ import annotations

from typing import Any, ClassVar


class ManaraError(Exception):
    """Base class of every error Manara raises on purpose."""

    code: ClassVar[str] = "internal"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidInputError(ManaraError):
    code = "invalid_input"


class SignatureError(InvalidInputError):
    code = "signature_mismatch"


class NotFoundError(ManaraError):
    code = "not_found"


class ConflictError(ManaraError):
    code = "conflict"


class AuthenticationError(ManaraError):
    code = "unauthenticated"


class RateLimitedError(AuthenticationError):
    """Authentication locked out; ``details["retry_after_seconds"]`` gives the wait."""

    code = "rate_limited"


class PermissionDeniedError(ManaraError):
    code = "permission_denied"


class IntegrityError(ManaraError):
    code = "integrity"


class UnsafeArtifactError(InvalidInputError):
    code = "unsafe_artifact"


class UnavailableError(ManaraError):
    code = "unavailable"


_BY_CODE: dict[str, type[ManaraError]] = {
    cls.code: cls
    for cls in (
        ManaraError,
        InvalidInputError,
        SignatureError,
        NotFoundError,
        ConflictError,
        AuthenticationError,
        RateLimitedError,
        PermissionDeniedError,
        IntegrityError,
        UnsafeArtifactError,
        UnavailableError,
    )
}


def error_from_code(code: str, message: str, details: dict[str, Any] | None = None) -> ManaraError:
    """Rebuild an error received from a remote peer through the closed code registry."""
    cls = _BY_CODE.get(code, ManaraError)
    return cls(message, **(details or {}))
