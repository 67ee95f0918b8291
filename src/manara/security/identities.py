"""Identity administration: projects, users, service accounts, API keys and tokens.

``IdentityService(ctx)`` is the one service the CLI (and later the REST
API) calls. Each operation calls ``ctx.authorize`` first and writes an audit event:

| operation | action asked | audit action |
| --- | --- | --- |
| create_project | ``project.create`` | ``project.create`` |
| list_projects | ``project.read`` | |
| create_principal | ``principal.create`` | ``principal.create`` |
| add_member | ``principal.update`` | ``principal.member`` |
| disable_principal | ``principal.update`` | ``principal.disable`` |
| list_principals | ``principal.read`` | |
| issue_api_key, revoke_api_key | ``principal.update`` | ``apikey.create``, ``apikey.revoke`` |
| list_api_keys | ``principal.read`` | |
| issue_token | ``token.issue``, unless a service account exchanges its own API key | ``token.issue`` |
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from manara.context import Context
from manara.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from manara.ids import new_id
from manara.security.apikeys import Authenticator, IssuedKey, issue_api_key
from manara.security.principal import Principal, PrincipalKind
from manara.security.tokens import (
    IssuedToken,
    TokenSigner,
    sign_platform_token,
    signing_key_path,
)
from manara.stores.metadata.identities import (
    ApiKeyRecord,
    IdentityRepository,
    PrincipalRecord,
    Project,
)

logger = logging.getLogger(__name__)

_PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")
_ROLE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
# Printable, no spaces; OIDC principals are named "oidc:<issuer URL>:<subject>".
_PRINCIPAL_NAME = re.compile(r"[A-Za-z0-9][\x21-\x7e]{0,199}")


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key as listed: never its secret or hash."""

    prefix: str
    principal_name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


def _check_name(kind: str, value: str, pattern: re.Pattern[str], rule: str) -> None:
    if not pattern.fullmatch(value):
        raise InvalidInputError(f"Invalid {kind} name {value!r}: use {rule}.", value=value)


def _check_roles(roles: Iterable[str]) -> frozenset[str]:
    checked = frozenset(roles)
    for role in sorted(checked):
        _check_name("role", role, _ROLE_NAME, "lowercase letters, digits, '-' and '_'")
    return checked


class IdentityService:
    """Administers identities on behalf of ``ctx.principal``.

    ``authenticator`` is the process's authenticator, when there is one; its
    cache is dropped after a key is revoked or a principal disabled, so the
    change takes effect at once in this process (other processes wait for their
    cache to expire, 60 seconds by default).
    """

    def __init__(self, ctx: Context, authenticator: Authenticator | None = None) -> None:
        self.ctx = ctx
        self._identities = IdentityRepository(ctx.metadata)
        self._authenticator = authenticator

    # Projects

    def create_project(self, name: str, description: str = "") -> Project:
        self.ctx.authorize("project.create", "project", name)
        _check_name("project", name, _PROJECT_NAME, "lowercase letters, digits, '-' and '_'")
        project = Project(name, description, self.ctx.clock.now())
        self._identities.create_project(project)
        self.ctx.record("project.create", "project", name)
        logger.info("created project %s", name)
        return project

    def list_projects(self) -> list[Project]:
        self.ctx.authorize("project.read", "project")
        return self._identities.list_projects()

    def _require_project(self, name: str) -> None:
        if self._identities.find_project(name) is None:
            raise NotFoundError(
                f"Project {name!r} not found. Create it with `manara projects create {name}`."
            )

    # Principals

    def create_principal(
        self, name: str, project: str, roles: Iterable[str], kind: PrincipalKind = "user"
    ) -> Principal:
        """Create a user or service account at home in ``project`` with ``roles`` there."""
        self.ctx.authorize("principal.create", "principal", name)
        _check_name("principal", name, _PRINCIPAL_NAME, "printable characters without spaces")
        checked = _check_roles(roles)
        self._require_project(project)
        principal = Principal(new_id(), name, kind, checked, project)
        self._identities.create_principal(principal, self.ctx.clock.now())
        self.ctx.record(
            "principal.create",
            "principal",
            principal.id,
            details={"name": name, "kind": kind, "project": project, "roles": sorted(checked)},
        )
        return principal

    def get_principal(self, name: str) -> PrincipalRecord:
        self.ctx.authorize("principal.read", "principal", name)
        return self._find(name)

    def _find(self, name: str) -> PrincipalRecord:
        record = self._identities.find_principal_record(name)
        if record is None:
            raise NotFoundError(
                f"Principal {name!r} not found. List principals with `manara principals list`."
            )
        return record

    def list_principals(self, project: str | None = None) -> list[PrincipalRecord]:
        self.ctx.authorize("principal.read", "principal")
        return self._identities.list_principals(project)

    def add_member(self, name: str, project: str, roles: Iterable[str]) -> Principal:
        """Give a principal ``roles`` in a project other than its home project."""
        self.ctx.authorize("principal.update", "principal", name)
        checked = _check_roles(roles)
        self._require_project(project)
        record = self._find(name)
        if record.principal.project == project:
            raise InvalidInputError(
                f"Project {project!r} is the home project of {name!r}; its roles there are "
                "set when the principal is created."
            )
        self._identities.set_membership(record.principal.id, project, checked, self.ctx.clock.now())
        self.ctx.record(
            "principal.member",
            "principal",
            record.principal.id,
            details={"project": project, "roles": sorted(checked)},
        )
        self._forget()
        return self._identities.get_principal(record.principal.id)

    def disable_principal(self, name: str) -> PrincipalRecord:
        """Disable a principal: its API keys and tokens stop authenticating."""
        self.ctx.authorize("principal.update", "principal", name)
        record = self._find(name)
        if record.principal.id == self.ctx.principal.id:
            raise InvalidInputError(f"Principal {name!r} cannot disable itself. Ask another admin.")
        self._identities.disable_principal(record.principal.id, self.ctx.clock.now())
        self.ctx.record("principal.disable", "principal", record.principal.id)
        self._forget()
        return self._identities.get_principal_record(record.principal.id)

    # API keys

    def issue_api_key(self, name: str, ttl: timedelta | None = None) -> IssuedKey:
        """Issue an API key for a principal; the key is returned once and never stored."""
        self.ctx.authorize("principal.update", "principal", name)
        record = self._find(name)
        if record.disabled_at is not None:
            raise InvalidInputError(f"Principal {name!r} is disabled; no key was issued.")
        if ttl is not None and ttl <= timedelta(0):
            raise InvalidInputError(f"API key lifetime must be positive; got {ttl}.")
        key = issue_api_key(self._identities, record.principal, self.ctx.clock.now(), ttl)
        expires = key.expires_at.isoformat() if key.expires_at else None
        self.ctx.record(
            "apikey.create",
            "api_key",
            key.prefix,
            details={"principal": record.principal.id, "expires_at": expires},
        )
        return key

    def list_api_keys(self, name: str | None = None) -> list[ApiKeyInfo]:
        self.ctx.authorize("principal.read", "principal", name or "")
        principal_id = self._find(name).principal.id if name else None
        names = {r.principal.id: r.principal.name for r in self._identities.list_principals()}
        return [_info(key, names) for key in self._identities.list_api_keys(principal_id)]

    def revoke_api_key(self, prefix: str) -> None:
        record = self._identities.find_api_key(prefix)
        if record is None:
            raise NotFoundError(
                f"API key with prefix {prefix!r} not found. List keys with `manara api-keys list`."
            )
        self.ctx.authorize("principal.update", "principal", record.principal_id)
        self._identities.revoke_api_key(prefix, self.ctx.clock.now())
        self.ctx.record(
            "apikey.revoke", "api_key", prefix, details={"principal": record.principal_id}
        )
        self._forget()

    # Tokens

    def issue_token(self, name: str, ttl: timedelta, *, via_api_key: bool = False) -> IssuedToken:
        """Sign a short-lived platform token for service account ``name``.

        The requester needs ``token.issue``, unless it is that service account
        itself and authenticated with its API key (``via_api_key``). A token
        cannot be exchanged for a fresh token, because a stolen one would then
        never expire.
        """
        record = self._find(name)
        subject = record.principal
        own_exchange = via_api_key and subject.id == self.ctx.principal.id
        if not own_exchange:
            self.ctx.authorize("token.issue", "principal", subject.id)
        if record.disabled_at is not None:
            raise PermissionDeniedError(
                f"Principal {name!r} is disabled; no token was issued.",
                action="token.issue",
                reason="disabled",
            )
        signer = TokenSigner.load_or_create(signing_key_path(self.ctx.settings))
        issued = sign_platform_token(signer, subject, self.ctx.clock.now(), ttl)
        self.ctx.record(
            "token.issue",
            "principal",
            subject.id,
            details={"expires_at": issued.expires_at.isoformat(), "self": own_exchange},
        )
        return issued

    def _forget(self) -> None:
        if self._authenticator is not None:
            self._authenticator.forget()


def _info(key: ApiKeyRecord, names: dict[str, str]) -> ApiKeyInfo:
    return ApiKeyInfo(
        prefix=key.prefix,
        principal_name=names.get(key.principal_id, key.principal_id),
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )
