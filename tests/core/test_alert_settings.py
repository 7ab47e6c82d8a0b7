"""The settings of what the source pages promise: a true/false setting takes only true or
false, from the file or the environment, and a bad one stops start-up naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from securedrop_wm.errors import SettingsError
from securedrop_wm.settings import load_settings


def _config(data_dir: Path, extra: str) -> Path:
    path = data_dir / "config.toml"
    path.write_text(extra + "\n" + path.read_text())  # top-level keys come before tables
    return path


def test_defaults_promise_no_alert_and_two_days(data_dir: Path) -> None:
    settings = load_settings(data_dir / "config.toml", environ={})
    assert settings.alerts_configured is False
    assert settings.usual_response_hours == 48


def test_file_and_environment_set_them(data_dir: Path) -> None:
    path = _config(data_dir, "alerts_configured = true\nusual_response_hours = 12")
    settings = load_settings(path, environ={})
    assert settings.alerts_configured is True and settings.usual_response_hours == 12
    overridden = load_settings(path, environ={"SDWM_ALERTS_CONFIGURED": "false"})
    assert overridden.alerts_configured is False


@pytest.mark.parametrize("value", ['"yes"', '"true"', "1", "0"])
def test_a_non_bool_is_refused_by_name(data_dir: Path, value: str) -> None:
    with pytest.raises(SettingsError, match="'alerts_configured' must be true or false"):
        load_settings(_config(data_dir, f"alerts_configured = {value}"), environ={})


def test_a_non_bool_variable_is_refused_by_name(data_dir: Path) -> None:
    with pytest.raises(SettingsError, match="'alerts_configured' must be true or false"):
        load_settings(data_dir / "config.toml", environ={"SDWM_ALERTS_CONFIGURED": "yes"})


@pytest.mark.parametrize("value", ["0", "721", "true", '"48"'])
def test_usual_response_hours_out_of_range_is_refused_by_name(data_dir: Path, value: str) -> None:
    with pytest.raises(
        SettingsError, match=r"'usual_response_hours' must be an integer in \[1, 720\]"
    ):
        load_settings(_config(data_dir, f"usual_response_hours = {value}"), environ={})
