"""Running a command in-process leaves the caller's umask as it was."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from click.testing import CliRunner

from securedrop_wm.workstation.cli import workstation
from tests.conftest import Responders, init_data_dir, short_tempdir


def test_init_writes_private_files_and_restores_the_umask(responders: Responders) -> None:
    before = os.umask(0o022)
    base = short_tempdir("sdwm-u-")
    data_dir = base / "data"
    try:
        init_data_dir(data_dir, responders)
        assert os.umask(0o022) == 0o022  # what the caller had, not the CLI's 0o077
        for path in (data_dir, data_dir / "config.toml", data_dir / "secrets.toml"):
            assert path.stat().st_mode & 0o077 == 0, path
        assert (data_dir / "db.sqlite").stat().st_mode & 0o077 == 0
    finally:
        os.umask(before)
        os.system(f"gpgconf --homedir '{data_dir / 'gnupg'}' --kill gpg-agent")  # noqa: S605
        shutil.rmtree(base, ignore_errors=True)


def test_workstation_commands_restore_the_umask(tmp_path: Path) -> None:
    before = os.umask(0o022)
    try:
        CliRunner().invoke(workstation, ["verify-audit", "--data-dir", str(tmp_path / "none")])
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(before)
