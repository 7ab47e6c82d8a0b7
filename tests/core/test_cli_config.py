"""``securedrop-wm --config PATH workstation ...`` uses PATH; the subcommand's own
``--config`` still wins."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from securedrop_wm.cli import main as cli
from securedrop_wm.drop import Drop
from tests.conftest import Responders
from tests.workstation.fixtures import init_workstation

NO_ENV = {"SDWM_WS_CONFIG": None, "SDWM_CONFIG": None}


@pytest.fixture
def ws_config(tmp_path: Path, responders: Responders, drop: Drop) -> Path:
    config, _ = init_workstation(tmp_path, responders, drop)
    return config


def test_the_top_level_config_reaches_workstation_commands(
    ws_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a folder with no workstation/config.toml of its own
    monkeypatch.chdir(tmp_path)
    # When the workstation's config is named before the subcommand
    result = CliRunner().invoke(
        cli, ["--config", str(ws_config), "workstation", "verify-audit"], env=NO_ENV
    )
    # Then the command runs on that workstation
    assert result.exit_code == 0, result.output
    assert "audit log intact" in result.output
    result = CliRunner().invoke(
        cli, ["--config", str(ws_config), "workstation", "purge", "--dry-run"], env=NO_ENV
    )
    assert result.exit_code == 0, result.output


def test_serve_uses_the_top_level_config(tmp_path: Path) -> None:
    missing = tmp_path / "elsewhere" / "config.toml"
    result = CliRunner().invoke(cli, ["--config", str(missing), "workstation", "serve"], env=NO_ENV)
    assert result.exit_code == 1
    assert f"workstation config file not found: {missing}" in result.output


def test_the_subcommands_own_config_wins(ws_config: Path, tmp_path: Path) -> None:
    missing = tmp_path / "elsewhere" / "config.toml"
    own_wins = ["--config", str(missing), "workstation", "verify-audit", "--config", str(ws_config)]
    result = CliRunner().invoke(cli, own_wins, env=NO_ENV)
    assert result.exit_code == 0, result.output
    assert "audit log intact" in result.output
    refused = ["--config", str(ws_config), "workstation", "verify-audit", "--config", str(missing)]
    result = CliRunner().invoke(cli, refused, env=NO_ENV)
    assert result.exit_code == 1
    assert f"workstation config file not found: {missing}" in result.output


def test_the_top_level_config_beats_the_workstation_environment(
    ws_config: Path, tmp_path: Path
) -> None:
    env = {**NO_ENV, "SDWM_WS_CONFIG": str(tmp_path / "elsewhere" / "config.toml")}
    result = CliRunner().invoke(
        cli, ["--config", str(ws_config), "workstation", "verify-audit"], env=env
    )
    assert result.exit_code == 0, result.output
