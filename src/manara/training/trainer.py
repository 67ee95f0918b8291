"""Run a training spec: check the data, fit a pipeline, track the run, register the model.

Every check on the data and the spec runs before the experiment or the run
is created, so a bad spec leaves nothing behind. Once the run exists, a
failure marks it FAILED (KILLED on Ctrl-C) and the error is re-raised.

The pipeline is a scikit-learn ``Pipeline``: a ``ColumnTransformer`` with
``SimpleImputer(strategy="median")`` on numeric columns and
``OneHotEncoder(handle_unknown="ignore")`` on categorical ones, then the
estimator. Categorical values are cast to ``str`` before fitting, with
missing values as the category ``"missing"``; callers of the registered
model send the same strings.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from manara.context import Context
from manara.errors import InvalidInputError
from manara.registry.api import RegistryAPI
from manara.registry.entities import ModelVersion
from manara.tracking.api import TrackingAPI
from manara.tracking.datasets import dataset_input
from manara.tracking.entities import Metric
from manara.tracking.run_context import get_or_create_experiment
from manara.training.data import SplitData, check_columns, check_target, read_frame, split_frame
from manara.training.evaluation import evaluate
from manara.training.spec import TrainingSpec

logger = logging.getLogger(__name__)

STAGES = ("load data", "split", "fit", "evaluate", "log", "register")
Progress = Callable[[str], None]
"""Called with each stage name of ``STAGES`` as that stage begins."""

_SAMPLE_ROWS = 200
MISSING_CATEGORY = "missing"


@dataclass(frozen=True)
class TrainingResult:
    run_id: str
    experiment_id: str
    metrics: dict[str, float]
    skipped_metrics: dict[str, str] = field(default_factory=dict)
    model_version: ModelVersion | None = None


def estimator_class(spec: TrainingSpec) -> type[Any]:
    """Import the allow-listed estimator class; if it is missing, name the extra to install."""
    entry = spec.estimator.entry
    module_name, _, class_name = entry.class_path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = (
            f"pip install 'manara[{entry.extra}]'" if entry.extra else f"pip install {module_name}"
        )
        raise InvalidInputError(
            f"The estimator {spec.estimator.type!r} needs the {module_name} package, which is "
            f"not installed. Install it with: {extra}."
        ) from exc
    cls: type[Any] = getattr(module, class_name)
    return cls


def build_pipeline(spec: TrainingSpec, cls: type[Any]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    transformers: list[tuple[str, Any, list[str]]] = []
    if spec.features.numeric:
        transformers.append(("numeric", SimpleImputer(strategy="median"), spec.features.numeric))
    if spec.features.categorical:
        encoder = OneHotEncoder(handle_unknown="ignore")
        transformers.append(("categorical", encoder, spec.features.categorical))
    try:
        estimator = cls(**spec.estimator.params)
    except TypeError as exc:
        raise InvalidInputError(
            f"Invalid estimator.params for {spec.estimator.type}: {exc}."
        ) from exc
    return Pipeline([("prepare", ColumnTransformer(transformers)), ("model", estimator)])


def _features(frame: pd.DataFrame, spec: TrainingSpec) -> pd.DataFrame:
    features = frame[spec.features.columns].copy()
    for column in spec.features.categorical:
        # Plain str objects, with missing values as the category "missing", whatever
        # dtype the file gave the column (numbers, pandas strings, categoricals).
        values = features[column].astype(object)
        features[column] = values.where(values.notna(), MISSING_CATEGORY).map(str).astype(object)
    return features


@dataclass
class _Services:
    tracking: TrackingAPI
    registry: RegistryAPI


def _services(target: Any) -> _Services:
    if isinstance(target, Context):
        from manara.registry.service import RegistryService
        from manara.tracking.service import TrackingService

        return _Services(TrackingService(target), RegistryService(target))
    return _Services(target.tracking, target.registry)


def prepare(spec: TrainingSpec, progress: Progress) -> tuple[SplitData, type[Any]]:
    """Every check that must pass before anything is created."""
    if spec.registration is not None:
        from manara.registry.service import check_alias, check_model_name

        check_model_name(spec.registration.model)
        if spec.registration.alias is not None:
            check_alias(spec.registration.alias)
    progress("load data")
    frame = read_frame(spec.data.path)
    check_columns(frame, spec)
    progress("split")
    data = split_frame(frame, spec)
    check_target(data, spec)
    return data, estimator_class(spec)


def train(target: Any, spec: TrainingSpec, progress: Progress | None = None) -> TrainingResult:
    """Train ``spec`` on a ``Context`` or an SDK ``Client`` (local or remote)."""
    report = progress or (lambda stage: None)
    data, cls = prepare(spec, report)
    pipeline = build_pipeline(spec, cls)
    services = _services(target)
    experiment = get_or_create_experiment(services.tracking, spec.experiment)
    run = services.tracking.create_run(experiment.id, name=spec.name)
    logger.info("training started run=%s spec=%s", run.id, spec.name)
    try:
        result = _run(services, spec, data, pipeline, run.id, report)
    except KeyboardInterrupt:
        services.tracking.set_run_status(run.id, "KILLED")
        raise
    except BaseException:
        logger.exception("training failed run=%s", run.id)
        services.tracking.set_run_status(run.id, "FAILED")
        raise
    logger.info("training finished run=%s metrics=%s", run.id, result.metrics)
    return TrainingResult(
        run_id=run.id,
        experiment_id=experiment.id,
        metrics=result.metrics,
        skipped_metrics=result.skipped_metrics,
        model_version=result.model_version,
    )


def _run(
    services: _Services,
    spec: TrainingSpec,
    data: SplitData,
    pipeline: Any,
    run_id: str,
    progress: Progress,
) -> TrainingResult:
    tracking = services.tracking
    train_x, train_y = _features(data.train, spec), data.train[spec.target].to_numpy()
    test_x, test_y = _features(data.test, spec), data.test[spec.target].to_numpy()

    progress("fit")
    pipeline.fit(train_x, train_y)
    progress("evaluate")
    values, skipped = evaluate(pipeline, test_x, test_y, spec.metric_names, spec.task)

    progress("log")
    tracking.log_params(run_id, _params(spec, data))
    source = str(spec.data.path)
    tracking.log_input(run_id, dataset_input(data.train, "train", source, "training"))
    tracking.log_input(run_id, dataset_input(data.test, "test", source, "evaluation"))
    tracking.log_metrics(run_id, [Metric(name, value) for name, value in values.items()])
    services.registry.log_model(run_id, pipeline, train_x.head(_SAMPLE_ROWS))

    version = None
    if spec.registration is not None:
        progress("register")
        version = services.registry.create_version(spec.registration.model, run_id)
        if spec.registration.alias:
            version = services.registry.set_alias(
                spec.registration.model, spec.registration.alias, version.version
            )
    tracking.set_run_status(run_id, "FINISHED")
    return TrainingResult(run_id, "", values, skipped, version)


def _params(spec: TrainingSpec, data: SplitData) -> dict[str, Any]:
    params: dict[str, Any] = {
        "estimator": spec.estimator.entry.class_path,
        "target": spec.target,
        "features.numeric": ",".join(spec.features.numeric),
        "features.categorical": ",".join(spec.features.categorical),
        "rows.train": len(data.train),
        "rows.test": len(data.test),
    }
    if spec.split.by_time:
        params["split.train_until"] = spec.split.train_until
        params["split.test_from"] = spec.split.test_from
    else:
        params["split.test_fraction"] = spec.split.test_fraction
        params["split.seed"] = spec.split.seed
    params.update({f"model.{key}": value for key, value in spec.estimator.params.items()})
    if spec.task == "classification":
        params["classes"] = int(data.train[spec.target].nunique())
    return params
