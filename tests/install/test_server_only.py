"""The drop server installs only what it runs: requirements/server.txt, checked against
its hashes, then the project with no dependencies, as the Ansible role does. Every
server command must work there, and none of the other machines' packages is present."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FAST_KDF, short_tempdir

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "requirements"
# What the drop server must never carry: the workstation's file parsers and TOTP, and
# the transfer client.
NOT_ON_THE_SERVER = ("PIL", "pypdf", "pyotp", "requests", "socks")

pytestmark = pytest.mark.slow


def _pip(venv: Path, *args: str) -> None:
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", *args],
        check=True,
        capture_output=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def server_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the server's locked set and the project's wheel, nothing more."""
    venv = tmp_path_factory.mktemp("server") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    _pip(venv, "--require-hashes", "-r", str(LOCKS / "build.txt"))
    _pip(venv, "--require-hashes", "--no-build-isolation", "-r", str(LOCKS / "server.txt"))
    wheels = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    _pip(venv, "--no-deps", str(next(wheels.glob("securedrop_wm-*.whl"))))
    return venv


@pytest.fixture
def cli(server_venv: Path) -> Iterator[object]:
    """Run ``securedrop-wm`` from the server venv, in a scratch folder, never this checkout."""
    work = short_tempdir("sdwm-srv-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDWM_")}

    def run(*args: str, check: bool = True, stdin: str = "") -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(server_venv / "bin" / "securedrop-wm"), *args],
            cwd=work,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{args}: {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    run.work = work  # type: ignore[attr-defined]
    yield run
    subprocess.run(
        ["gpgconf", "--homedir", str(work / "data" / "gnupg"), "--kill", "all"],
        check=False,
        capture_output=True,
    )
    subprocess.run(["rm", "-rf", str(work)], check=False)


def test_the_server_set_has_none_of_the_other_machines_packages(server_venv: Path) -> None:
    probe = (
        "import importlib.util, sys;print([m for m in sys.argv[1:] if importlib.util.find_spec(m)])"
    )
    out = subprocess.run(
        [str(server_venv / "bin" / "python"), "-c", probe, *NOT_ON_THE_SERVER],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == "[]"
    frozen = subprocess.run(
        [str(server_venv / "bin" / "pip"), "freeze"], capture_output=True, text=True, check=True
    ).stdout.lower()
    assert "\nbabel==2.19" in "\n" + frozen
    for name in ("pillow", "pypdf", "pyotp", "requests", "pysocks"):
        assert f"\n{name}==" not in "\n" + frozen


def test_every_server_command_runs_without_the_workstation_extras(
    cli,
    responders,  # type: ignore[no-untyped-def]
) -> None:
    # Given a drop initialised from the server venv with the team and workstation keys
    cli(
        "init",
        "--data-dir",
        "data",
        "--responder-key",
        str(responders.team_public),
        "--workstation-key",
        str(responders.workstation_public),
        *FAST_KDF,
    )
    config = ("--config", "data/config.toml")
    # When an admin runs each server command, then each one works
    cli(*config, "list-sources")
    cli(*config, "transfer-token", "create", "laptop")
    assert "laptop" in cli(*config, "transfer-token", "list").stdout
    cli(*config, "transfer-client", "add", "laptop")
    assert "laptop" in cli(*config, "transfer-client", "list").stdout
    exported = cli(*config, "export", "--output", "bundle.tar")
    assert (cli.work / "bundle.tar").is_file(), exported.stdout  # type: ignore[attr-defined]
    cli(*config, "purge")
    cli(*config, "clean-orphans")
    cli(*config, "signing-key", "export", "--output", "server.asc")
    cli(*config, "team-key", "set", str(responders.team_public))
    cli(*config, "workstation-key", "set", str(responders.workstation_public))
    cli(*config, "responder-key", "add", str(responders.second_public))
    cli(*config, "responder-key", "remove", responders.second_fingerprint)
    assert "team\t" in cli(*config, "responder-key", "list").stdout
    cli(*config, "workstation-key", "show")
    for command in ("serve", "serve-transfer", "import-replies", "add-reply"):
        assert "Usage:" in cli(*config, command, "--help").stdout
    # And the workstation's commands say what is missing instead of a traceback
    refused = cli("workstation", "init", "--data-dir", "ws", check=False)
    assert refused.returncode == 1
    assert "requirements/workstation.txt" in refused.stderr
    assert "Traceback" not in refused.stderr
    refused = cli("demo", "up", "--data-dir", "demo", check=False)
    assert refused.returncode == 1
    assert "requirements/workstation.txt" in refused.stderr
    assert not (cli.work / "demo").exists()  # type: ignore[attr-defined]
    refused = cli("transfer", "status", check=False)
    assert refused.returncode == 1
    assert "requirements/transfer.txt" in refused.stderr
    assert "Traceback" not in refused.stderr
