"""A workspace: the stores named by the settings, and its identities.

``Workspace.open`` creates what is missing (folders, schema, the local admin
principal) and is safe to call from several processes at once. ``init``
marks the workspace initialised and issues the admin's first API key; it
refuses to run twice so that it never replaces an existing admin key.
"""

from __future__ import annotations

import logging
import os
import stat
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import make_url
from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from manara.clock import Clock, SystemClock
from manara.config import Settings
from manara.context import Context
from manara.errors import ConflictError
from manara.files import PRIVATE_DIR_MODE, create_private_file, private_dir
from manara.ids import new_id
from manara.security.apikeys import Authenticator, AuthFailure, IssuedKey, issue_api_key
from manara.security.keys import local_keyring
from manara.security.oidc import verifier_from_settings
from manara.security.policy import PolicyDecisionPoint
from manara.security.policy_versions import ActivePolicy
from manara.security.principal import Principal
from manara.security.ratelimit import FailureLimiter
from manara.stores.artifacts import ArtifactStore
from manara.stores.artifacts.encrypted import EncryptedArtifactStore
from manara.stores.artifacts.vault import ArtifactVault
from manara.stores.metadata import MetadataStore
from manara.stores.metadata.identities import IdentityRepository

if TYPE_CHECKING:
    from manara.security.audit import AuditLog

logger = logging.getLogger(__name__)

LOCAL_ADMIN_NAME = "local-admin"
_INITIALISED_KEY = "initialised_at"


def secure_home(home: Path) -> None:
    """Create ``home`` with mode 0700, or take group and other access off an existing one."""
    private_dir(home)
    mode = stat.S_IMODE(home.stat().st_mode)
    if mode & 0o077:
        logger.warning(
            "MANARA_HOME %s had mode %04o, so group or others could access it; "
            "changed it to 0700. Check who may have read its files.",
            home,
            mode,
        )
        os.chmod(home, PRIVATE_DIR_MODE)


def sqlite_database_path(url: str) -> Path | None:
    """Return the file of a SQLite URL, or None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


class Workspace:
    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        artifacts: ArtifactVault,
        clock: Clock,
        policy: PolicyDecisionPoint,
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.artifacts = artifacts
        self.clock = clock
        self.policy = policy
        self.identities = IdentityRepository(metadata)
        self.authenticator = Authenticator(
            self.identities,
            clock,
            tokens=verifier_from_settings(settings, self.identities, clock),
            limiter=FailureLimiter(
                settings.auth_max_failures,
                settings.auth_failure_window_seconds,
                settings.auth_lockout_seconds,
                clock=lambda: clock.now().timestamp(),
            ),
            on_failure=self._record_auth_failure,
        )
        self._audit: AuditLog | None = None

    @property
    def audit(self) -> AuditLog:
        """The audit log, with its signing key created under ``home/keys`` on first use."""
        if self._audit is None:
            from manara.security.audit import SIGNING_KEY_PATH, AuditLog
            from manara.security.audit_signer import AuditSigner

            signer = AuditSigner.load_or_create(self.settings.home / SIGNING_KEY_PATH)
            self._audit = AuditLog(self.metadata, signer, self.clock)
        return self._audit

    def _record_auth_failure(self, failure: AuthFailure) -> None:
        from manara.security.audit_events import AuditEvent

        details: dict[str, Any] = {"credential_type": failure.credential}
        if failure.client:
            details["client"] = failure.client
        if failure.suppressed:
            details["suppressed"] = failure.suppressed
        self.audit.record(
            AuditEvent(
                principal_id=failure.principal_id or "anonymous",
                action="auth.failed",
                resource_type=failure.credential,
                resource_id=failure.key_prefix or "",
                decision="deny",
                reason=failure.reason,
                details=details,
            )
        )

    @classmethod
    def open(
        cls,
        settings: Settings,
        clock: Clock | None = None,
        policy: PolicyDecisionPoint | None = None,
    ) -> Workspace:
        secure_home(settings.home)
        database = sqlite_database_path(settings.database_url)
        if database is not None:
            # Created 0600 before SQLite opens it: SQLite gives its -wal and -shm
            # files the mode of the database file. The migration lock file beside
            # it is opened for appending, which keeps the mode set here.
            create_private_file(database)
            create_private_file(database.with_name(f"{database.name}.migrate.lock"))
        metadata = MetadataStore.open(settings.database_url)
        # Every artifact is encrypted under the workspace keyring, created on first use.
        encrypted = EncryptedArtifactStore(
            ArtifactStore(settings.artifact_root), local_keyring(settings)
        )
        artifacts = ArtifactVault(encrypted, region=settings.artifact_region)
        return cls(
            settings, metadata, artifacts, clock or SystemClock(), policy or ActivePolicy(metadata)
        )

    def local_admin(self) -> Principal:
        """Return the workspace's admin principal, creating it on first use."""
        existing = self.identities.find_principal_by_name(LOCAL_ADMIN_NAME)
        if existing is not None:
            return existing
        # The single-user admin may read data of every classification.
        admin = Principal(
            id=new_id(), name=LOCAL_ADMIN_NAME, roles=frozenset({"admin"}), clearance="restricted"
        )
        try:
            return self.identities.create_principal(admin, self.clock.now())
        except (ConflictError, SQLIntegrityError):
            # Another process created it between the lookup and the insert.
            found = self.identities.find_principal_by_name(LOCAL_ADMIN_NAME)
            if found is None:
                raise
            return found

    def context(self, principal: Principal | None = None) -> Context:
        return Context(
            principal=principal or self.local_admin(),
            settings=self.settings,
            metadata=self.metadata,
            artifacts=self.artifacts,
            policy=self.policy,
            clock=self.clock,
            audit=self.audit,
        )

    @property
    def initialised_at(self) -> str | None:
        return self.metadata.get_meta(_INITIALISED_KEY)

    def init(self) -> tuple[Principal, IssuedKey]:
        """Mark the workspace initialised and issue the admin's API key, once."""
        if self.initialised_at is not None:
            raise ConflictError(
                f"The workspace at {self.settings.home} was already initialised at "
                f"{self.initialised_at}; nothing was changed. Use its existing admin key, "
                "or choose another MANARA_HOME."
            )
        admin = self.local_admin()
        now: datetime = self.clock.now()
        key = issue_api_key(self.identities, admin, now)
        self.metadata.set_meta(_INITIALISED_KEY, now.isoformat())
        self.context(admin).record(
            "workspace.init", "workspace", details={"api_key_prefix": key.prefix}
        )
        logger.info("workspace initialised home=%s admin=%s", self.settings.home, admin.id)
        return admin, key

    def create_principal(self, name: str, roles: set[str], kind: str = "user") -> Principal:
        principal = Principal(
            id=new_id(),
            name=name,
            kind="service" if kind == "service" else "user",
            roles=frozenset(roles),
        )
        return self.identities.create_principal(principal, self.clock.now())

    def issue_key(self, principal: Principal) -> IssuedKey:
        return issue_api_key(self.identities, principal, self.clock.now())

    def close(self) -> None:
        self.metadata.close()
