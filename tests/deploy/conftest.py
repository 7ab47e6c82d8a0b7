"""Fixtures of the deployment tests: throwaway keys, a wheel, booted containers, Ansible.

The tests need root, systemd-nspawn, debootstrap, tinyproxy, ssh and ansible-core on
this machine; ``scripts/test.sh`` installs them. Everything they start is ended by pid
(or by its own name, for the veth) when the fixtures close.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deploy_harness import CACHE_DIR, Container, booted, run

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO / "ansible"
TOOLS = ("systemd-nspawn", "debootstrap", "tinyproxy", "nsenter", "ssh", "ssh-keygen", "gpg")


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """End a process we started and everything in its session, by its group id."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(5)
            return
        except subprocess.TimeoutExpired:
            continue


def _ansible_playbook() -> str:
    beside_python = Path(sys.executable).parent / "ansible-playbook"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("ansible-playbook")
    if not found:
        pytest.fail("ansible-playbook not found: install ansible-core (pip install ansible-core)")
    return found


@pytest.fixture(scope="session")
def deploy_env() -> None:
    """Fail early, and clearly, where the machine cannot run a deployment test."""
    if os.geteuid() != 0:
        pytest.skip("the deployment tests boot containers: they need root")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing tools for the deployment tests: {', '.join(missing)}")


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
def wheel(deploy_env: None, deploy_dir: Path) -> Path:
    """The app's wheel, built once from this checkout as an admin would.

    ``SDWM_DEPLOY_WHEEL`` names a wheel to deploy instead (a release candidate).
    """
    given = os.environ.get("SDWM_DEPLOY_WHEEL")
    if given:
        return Path(given).resolve()
    out = deploy_dir / "dist"
    run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", out, REPO],
        env={**os.environ, "SOURCE_DATE_EPOCH": "315532800"},
    )
    (found,) = out.glob("securedrop_wm-*.whl")
    return found


@dataclass
class Deployment:
    """One container and the Ansible inventory that reaches it."""

    box: Container
    workdir: Path
    admin_dir: Path
    extra_vars: dict[str, object]
    logs: list[Path] = field(default_factory=list)
    recaps: list[dict[str, int]] = field(default_factory=list)

    def inventory(self) -> Path:
        """Write the inventory for this container (its leader pid changes per boot)."""
        path = self.workdir / "hosts.json"
        ssh_args = (
            f"-o ProxyCommand='{self.box.ssh_proxy_command()}' "
            "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
        )
        host = {
            "ansible_host": self.box.name,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.box.ssh_key),
            "ansible_ssh_common_args": ssh_args,
        }
        path.write_text(
            json.dumps({"all": {"children": {"drop_servers": {"hosts": {self.box.name: host}}}}})
        )
        return path

    def playbook(self, name: str, **extra: object) -> dict[str, int]:
        """Run ``ansible/NAME`` against the container; return its recap counters."""
        vars_file = self.workdir / f"vars-{len(self.logs)}.json"
        vars_file.write_text(json.dumps({**self.extra_vars, **extra}))
        log = self.workdir / f"ansible-{len(self.logs)}-{name.removesuffix('.yml')}.log"
        self.logs.append(log)
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCAL_TEMP": str(self.workdir / "ansible-tmp"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.workdir / "cp"),
            "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=300s",
        }
        started = time.monotonic()
        args = [_ansible_playbook(), "-i", str(self.inventory()), "-e", f"@{vars_file}",
                str(ANSIBLE_DIR / name)]
        with log.open("w") as out:
            # A session of its own, so that ansible's workers and ssh end with it.
            proc = subprocess.Popen(  # noqa: S603
                args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ANSIBLE_DIR,
                start_new_session=True,
            )
            try:
                proc.wait(timeout=1200)
            finally:
                if proc.poll() is None:
                    _end_group(proc)
        text = log.read_text()
        recap = re.search(rf"^{re.escape(self.box.name)}\s+:\s+(.*)$", text, re.M)
        if proc.returncode != 0 or not recap:
            pytest.fail(f"{name} failed (exit {proc.returncode}); log {log}:\n{text[-6000:]}")
        counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", recap.group(1))}
        counts["seconds"] = round(time.monotonic() - started)
        self.recaps.append(counts)
        return counts

    def close_ssh(self) -> None:
        """End ssh's persistent connections to this container, by their control sockets."""
        for sock in (self.workdir / "cp").glob("*"):
            run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], check=False, timeout=10)


@pytest.fixture(scope="session")
def deployment_factory(
    deploy_dir: Path, ssh_key: Path, pgp_keys: Keys, wheel: Path
) -> Iterator[object]:
    """Boot containers on demand; each one is torn down at the end of the session."""
    stacks: list[tuple[Deployment, object]] = []
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
            manager.__exit__(None, None, None)  # type: ignore[attr-defined]


def pytest_report_header() -> list[str]:
    return [f"deploy cache: {CACHE_DIR}"]
