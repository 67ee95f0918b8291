"""Settings: ``MANARA_*`` environment variables, then ``manara.yaml``, then defaults.

Every option has a default and an environment variable. The YAML file is
read from ``MANARA_CONFIG`` when set, else from ``manara.yaml`` in the
working directory when present. Keys in the file use the field names below
(``database_url``, ``artifact_root`` ...).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from manara.errors import InvalidInputError


class Secret:
    """A string that never shows its value in ``repr``, ``str`` or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    """Resolved configuration for one Manara process."""

    home: Path = field(default_factory=lambda: Path(".manara"))
    """Workspace folder: SQLite database, artifacts, prediction logs, reports."""
    database_url: str = ""
    """SQLAlchemy URL of the metadata database; empty means SQLite under ``home``."""
    artifact_root: str = ""
    """fsspec URL or folder of the artifact store; empty means ``home/artifacts``."""
    artifact_region: str = "local"
    """Region of the artifact store, bound into every artifact's encryption context."""
    server_url: str = ""
    """Control-plane URL for the SDK and CLI; empty means local mode."""
    api_key: Secret | None = None
    """API key sent as ``Authorization: Bearer`` to a remote control plane."""
    log_level: str = "INFO"
    prediction_log_batch_size: int = 512
    """Records the prediction log writer collects before it writes a file."""
    prediction_log_flush_seconds: float = 1.0
    """Longest time a prediction record waits in memory before it is written."""
    oidc_issuer: str = ""
    """Issuer (``iss``) of accepted OIDC bearer tokens; empty turns OIDC off."""
    oidc_audience: str = ""
    """Audience (``aud``) that OIDC tokens must name; required with ``oidc_issuer``."""
    oidc_jwks: str = ""
    """JWKS of the OIDC issuer: a file path, or an https URL (http only on loopback)."""
    oidc_groups_claim: str = "groups"
    """Token claim that lists the caller's groups."""
    oidc_group_roles: str = ""
    """YAML file mapping each group to ``{project: ..., roles: [...]}``."""
    oidc_algorithms: str = "RS256,ES256,EdDSA"
    """Comma-separated JWS algorithms accepted from the OIDC issuer; HS* needs a shared secret."""
    oidc_shared_secret: Secret | None = None
    """HMAC secret of the OIDC issuer, only for issuers that sign with HS256/384/512."""
    token_ttl_seconds: int = 900
    """Lifetime of tokens issued by ``manara token``, in seconds."""
    auth_max_failures: int = 5
    """Failed authentications from one client or for one key prefix before a lockout."""
    auth_failure_window_seconds: float = 60.0
    """Sliding window, in seconds, in which ``auth_max_failures`` are counted."""
    auth_lockout_seconds: float = 300.0
    """Seconds during which a locked-out client or key prefix is rejected."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed to call the servers from a browser (CORS); empty allows none.

    ``MANARA_CORS_ORIGINS`` takes a comma-separated list, ``manara.yaml`` a list.
    """

    def __post_init__(self) -> None:
        home = Path(self.home).expanduser()
        object.__setattr__(self, "home", home)
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{home.resolve() / 'manara.db'}")
        if not self.artifact_root:
            object.__setattr__(self, "artifact_root", str(home.resolve() / "artifacts"))

    @property
    def predictions_dir(self) -> Path:
        return self.home / "predictions"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    def with_overrides(self, **values: Any) -> Settings:
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        if "home" in values:
            # Derived locations follow a new home unless they are given too.
            current["database_url"] = ""
            current["artifact_root"] = ""
        current.update(values)
        return Settings(**current)


_CASTS: dict[str, type] = {
    "home": Path,
    "database_url": str,
    "artifact_root": str,
    "artifact_region": str,
    "server_url": str,
    "api_key": Secret,
    "log_level": str,
    "prediction_log_batch_size": int,
    "prediction_log_flush_seconds": float,
    "oidc_issuer": str,
    "oidc_audience": str,
    "oidc_jwks": str,
    "oidc_groups_claim": str,
    "oidc_group_roles": str,
    "oidc_algorithms": str,
    "oidc_shared_secret": Secret,
    "token_ttl_seconds": int,
    "auth_max_failures": int,
    "auth_failure_window_seconds": float,
    "auth_lockout_seconds": float,
    "cors_origins": tuple,
}


def _cast(name: str, raw: Any, source: str) -> Any:
    cast = _CASTS[name]
    try:
        if cast is Secret:
            return Secret(str(raw))
        if cast is tuple:
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(str(item).strip() for item in items if str(item).strip())
        return cast(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"Invalid value for setting {name!r} from {source}: {raw!r} is not a valid "
            f"{cast.__name__}. Fix the value or remove it to use the default.",
            setting=name,
        ) from exc


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"Invalid YAML in config file {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise InvalidInputError(f"Config file {path} must contain a mapping of setting names.")
    unknown = sorted(set(loaded) - set(_CASTS))
    if unknown:
        raise InvalidInputError(
            f"Unknown settings in {path}: {', '.join(unknown)}. "
            f"Known settings: {', '.join(sorted(_CASTS))}."
        )
    return loaded


def load_settings(
    environ: Mapping[str, str] | None = None, config_file: Path | None = None
) -> Settings:
    """Resolve settings from the environment, then the YAML file, then defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}

    path = config_file or (Path(env["MANARA_CONFIG"]) if "MANARA_CONFIG" in env else None)
    if path is None and Path("manara.yaml").is_file():
        path = Path("manara.yaml")
    if path is not None:
        if not path.is_file():
            raise InvalidInputError(
                f"Config file {path} not found. Create it or unset MANARA_CONFIG."
            )
        for name, raw in _read_yaml(path).items():
            values[name] = _cast(name, raw, str(path))

    for name in _CASTS:
        variable = f"MANARA_{name.upper()}"
        if variable in env and env[variable] != "":
            values[name] = _cast(name, env[variable], f"environment variable {variable}")

    return Settings(**values)
