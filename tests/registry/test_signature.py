"""Signature inference from a frame and enforcement on prediction inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from manara.errors import SignatureError
from manara.registry.signature import SignatureValidator, infer_signature


def sample() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "count": np.array([1, 2], dtype=np.int32),
            "ratio": np.array([0.5, 1.5]),
            "small": np.array([0.5, 1.5], dtype=np.float32),
            "flag": [True, False],
            "city": ["Abu Dhabi", "Dubai"],
            "tier": pd.Categorical(["a", "b"]),
        }
    )


def test_input_datatypes() -> None:
    signature = infer_signature(sample(), classes=[0, 1])
    datatypes = {spec.name: spec.datatype for spec in signature.inputs}
    assert datatypes == {
        "count": "INT64",
        "ratio": "FP64",
        "small": "FP32",
        "flag": "BOOL",
        "city": "BYTES",
        "tier": "BYTES",
    }
    assert all(spec.shape == (-1,) for spec in signature.inputs)


def test_classifier_and_regressor_outputs() -> None:
    classifier = infer_signature(sample(), classes=["no", "yes", "maybe"])
    assert [(s.name, s.datatype, s.shape) for s in classifier.outputs] == [
        ("label", "BYTES", (-1,)),
        ("probabilities", "FP64", (-1, 3)),
    ]
    regressor = infer_signature(sample(), classes=None)
    assert [(s.name, s.datatype) for s in regressor.outputs] == [("prediction", "FP64")]


@pytest.fixture
def validator() -> SignatureValidator:
    return SignatureValidator(infer_signature(sample(), classes=[0, 1]))


@pytest.fixture
def good(validator: SignatureValidator) -> dict[str, np.ndarray]:
    return validator.frame_to_inputs(sample())


def test_valid_inputs(validator: SignatureValidator, good: dict[str, np.ndarray]) -> None:
    assert validator.validate(good) == 2


def test_missing_input(validator: SignatureValidator, good: dict[str, np.ndarray]) -> None:
    del good["ratio"]
    with pytest.raises(SignatureError, match="Missing input 'ratio'"):
        validator.validate(good)


def test_unexpected_input(validator: SignatureValidator, good: dict[str, np.ndarray]) -> None:
    good["extra"] = np.array([1, 2])
    with pytest.raises(SignatureError, match="Unexpected input 'extra'"):
        validator.validate(good)


def test_wrong_datatype(validator: SignatureValidator, good: dict[str, np.ndarray]) -> None:
    good["count"] = np.array(["one", "two"], dtype=object)
    with pytest.raises(SignatureError) as caught:
        validator.validate(good)
    assert "'count'" in caught.value.message
    assert "INT64" in caught.value.message


def test_wrong_shape(validator: SignatureValidator, good: dict[str, np.ndarray]) -> None:
    good["ratio"] = np.ones((2, 3))
    with pytest.raises(SignatureError) as caught:
        validator.validate(good)
    assert "'ratio'" in caught.value.message
    assert "[2, 3]" in caught.value.message


def test_length_mismatch(validator: SignatureValidator, good: dict[str, np.ndarray]) -> None:
    good["flag"] = np.array([True, False, True])
    with pytest.raises(SignatureError, match="'flag' has 3 rows"):
        validator.validate(good)


def test_column_input_accepted(validator: SignatureValidator, good: dict[str, np.ndarray]) -> None:
    good["ratio"] = good["ratio"].reshape(-1, 1)
    assert validator.validate(good) == 2
