"""Settings: a bad setting stops start-up with a message that names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from securedrop_wm.errors import SettingsError
from securedrop_wm.settings import load_settings


def _config(data_dir: Path, extra: str) -> Path:
    path = data_dir / "config.toml"
    path.write_text(extra + "\n" + path.read_text())  # top-level keys come before tables
    return path


def test_env_overrides_file(data_dir: Path) -> None:
    settings = load_settings(data_dir / "config.toml", environ={"SDWM_SESSION_MINUTES": "5"})
    assert settings.session_minutes == 5


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("codename_words = 3", "codename_words"),
        ('max_field_bytes = "big"', "max_field_bytes"),
        ('languages = ["en"]\ndefault_language = "fr"', "default_language"),
    ],
)
def test_bad_setting_is_named(data_dir: Path, extra: str, named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(_config(data_dir, extra), environ={})


def test_bad_fingerprint_and_secrets_are_named(data_dir: Path) -> None:
    with pytest.raises(SettingsError, match="session_minutes"):
        load_settings(data_dir / "config.toml", environ={"SDWM_SESSION_MINUTES": "0"})
    secrets = data_dir / "secrets.toml"
    lines = secrets.read_text().splitlines()
    secrets.write_text(
        "\n".join('kdf_salt = "00"' if x.startswith("kdf_salt") else x for x in lines)
    )
    with pytest.raises(SettingsError, match="kdf_salt"):
        load_settings(data_dir / "config.toml", environ={})


def test_missing_config_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="securedrop-wm init"):
        load_settings(tmp_path / "config.toml", environ={})
