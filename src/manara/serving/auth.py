"""Authentication and authorisation on the inference path, with short-lived caches.

``workspace.authenticator`` verifies a key with argon2id (tens of
milliseconds) and a database lookup, so the server calls it on a worker
thread and never on the event loop. The principal it returns is kept for
``cache_seconds`` under the SHA-256 of the token, like the authenticator's
own cache, so that a hit costs one hash and one dict lookup. Policy
decisions on the served model are kept for the same time under
(principal id, action). A revoked key or a removed role therefore stops working within
``cache_seconds`` plus the authenticator's own cache time.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import Callable

from manara.errors import AuthenticationError, PermissionDeniedError
from manara.security.apikeys import Authenticator, bearer_token
from manara.security.policy import Access, PolicyDecisionPoint, Resource, authorize
from manara.security.principal import Principal

# Entries past this count are dropped wholesale; a flood of distinct valid
# keys then costs re-verification, never unbounded memory.
_MAX_CACHE_ENTRIES = 10_000


class ServingAuth:
    """Turns an ``Authorization`` header into a principal allowed an action on the model."""

    def __init__(
        self,
        authenticator: Authenticator,
        policy: PolicyDecisionPoint,
        model_name: str,
        cache_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        access: Access | None = None,
        on_denied: Callable[[Principal, str, str], None] | None = None,
    ) -> None:
        """Guard the model named ``model_name``.

        ``access`` gives the stored model's project, classification and allowed
        regions, so that the policy judges the real resource. Without it, the
        model is taken to be in the caller's project. ``on_denied`` receives the
        principal, action and reason code of a refusal for the audit log, at
        most once per principal and action per ``cache_seconds``.
        """
        self._authenticator = authenticator
        self._policy = policy
        self._model_name = model_name
        self._access = access
        self._on_denied = on_denied
        self._denials: dict[tuple[str, str], float] = {}
        self._ttl = cache_seconds
        self._monotonic = monotonic
        self._principals: dict[bytes, tuple[Principal, float]] = {}
        self._decisions: dict[tuple[str, str], float] = {}
        self._verifying: dict[bytes, asyncio.Future[Principal]] = {}
        self._grants: dict[tuple[bytes, tuple[str, ...] | None], float] = {}

    async def check(
        self, header: bytes | None, client: str | None, actions: tuple[str, ...] | None
    ) -> None:
        """Authenticate the header and, unless ``actions`` is ``None``, authorise one of them.

        A granted (header, actions) pair is remembered for ``cache_seconds``, so
        a repeat costs one dict lookup. The raw header is the key: it lives in
        this process's memory no longer than the request buffers that carry it.
        """
        if header is None:
            # Raises, after auditing the missing header.
            await self.authenticate(header, client)
            return
        key = (header, actions)
        valid_until = self._grants.get(key)
        if valid_until is not None and valid_until > self._monotonic():
            return
        principal = await self.authenticate(header, client)
        if actions is not None:
            self.authorize(principal, actions)
        if len(self._grants) >= _MAX_CACHE_ENTRIES:
            self._grants.clear()
        self._grants[key] = self._monotonic() + self._ttl

    async def authenticate(self, header: bytes | None, client: str | None = None) -> Principal:
        """Return the principal of a bearer token, or raise ``AuthenticationError``.

        ``client`` is the caller's address, which the authenticator uses to
        rate-limit failed attempts.
        """
        if header is None:
            await self._report_header_failure("missing_header", client)
            raise AuthenticationError(
                "Missing Authorization header. Send 'Authorization: Bearer <API key>'.",
                reason="missing_header",
            )
        fingerprint = hashlib.sha256(header).digest()
        cached = self._principals.get(fingerprint)
        now = self._monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]

        pending = self._verifying.get(fingerprint)
        if pending is None:
            # One verification per token at a time: concurrent requests with
            # the same expired entry wait for it instead of each running argon2.
            try:
                token = bearer_token(header.decode("latin-1"))
            except AuthenticationError as error:
                reason = str(error.details.get("reason", "malformed_header"))
                await self._report_header_failure(reason, client)
                raise
            loop = asyncio.get_running_loop()
            verify = functools.partial(self._authenticator.authenticate, token, client=client)
            pending = loop.run_in_executor(None, verify)
            self._verifying[fingerprint] = pending
            pending.add_done_callback(lambda _: self._verifying.pop(fingerprint, None))
        principal = await asyncio.shield(pending)
        if len(self._principals) >= _MAX_CACHE_ENTRIES:
            self._principals.clear()
        self._principals[fingerprint] = (principal, now + self._ttl)
        return principal

    async def _report_header_failure(self, reason: str, client: str | None) -> None:
        # The audit write touches the database, so it runs off the event loop.
        report = functools.partial(self._authenticator.report_header_failure, reason, client)
        await asyncio.get_running_loop().run_in_executor(None, report)

    def authorize(self, principal: Principal, actions: tuple[str, ...]) -> None:
        """Raise ``PermissionDeniedError`` unless the policy allows one of ``actions``.

        The actions are tried in order and the last one's refusal is raised.
        """
        now = self._monotonic()
        for action in actions:
            valid_until = self._decisions.get((principal.id, action))
            if valid_until is not None and valid_until > now:
                return
        # Only a cache miss builds the resource and queries the policy.
        if self._access is None:
            resource = Resource("model", self._model_name, project=principal.project)
        else:
            resource = Resource.of("model", self._model_name, self._access)
        for index, action in enumerate(actions):
            key = (principal.id, action)
            if index == len(actions) - 1:
                try:
                    authorize(self._policy, principal, action, resource)
                except PermissionDeniedError as denied:
                    self._report_denial(principal, action, denied, now)
                    raise
            elif not self._policy.decide(principal, action, resource).allowed:
                continue
            if len(self._decisions) >= _MAX_CACHE_ENTRIES:
                self._decisions.clear()
            self._decisions[key] = now + self._ttl
            return

    def _report_denial(
        self, principal: Principal, action: str, denied: PermissionDeniedError, now: float
    ) -> None:
        if self._on_denied is None:
            return
        key = (principal.id, action)
        if self._denials.get(key, 0.0) > now:
            return
        if len(self._denials) >= _MAX_CACHE_ENTRIES:
            self._denials.clear()
        self._denials[key] = now + self._ttl
        self._on_denied(principal, action, str(denied.details.get("reason", "denied")))

    def forget(self) -> None:
        """Drop cached principals and decisions, for example after a key is revoked."""
        self._principals.clear()
        self._decisions.clear()
        self._grants.clear()
