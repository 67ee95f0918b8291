from pathlib import Path

import pytest

from manara.config import Secret, Settings, load_settings
from manara.errors import InvalidInputError


def test_defaults_derive_from_home(tmp_path: Path) -> None:
    settings = load_settings(environ={"MANARA_HOME": str(tmp_path / "ws")})
    assert settings.home == tmp_path / "ws"
    assert settings.database_url == f"sqlite:///{(tmp_path / 'ws').resolve() / 'manara.db'}"
    assert settings.artifact_root == str((tmp_path / "ws").resolve() / "artifacts")


def test_environment_overrides_yaml(tmp_path: Path) -> None:
    config = tmp_path / "manara.yaml"
    config.write_text("log_level: DEBUG\nprediction_log_batch_size: 64\n")
    settings = load_settings(
        environ={"MANARA_CONFIG": str(config), "MANARA_LOG_LEVEL": "ERROR"},
    )
    assert settings.log_level == "ERROR"
    assert settings.prediction_log_batch_size == 64


def test_secret_masked_in_repr() -> None:
    settings = load_settings(environ={"MANARA_API_KEY": "mnr_abc_topsecret"})
    assert "topsecret" not in repr(settings)
    assert isinstance(settings.api_key, Secret)
    assert settings.api_key.get() == "mnr_abc_topsecret"


def test_invalid_cast_names_setting() -> None:
    with pytest.raises(InvalidInputError, match="prediction_log_batch_size"):
        load_settings(environ={"MANARA_PREDICTION_LOG_BATCH_SIZE": "many"})


def test_unknown_yaml_key_rejected(tmp_path: Path) -> None:
    config = tmp_path / "manara.yaml"
    config.write_text("databse_url: sqlite:///x.db\n")
    with pytest.raises(InvalidInputError, match="databse_url"):
        load_settings(environ={"MANARA_CONFIG": str(config)})


def test_missing_config_file_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not found"):
        load_settings(environ={"MANARA_CONFIG": str(tmp_path / "absent.yaml")})


def test_with_overrides_moves_derived_paths(tmp_path: Path) -> None:
    moved = Settings(home=tmp_path / "a").with_overrides(home=tmp_path / "b")
    assert str(tmp_path / "b") in moved.database_url
    assert str(tmp_path / "b") in moved.artifact_root
