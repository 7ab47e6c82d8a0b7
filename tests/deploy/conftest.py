"""Fixtures of the deployment tests: throwaway keys, a wheel, booted containers, Ansible.

The tests need root, systemd-nspawn, debootstrap, tinyproxy, ssh and ansible-core on
this machine; ``scripts/test.sh`` installs them. Everything they start is ended by pid
(or by its own name, for the veth) when the fixtures close.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.deploy_harness import (
    CACHE_DIR,
    REPO,
    Container,
    Deployment,
    booted,
    build_wheel,
    run,
)

TOOLS = ("systemd-nspawn", "debootstrap", "tinyproxy", "nsenter", "ssh", "ssh-keygen", "gpg")


@pytest.fixture(scope="session")
def deploy_env() -> Iterator[None]:
    """Fail early, and clearly, where the machine cannot run a deployment test.

    Everything the harness starts (ssh, the container's sshd, ansible) inherits this
    process's umask; an admin's shell has 022, and so do these tests, whatever an
    earlier test left behind.
    """
    if os.geteuid() != 0:
        pytest.skip("the deployment tests boot containers: they need root")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing tools for the deployment tests: {', '.join(missing)}")
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture(scope="session")
def deploy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("deploy")


@pytest.fixture(scope="session")
def ssh_key(deploy_env: None, deploy_dir: Path) -> Path:
    key = deploy_dir / "id_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sdwm-deploy-test", "-f", key])
    return key


@dataclass(frozen=True)
class Keys:
    """Throwaway OpenPGP keys standing in for the responders' and the workstation's."""

    team: Path
    workstation: Path


@pytest.fixture(scope="session")
def pgp_keys(deploy_env: None, deploy_dir: Path) -> Iterator[Keys]:
    home = deploy_dir / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}

    def gpg(*args: str) -> str:
        return run(["gpg", "--batch", "--passphrase", "", *args], env=env).stdout

    try:
        gpg("--quick-gen-key", "Test team <team@example.org>", "futuredefault", "default", "never")
        gpg("--quick-gen-key", "Test workstation <ws@example.org>", "ed25519", "sign", "never")
        team, workstation = deploy_dir / "team.asc", deploy_dir / "workstation.asc"
        team.write_text(gpg("--armor", "--export", "team@example.org"))
        workstation.write_text(gpg("--armor", "--export", "ws@example.org"))
        yield Keys(team=team, workstation=workstation)
    finally:
        run(["gpgconf", "--kill", "all"], env=env, check=False)


@pytest.fixture(scope="session")
def app_source() -> Path:
    """The checkout to deploy: this one, or the one named by ``SDWM_DEPLOY_SOURCE``."""
    return Path(os.environ.get("SDWM_DEPLOY_SOURCE", REPO)).resolve()


@pytest.fixture(scope="session")
def wheel(deploy_env: None, deploy_dir: Path, app_source: Path) -> Path:
    """The app's wheel, built once from the checkout."""
    return build_wheel(app_source, deploy_dir / "dist")


@pytest.fixture(scope="session")
def deployment_factory(
    deploy_dir: Path, ssh_key: Path, pgp_keys: Keys, wheel: Path
) -> Iterator[Callable[[str, int], Deployment]]:
    """Boot containers on demand; each one is torn down at the end of the session."""
    stacks: list[tuple[Deployment, contextlib.AbstractContextManager[Container]]] = []
    backup_passphrase = "correct horse battery staple " + os.urandom(8).hex()

    def make(name: str, subnet: int) -> Deployment:
        workdir = deploy_dir / name
        workdir.mkdir()
        manager = booted(name, subnet, workdir, ssh_key)
        box = manager.__enter__()
        deployment = Deployment(
            box=box,
            workdir=workdir,
            admin_dir=workdir / "admin",
            extra_vars={
                "sdwm_common_admin_dir": str(workdir / "admin"),
                "sdwm_app_wheel": str(wheel),
                "sdwm_app_responder_keys": [str(pgp_keys.team)],
                "sdwm_app_workstation_key": str(pgp_keys.workstation),
                "sdwm_backup_passphrase": backup_passphrase,
                "sdwm_ssh_admin_keys": [Path(f"{ssh_key}.pub").read_text().strip()],
                # Packages come through the harness's proxy on the host end of the veth.
                "sdwm_firewall_update_proxy": f"{box.host_ip}:8888",
            },
        )
        stacks.append((deployment, manager))
        return deployment

    try:
        yield make
    finally:
        for deployment, manager in reversed(stacks):
            deployment.close_ssh()
            manager.__exit__(None, None, None)


def pytest_report_header() -> list[str]:
    return [f"deploy cache: {CACHE_DIR}"]
