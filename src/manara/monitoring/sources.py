"""Load the reference and current samples of a drift report from their sources.

A source is named by a string:

- a path ending in ``.csv``, ``.parquet`` or ``.pq``;
- ``run:<RUN_ID>``: the stored copy of the training data set of a tracked
  run, kept as Parquet in the artifact store of the local workspace;
- ``predictions:<MODEL>[:<VERSION>]``: the prediction log that the inference
  server writes under ``<MANARA_HOME>/predictions/<model>/v<version>/``,
  every version when none is given.
"""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from manara.config import Settings, load_settings
from manara.errors import InvalidInputError, NotFoundError
from manara.tracking.api import TrackingAPI
from manara.tracking.entities import Run

logger = logging.getLogger(__name__)

RUN_PREFIX = "run:"
PREDICTIONS_PREFIX = "predictions:"
INPUT_PREFIX = "input."
TIME_COLUMN = "timestamp"
_FILE_SUFFIXES = (".csv", ".parquet", ".pq")


def load_frame(
    spec: str,
    *,
    settings: Settings | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """Load the sample named by ``spec`` (see the module docstring).

    ``since`` (inclusive) and ``until`` (exclusive) filter a prediction log by
    prediction time; they are rejected for other sources.
    """
    if not spec:
        raise InvalidInputError(
            "Empty data source. Give a CSV or Parquet path, run:<RUN_ID> "
            "or predictions:<MODEL>[:<VERSION>]."
        )
    if spec.startswith(PREDICTIONS_PREFIX):
        model, version = parse_predictions_spec(spec)
        home = (settings or load_settings()).predictions_dir
        log = read_prediction_log(home, model, version, since=since, until=until)
        return prediction_inputs(log)
    if since is not None or until is not None:
        raise InvalidInputError(
            f"A time window (since/until) applies to a prediction log only, not to {spec!r}. "
            "Filter the file first, or use predictions:<MODEL>[:<VERSION>]."
        )
    if spec.startswith(RUN_PREFIX):
        run_id = spec[len(RUN_PREFIX) :].strip()
        if not run_id:
            raise InvalidInputError(f"Missing run id in {spec!r}; write run:<RUN_ID>.")
        return load_run_dataset(run_id, settings or load_settings())
    return read_file(Path(spec))


def read_file(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, chosen by its extension."""
    suffix = path.suffix.lower()
    if suffix not in _FILE_SUFFIXES:
        raise InvalidInputError(
            f"Unsupported data file {str(path)!r}: the name must end in "
            f"{', '.join(_FILE_SUFFIXES)}. Other sources: run:<RUN_ID>, "
            "predictions:<MODEL>[:<VERSION>]."
        )
    if not path.is_file():
        raise NotFoundError(f"Data file {str(path)!r} not found.", path=str(path))
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except (ValueError, OSError, pa.ArrowException) as exc:
        raise InvalidInputError(f"Could not read data file {str(path)!r}: {exc}") from exc


class BlobReader(Protocol):
    def get_bytes(self, digest: str) -> bytes: ...


def training_dataset(
    run: Run, artifacts: BlobReader, tracking: TrackingAPI | None = None
) -> pd.DataFrame:
    """Read the stored copy of the run's training data set (the last one logged).

    A copy logged as an artifact of the run is read through ``tracking``,
    under the run's encryption context; any other copy from ``artifacts``.
    """
    stored = [d for d in run.inputs if d.context == "training" and d.artifact_digest]
    if not stored:
        raise InvalidInputError(
            f"Run {run.id} has no stored copy of its training data, so it cannot be a drift "
            "reference. Log the data set with a copy kept in the artifact store, or pass the "
            "training data as a CSV or Parquet file."
        )
    dataset = stored[-1]
    digest = dataset.artifact_digest or ""
    path = next((item.path for item in run.artifacts if item.digest == digest), None)
    if tracking is not None and path is not None:
        data = tracking.get_artifact(run.id, path)
    else:
        data = artifacts.get_bytes(digest)
    try:
        frame: pd.DataFrame = pq.read_table(io.BytesIO(data)).to_pandas()
    except pa.ArrowException as exc:
        raise InvalidInputError(
            f"The stored copy {digest} of data set {dataset.name!r} of run {run.id} is not a "
            f"Parquet file ({exc}). Log the data set again with a Parquet copy."
        ) from exc
    logger.info("loaded training data set=%s run=%s rows=%d", dataset.name, run.id, len(frame))
    return frame


def load_run_dataset(run_id: str, settings: Settings) -> pd.DataFrame:
    """Load the training data of a run tracked in the local workspace."""
    from manara.client import Client
    from manara.workspace import Workspace

    workspace = Workspace.open(settings)
    try:
        # url="" keeps the client local even when settings name a server, because
        # the stored copy is read from this workspace's artifact store.
        with Client(url="", workspace=workspace) as client:
            run = client.tracking.get_run(run_id)
            return training_dataset(run, workspace.artifacts, client.tracking)
    finally:
        workspace.close()


def parse_predictions_spec(spec: str) -> tuple[str, int | None]:
    """Split ``predictions:<MODEL>[:<VERSION>]`` into the model name and version."""
    body = spec[len(PREDICTIONS_PREFIX) :]
    model, _, version_text = body.partition(":")
    if not model or "/" in model or model in (".", ".."):
        raise InvalidInputError(
            f"Invalid model name in {spec!r}; write predictions:<MODEL>[:<VERSION>]."
        )
    if not version_text:
        return model, None
    digits = version_text[1:] if version_text.startswith("v") else version_text
    if not digits.isdigit():
        raise InvalidInputError(
            f"Invalid model version {version_text!r} in {spec!r}: expected a number such as 3."
        )
    return model, int(digits)


def parse_timestamp(text: str, name: str = "time") -> datetime:
    """Parse an ISO 8601 time with a timezone, such as ``2013-07-01T00:00:00Z``."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInputError(
            f"Invalid {name} {text!r}: expected an ISO 8601 time such as 2013-07-01T00:00:00Z."
        ) from exc
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(
            f"The {name} {text!r} has no timezone. Add one, such as Z for UTC "
            "(2013-07-01T00:00:00Z) or +04:00."
        )
    return value


def prediction_files(predictions_dir: Path, model: str, version: int | None) -> list[Path]:
    """List the finished part files of a model's prediction log, oldest first by name."""
    folders = (
        [predictions_dir / model / f"v{version}"]
        if version is not None
        else sorted(p for p in (predictions_dir / model).glob("v*") if p.is_dir())
    )
    files = [f for folder in folders for f in sorted(folder.glob("*.parquet"))]
    # Part files are written under a name starting with a dot, then renamed.
    return [f for f in files if not f.name.startswith(".")]


def read_prediction_log(
    predictions_dir: Path,
    model: str,
    version: int | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """Read a model's prediction log, all columns, from ``since`` (inclusive) to ``until``."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInputError(
                f"The {name} time {value.isoformat()} has no timezone. Pass an aware time, "
                "such as datetime(2013, 7, 1, tzinfo=UTC)."
            )

    label = f"{model}" + (f" version {version}" if version is not None else "")
    files = prediction_files(predictions_dir, model, version)
    if not files:
        raise NotFoundError(
            f"No prediction log for model {label} under {predictions_dir}. Serve the model "
            "and send requests first, or check MANARA_HOME and the model name.",
            model=model,
        )
    try:
        # Permissive promotion lets a column written as int64 in one file and
        # float64 in another be read as float64 from both.
        schema = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
        dataset = ds.dataset([str(f) for f in files], schema=schema, format="parquet")
        table = dataset.to_table(filter=_time_filter(since, until))
    except pa.ArrowException as exc:
        raise InvalidInputError(
            f"Could not read the prediction log of model {label} under {predictions_dir}: "
            f"{exc}. Check that its part files come from the Manara inference server."
        ) from exc

    if table.num_rows == 0:
        raise InvalidInputError(
            f"The prediction log of model {label} has no rows between "
            f"{since.isoformat() if since else 'the start'} and "
            f"{until.isoformat() if until else 'the end'}. Widen the time window."
        )
    logger.info("read prediction log model=%s files=%d rows=%d", label, len(files), table.num_rows)
    frame: pd.DataFrame = _drop_list_inputs(table).to_pandas()
    return frame


def _time_filter(since: datetime | None, until: datetime | None) -> ds.Expression | None:
    time_type = pa.timestamp("us", tz="UTC")
    condition = None
    if since is not None:
        condition = ds.field(TIME_COLUMN) >= pa.scalar(since.astimezone(UTC), type=time_type)
    if until is not None:
        before = ds.field(TIME_COLUMN) < pa.scalar(until.astimezone(UTC), type=time_type)
        condition = before if condition is None else condition & before
    return condition


def _drop_list_inputs(table: pa.Table) -> pa.Table:
    """Drop input columns with a vector per row, because the drift tests compare scalars."""
    dropped = [
        f.name for f in table.schema if f.name.startswith(INPUT_PREFIX) and pa.types.is_list(f.type)
    ]
    if dropped:
        logger.info("prediction log inputs left out of drift (vector values): %s", dropped)
    return table.drop_columns(dropped)


def prediction_inputs(log: pd.DataFrame) -> pd.DataFrame:
    """Keep the model inputs of a prediction log, without the ``input.`` prefix.

    The prediction time becomes the index, so that ``drift_by_period`` can
    split the rows by month without a column that the reference lacks.
    """
    columns = [c for c in log.columns if str(c).startswith(INPUT_PREFIX)]
    if not columns:
        raise InvalidInputError(
            "The prediction log has no input columns (named input.<name>) to compare."
        )
    inputs = log[columns].rename(columns=lambda c: str(c)[len(INPUT_PREFIX) :])
    if TIME_COLUMN in log.columns:
        inputs.index = pd.DatetimeIndex(log[TIME_COLUMN], name=TIME_COLUMN)
    return inputs
