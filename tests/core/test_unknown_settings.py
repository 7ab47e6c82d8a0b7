"""A misspelt setting stops start-up, naming it and the nearest valid one, on the drop
server and the workstation (the transfer machine: tests/transfer/test_transfer_client.py)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from click.testing import CliRunner

from securedrop_wm.cli import main as cli
from securedrop_wm.config import RESERVED_ENV
from securedrop_wm.errors import SettingsError
from securedrop_wm.settings import load_settings
from securedrop_wm.workstation.settings import load_workstation_settings


def _prepend(path: Path, text: str) -> Path:
    path.write_text(text + "\n" + path.read_text())  # top-level keys come before tables
    return path


@pytest.fixture
def ws_config(tmp_path: Path) -> Path:
    """A workstation config as `workstation init` leaves it, before first-run setup."""
    config = tmp_path / "config.toml"
    config.write_text("retention_days = 90\nsession_minutes = 20\n")
    (tmp_path / "secrets.toml").write_text(f'session_key = "{secrets.token_hex(32)}"\n')
    return config


@pytest.mark.parametrize(
    ("text", "named", "suggested"),
    [
        ("session_minuts = 5", "'session_minuts'", "'session_minutes'"),
        ("[kdf]\ntime_cots = 2", "'kdf.time_cots'", "'kdf.time_cost'"),
        ("[kfd]\ntime_cost = 2", "'kfd'", "'kdf'"),
    ],
)
def test_server_refuses_an_unknown_key(
    data_dir: Path, text: str, named: str, suggested: str
) -> None:
    config = data_dir / "config.toml"
    if text.startswith("[kdf]"):  # the test config has a [kdf] table already
        config.write_text(config.read_text().replace("[kdf]", text))
    elif text.startswith("["):
        config.write_text(config.read_text() + "\n" + text + "\n")
    else:
        _prepend(config, text)
    with pytest.raises(SettingsError, match=f"unknown setting {named}") as e:
        load_settings(config, environ={})
    assert f"did you mean {suggested}?" in str(e.value)
    assert str(config) in str(e.value)


def test_server_refuses_an_unknown_variable(data_dir: Path) -> None:
    config = data_dir / "config.toml"
    with pytest.raises(SettingsError, match="SDWM_SESION_MINUTES") as e:
        load_settings(config, environ={"SDWM_SESION_MINUTES": "5"})
    assert "did you mean SDWM_SESSION_MINUTES?" in str(e.value)
    # A table given in the environment is checked too.
    with pytest.raises(SettingsError, match="did you mean 'kdf.memory_kib'"):
        load_settings(config, environ={"SDWM_KDF": "{memory_kb = 8}"})


def test_reserved_and_other_machines_variables_pass(data_dir: Path) -> None:
    # Given what scripts/run-local.sh, the CI and the tests set, and the other
    # machines' settings
    environ = {name: "x" for name in RESERVED_ENV} | {
        "SDWM_VENV": str(data_dir / "venv"),
        "SDWM_DATA": str(data_dir),
        "SDWM_WS_RETENTION_DAYS": "7",
        "SDWM_TRANSFER_ONION": "x",
        "SDWM_SESSION_MINUTES": "5",
    }
    # Then the server loads its settings, and takes only its own
    assert load_settings(data_dir / "config.toml", environ=environ).session_minutes == 5


def test_workstation_refuses_an_unknown_key(ws_config: Path) -> None:
    _prepend(ws_config, "retention_dyas = 30")
    with pytest.raises(SettingsError, match="unknown setting 'retention_dyas'") as e:
        load_workstation_settings(ws_config, environ={})
    assert "did you mean 'retention_days'?" in str(e.value)


def test_workstation_refuses_an_unknown_deadline(ws_config: Path) -> None:
    ws_config.write_text(ws_config.read_text() + "\n[deadline_hours]\nurgnet = 12\n")
    with pytest.raises(SettingsError, match="'deadline_hours.urgnet'") as e:
        load_workstation_settings(ws_config, environ={})
    assert "did you mean 'deadline_hours.urgent'?" in str(e.value)


def test_workstation_refuses_an_unknown_variable(ws_config: Path) -> None:
    with pytest.raises(SettingsError, match="SDWM_WS_SESION_MINUTES") as e:
        load_workstation_settings(ws_config, environ={"SDWM_WS_SESION_MINUTES": "5"})
    assert "did you mean SDWM_WS_SESSION_MINUTES?" in str(e.value)


def test_workstation_takes_reserved_and_server_variables(ws_config: Path) -> None:
    environ = {name: "x" for name in RESERVED_ENV} | {
        "SDWM_SESSION_MINUTES": "5",  # the server's
        "SDWM_WS_SESSION_MINUTES": "7",
    }
    assert load_workstation_settings(ws_config, environ=environ).session_minutes == 7


def test_check_config_refuses_a_misspelt_key(data_dir: Path, tmp_path: Path) -> None:
    # Given a config as Ansible renders it, in another folder than secrets.toml
    config = data_dir / "config.toml"
    assert CliRunner().invoke(cli, ["--config", str(config), "check-config"]).exit_code == 0
    rendered = tmp_path / "rendered.toml"
    rendered.write_text("max_reprot_bytes = 1024\n" + config.read_text())
    # When it is checked as the template task's validate does
    result = CliRunner().invoke(
        cli,
        ["--config", str(rendered), "check-config", "--secrets", str(data_dir / "secrets.toml")],
    )
    # Then it is refused, naming the key and the one meant
    assert result.exit_code == 1
    assert "unknown setting 'max_reprot_bytes'" in result.output
    assert "did you mean 'max_report_bytes'?" in result.output
