"""What ``securedrop-wm workstation init`` tells a person to do next works as told."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

from click.testing import CliRunner

from securedrop_wm.cli import main as cli
from securedrop_wm.drop import Drop
from securedrop_wm.workstation.cli import workstation as ws_cli
from tests.conftest import Responders, short_tempdir
from tests.workstation.fixtures import ADMIN, ADMIN_PASSWORD, export_secret_key


def test_without_setup_it_names_the_serve_command_and_the_page(tmp_path: Path) -> None:
    base = short_tempdir("sdwm-wsi-")
    try:
        result = CliRunner().invoke(ws_cli, ["init", "--data-dir", str(base / "ws")])
        assert result.exit_code == 0, result.output
        serve = re.search(r"^  (securedrop-wm workstation serve.*)$", result.output, re.M)
        assert serve, result.output
        assert shlex.split(serve.group(1))[3:] == ["--config", str(base / "ws" / "config.toml")]
        assert "http://127.0.0.1:8081/setup" in result.output
        assert re.search(r"^  setup token: \S{16,}$", result.output, re.M)
        # The command as printed is one serve accepts
        help_text = CliRunner().invoke(ws_cli, [*shlex.split(serve.group(1))[2:], "--help"])
        assert help_text.exit_code == 0 and "--config" in help_text.output
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_scripted_setup_writes_the_public_keys_the_server_commands_take(
    drop: Drop, responders: Responders
) -> None:
    base = short_tempdir("sdwm-wsi-")
    try:
        keys = base / "keys"
        keys.mkdir()
        team = keys / "team-secret.asc"
        team.write_text(export_secret_key(responders, responders.team_fingerprint))
        server = keys / "server.asc"
        server.write_text(drop.gpg.export_public_key(drop.settings.signing_fingerprint))
        data = base / "ws"
        result = CliRunner().invoke(
            ws_cli,
            ["init", "--data-dir", str(data), "--team-key", str(team)]
            + ["--server-key", str(server), "--admin", ADMIN]
            + ["--server-fingerprint", drop.settings.signing_fingerprint],
            env={"SDWM_WS_ADMIN_PASSWORD": ADMIN_PASSWORD},
        )
        assert result.exit_code == 0, result.output
        assert f"{data / 'team.asc'}, {data / 'workstation.asc'}" in result.output
        commands = re.findall(
            r"^  (securedrop-wm (?:team|workstation)-key .+)$", result.output, re.M
        )
        assert commands == [
            "securedrop-wm team-key set team.asc",
            "securedrop-wm workstation-key set workstation.asc",
        ]
        # Carried to the server and run there as printed: the team key is the one given
        # (nothing changes), the workstation key is the new one made here
        config = str(drop.settings.data_dir / "config.toml")
        outputs = []
        for command in commands:
            args = shlex.split(command)[1:]
            args[-1] = str(data / args[-1])
            done = CliRunner().invoke(cli, ["--config", config, *args])
            assert done.exit_code == 0, done.output
            outputs.append(done.output)
        assert "is the team key already; nothing changed" in outputs[0]
        assert "is the workstation key now" in outputs[1]
    finally:
        shutil.rmtree(base, ignore_errors=True)
