"""Apply the Ansible playbooks for real to a booted Debian 12 container, and check it.

Given a fresh Debian 12 root file system booted with systemd as PID 1,
when site.yml is applied twice,
then the second run changes nothing, and the server is what an admin was promised:
tor and both apps running, v3 onion addresses, client authorization on the transfer
onion, the source UI answering through its socket, nothing answering from outside,
no log of requests, tight modes. A backup restored into a second fresh container
gives the same onion addresses and the same submissions.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import shlex
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy.deploy_harness import ADMIN_USER, Deployment, HarnessError, build_wheel

# Under a busy CI machine a first deployment can take minutes: the module's setup
# (two site.yml runs) and the restore test get a generous bound of their own.
pytestmark = [pytest.mark.deploy, pytest.mark.slow, pytest.mark.timeout(1500)]

DATA = "/var/lib/securedrop-wm"
SOURCE_HS = "/var/lib/tor/sdwm-source"
TRANSFER_HS = "/var/lib/tor/sdwm-transfer"
SSH_HS = "/var/lib/tor/sdwm-ssh"
SOURCE_SOCKET = "/run/securedrop-wm/source.sock"
UNITS = ("tor@default.service", "securedrop-wm-source.service", "securedrop-wm-transfer.service")
CLIENT = Path(__file__).with_name("source_client.py")
CLIENT_IN_BOX = "/usr/local/share/sdwm-source-client.py"


@pytest.fixture(scope="module")
def drop(deployment_factory: Callable[[str, int], Deployment]) -> Deployment:
    """A container with site.yml applied twice; the recaps are kept on it."""
    deployment = deployment_factory("sdwm-drop-a", 1)
    # ssh from the host's end of the veth, besides the onion service: the allow-list.
    deployment.extra_vars["sdwm_firewall_ssh_sources"] = [deployment.box.host_ip]
    deployment.playbook("site.yml")
    deployment.playbook("site.yml")
    copy_client(deployment)
    return deployment


def copy_client(deployment: Deployment) -> None:
    """Put the source client script into the container, readable by every user."""
    target = deployment.box.root / CLIENT_IN_BOX.lstrip("/")
    target.write_text(CLIENT.read_text())
    target.chmod(0o644)


def sh(deployment: Deployment, script: str) -> str:
    return deployment.box.sh(script).stdout.strip()


def source_get(deployment: Deployment, path: str = "/") -> int:
    return int(sh(deployment, f"python3 {CLIENT_IN_BOX} {SOURCE_SOCKET} get {path}"))


def stat(deployment: Deployment, path: str) -> str:
    return sh(deployment, f"stat -c '%a %U %G' {shlex.quote(path)}")


def is_v3_onion(hostname: str) -> bool:
    """A v3 address: base32 of public key (32) | checksum (2) | version 3 (1)."""
    if not hostname.endswith(".onion") or len(hostname) != 62:
        return False
    raw = base64.b32decode(hostname.removesuffix(".onion").upper())
    pubkey, checksum, version = raw[:32], raw[32:34], raw[34:]
    expected = hashlib.sha3_256(b".onion checksum" + pubkey + b"\x03").digest()[:2]
    return version == b"\x03" and checksum == expected


def ssh_as(
    deployment: Deployment, user: str, command: str, *options: str, key: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Log in with a real ssh client: over the veth (the allow-list's way in), or with
    ``ProxyCommand=`` among ``options`` over the container's own sshd."""
    return subprocess.run(
        [
            "ssh",
            "-i",
            str(key or deployment.box.ssh_key),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=10",
            *options,
            f"{user}@{deployment.box.ip}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def over_proxy(deployment: Deployment) -> str:
    return f"ProxyCommand={deployment.box.ssh_proxy_command()}"


def test_ssh_admits_the_admin_with_a_key_and_no_one_else(drop: Deployment) -> None:
    effective = set(sh(drop, "sshd -T").splitlines())
    assert effective >= {
        "permitrootlogin no",
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "authenticationmethods publickey",
        f"allowusers {ADMIN_USER}",
        "x11forwarding no",
        "allowtcpforwarding no",
        "allowagentforwarding no",
        "permittunnel no",
        "maxauthtries 3",
    }, sorted(effective)
    # Over the network, from an allow-listed address: the admin's key works, and sudo.
    admin = ssh_as(drop, ADMIN_USER, "sudo -n id -u")
    assert (admin.returncode, admin.stdout.strip()) == (0, "0"), admin.stderr
    # root, with the very key that deployed the server, is refused ...
    root = ssh_as(drop, "root", "true")
    assert root.returncode == 255 and "Permission denied" in root.stderr, root.stderr
    # ... and so is a password, even for the admin.
    password = ssh_as(
        drop,
        ADMIN_USER,
        "true",
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "PreferredAuthentications=password,keyboard-interactive",
    )
    assert password.returncode == 255 and "Permission denied" in password.stderr
    # The firewall lets in ssh from the allow-list only; nothing else comes in.
    ruleset = sh(drop, "nft list ruleset")
    assert f"ip saddr {drop.box.host_ip} tcp dport 22 ct state new accept" in ruleset, ruleset
    assert "\ttcp dport 22 ct state new accept" not in ruleset


def test_ssh_onion_requires_client_auth(drop: Deployment) -> None:
    onion = sh(drop, f"cat {SSH_HS}/hostname")
    assert is_v3_onion(onion), onion
    assert (drop.admin_dir / "ssh.onion").read_text().strip() == onion
    assert onion not in {sh(drop, f"cat {h}/hostname") for h in (SOURCE_HS, TRANSFER_HS)}
    torrc = sh(drop, "cat /etc/tor/torrc").splitlines()
    assert f"HiddenServiceDir {SSH_HS}" in torrc
    assert "HiddenServicePort 22 127.0.0.1:22" in torrc
    assert stat(drop, f"{SSH_HS}/authorized_clients/admin.auth") == "600 debian-tor debian-tor"
    line = (drop.admin_dir / "ssh-clients/admin.auth_private").read_text().strip()
    assert line.startswith(onion.removesuffix(".onion") + ":descriptor:x25519:")
    assert (drop.admin_dir / "ssh-clients/admin.key").stat().st_mode & 0o077 == 0


def assert_ssh_over_onion_only(deployment: Deployment) -> None:
    """With no allow-list: sshd on loopback (for tor) and no way in through the firewall."""
    effective = set(sh(deployment, "sshd -T").splitlines())
    assert "listenaddress 127.0.0.1:22" in effective
    assert {line for line in effective if line.startswith("listenaddress")} == {
        "listenaddress 127.0.0.1:22"
    }
    assert "dport 22" not in sh(deployment, "nft list ruleset")
    listeners = sh(deployment, "ss -Hltn")
    assert all("127.0.0.1:22 " in line for line in listeners.splitlines()), listeners


def test_second_run_changes_nothing(drop: Deployment) -> None:
    first, second = drop.recaps[:2]
    assert first["failed"] == 0
    assert first["changed"] > 0
    assert second["changed"] == 0, drop.logs[1].read_text()[-5000:]


def locked(lock: Path) -> dict[str, str]:
    """The ``name==version`` pins of a hash-locked requirements file."""
    pins = {}
    for line in lock.read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split(" ")[0].split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_the_server_runs_exactly_the_locked_set(drop: Deployment, app_source: Path) -> None:
    # The venv holds the server's lock and the build tools' lock, at their pinned
    # releases, plus the app: no workstation parser, no transfer client, nothing newer.
    frozen = sh(drop, "/opt/securedrop-wm/venv/bin/pip list --format=freeze")
    installed = {
        name.lower().replace("_", "-"): version
        for name, version in (line.split("==") for line in frozen.splitlines())
    }
    locks = app_source / "requirements"
    wanted = locked(locks / "server.txt") | locked(locks / "build.txt")
    assert installed.pop("securedrop-wm")
    assert installed == wanted
    for absent in ("pillow", "pypdf", "pyotp", "requests", "pysocks"):
        assert absent not in installed


def test_tor_and_both_apps_are_active(drop: Deployment) -> None:
    for unit in UNITS:
        assert sh(drop, f"systemctl is-active {unit}") == "active", unit
    assert sh(drop, "systemctl list-units --failed --no-legend --plain") == ""


def test_both_onion_hostnames_are_v3_and_fetched(drop: Deployment) -> None:
    for name, hs_dir in (("source", SOURCE_HS), ("transfer", TRANSFER_HS)):
        on_server = sh(drop, f"cat {hs_dir}/hostname")
        assert is_v3_onion(on_server), on_server
        assert (drop.admin_dir / f"{name}.onion").read_text().strip() == on_server
    assert sh(drop, f"cat {SOURCE_HS}/hostname") != sh(drop, f"cat {TRANSFER_HS}/hostname")


def test_transfer_onion_requires_client_auth(drop: Deployment) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    onion = (drop.admin_dir / "transfer.onion").read_text().strip()
    line = (drop.admin_dir / "clients/transfer.auth_private").read_text().strip()
    address, kind, algo, private_b32 = line.split(":")
    assert (address + ".onion", kind, algo) == (onion, "descriptor", "x25519")
    private = X25519PrivateKey.from_private_bytes(base64.b32decode(private_b32 + "=" * 4))
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    expected = "descriptor:x25519:" + base64.b32encode(public).decode().rstrip("=")
    # The server holds the public half only, in the transfer service's folder only.
    assert sh(drop, f"ls {TRANSFER_HS}/authorized_clients") == "transfer.auth"
    assert sh(drop, f"cat {TRANSFER_HS}/authorized_clients/transfer.auth") == expected
    assert sh(drop, f"ls -A {SOURCE_HS}/authorized_clients 2>/dev/null || true") == ""
    assert private_b32 not in sh(drop, f"cat {TRANSFER_HS}/authorized_clients/*")
    # And tor runs with that configuration, with no SOCKS or control socket.
    torrc = sh(drop, "cat /etc/tor/torrc")
    assert f"HiddenServiceDir {TRANSFER_HS}" in torrc
    for option in ("SocksPort 0", "SafeLogging 1", "ControlSocket 0"):
        assert option in torrc.splitlines()
    listening = sh(drop, "ss -Hlnp")
    assert "tor" not in listening, listening


def test_source_ui_answers_inside_and_listens_on_no_port(drop: Deployment) -> None:
    assert source_get(drop, "/") == 200
    # Tor's user can reach the apps' sockets; any other user cannot even see them.
    client = f"python3 {CLIENT_IN_BOX} {SOURCE_SOCKET} get /"
    assert sh(drop, f"runuser -u debian-tor -- {client}") == "200"
    refused = drop.box.sh(f"runuser -u nobody -- {client}", check=False)
    assert refused.returncode != 0
    assert "PermissionError" in refused.stderr
    # The only TCP listener is sshd; the apps have unix sockets only.
    listeners = sh(drop, "ss -Hltnp")
    assert all("sshd" in line for line in listeners.splitlines()), listeners


def test_firewall_drops_what_comes_from_outside(drop: Deployment) -> None:
    port = 8765
    drop.box.exec(["systemd-run", "--unit=sdwm-probe", "python3", "-m", "http.server", str(port)])
    try:
        deadline = time.monotonic() + 10
        while f":{port} " not in sh(drop, "ss -Hltn") and time.monotonic() < deadline:
            time.sleep(0.1)
        # The path to the container works (ssh, allowed, answers) ...
        with socket.create_connection((drop.box.ip, 22), timeout=5):
            pass
        # ... and a listener on every address inside is not reachable: dropped, not refused.
        with pytest.raises(TimeoutError):
            socket.create_connection((drop.box.ip, port), timeout=3)
        # From inside the container it is there all along.
        probe = f"import socket; socket.create_connection(('127.0.0.1', {port}))"
        assert sh(drop, f'python3 -c "{probe}" && echo ok') == "ok"
    finally:
        drop.box.exec(["systemctl", "stop", "sdwm-probe"], check=False)
    ruleset = sh(drop, "nft list ruleset")
    assert "hook input priority filter; policy drop;" in ruleset
    assert "hook output priority filter; policy drop;" in ruleset


def test_requests_leave_no_log(drop: Deployment) -> None:
    def journal_lines() -> int:
        units = " ".join(f"-u {u}" for u in UNITS[1:])
        return int(sh(drop, f"journalctl --no-pager -q -o cat {units} | wc -l"))

    def log_files() -> str:
        # Every file under /var/log and the data dir, with its size; the store and
        # the database change only with a report, which these requests do not make.
        found = f"find /var/log {DATA} -type f -printf '%p %s\\n'"
        return sh(drop, f"{found} | grep -v -e '/store/' -e 'db.sqlite' | sort || true")

    before_lines, before_files = journal_lines(), log_files()
    for path in ("/", "/generate", "/login", "/does-not-exist", "/safety"):
        source_get(drop, path)
    assert journal_lines() == before_lines
    assert log_files() == before_files
    # The journal lives in memory only: nothing of it is on disk.
    assert sh(drop, "ls /var/log/journal 2>/dev/null | wc -l") == "0"
    assert sh(drop, "ls /run/log/journal | wc -l") != "0"


def test_modes_of_data_and_keys(drop: Deployment) -> None:
    expected = {
        DATA: "700 sdwm sdwm",
        f"{DATA}/config.toml": "600 sdwm sdwm",
        f"{DATA}/secrets.toml": "600 sdwm sdwm",
        f"{DATA}/gnupg": "700 sdwm sdwm",
        f"{DATA}/signing": "700 sdwm sdwm",
        f"{DATA}/store": "700 sdwm sdwm",
        "/etc/securedrop-wm/keys": "750 root sdwm",
        SOURCE_HS: "700 debian-tor debian-tor",
        f"{SOURCE_HS}/hs_ed25519_secret_key": "600 debian-tor debian-tor",
        TRANSFER_HS: "700 debian-tor debian-tor",
        f"{TRANSFER_HS}/hs_ed25519_secret_key": "600 debian-tor debian-tor",
        f"{TRANSFER_HS}/authorized_clients/transfer.auth": "600 debian-tor debian-tor",
        "/run/securedrop-wm": "2750 sdwm debian-tor",
    }
    for path, mode in expected.items():
        assert stat(drop, path) == mode, path
    for secret in ("clients/transfer.key", "clients/transfer.auth_private"):
        assert (drop.admin_dir / secret).stat().st_mode & 0o077 == 0, secret


def test_hardening(drop: Deployment) -> None:
    assert sh(drop, "tail -n +2 /proc/swaps | wc -l") == "0"
    assert sh(drop, "systemctl is-enabled swap.target || true") == "masked"
    assert sh(drop, "sysctl -n net.ipv4.conf.all.accept_redirects") == "0"
    assert sh(drop, "sysctl -n net.ipv4.tcp_syncookies") == "1"
    assert "kernel.kptr_restrict = 2" in sh(drop, "cat /etc/sysctl.d/60-securedrop-wm-kernel.conf")
    assert 'Unattended-Upgrade "1"' in sh(drop, "cat /etc/apt/apt.conf.d/20auto-upgrades")
    assert sh(drop, "systemctl is-enabled apt-daily-upgrade.timer") == "enabled"
    for profile in ("/etc/apparmor.d/securedrop-wm-app", "/etc/apparmor.d/system_tor"):
        drop.box.exec(["apparmor_parser", "-Q", "-K", "-T", profile])
    # The apps run sandboxed, as the unprivileged app user, with no network.
    props = "-p User -p ProtectSystem -p PrivateNetwork -p NoNewPrivileges"
    show = sh(drop, f"systemctl show {props} securedrop-wm-source")
    assert set(show.splitlines()) >= {
        "User=sdwm",
        "ProtectSystem=strict",
        "PrivateNetwork=yes",
        "NoNewPrivileges=yes",
    }
    # Each app and tor are bounded, and none may write a core file (a crashed worker's
    # memory can hold a report's plaintext; tor's holds the onion keys).
    bounds = "-p LimitCORE -p MemoryMax -p TasksMax -p LimitNOFILE"
    for unit in ("securedrop-wm-source", "securedrop-wm-transfer"):
        assert set(sh(drop, f"systemctl show {bounds} {unit}").splitlines()) >= {
            "LimitCORE=0",
            f"MemoryMax={2 << 30}",
            "TasksMax=512",
            "LimitNOFILE=16384",
        }, unit
    tor = set(sh(drop, f"systemctl show {bounds} tor@default").splitlines())
    assert tor >= {"LimitCORE=0", f"MemoryMax={1 << 30}", "TasksMax=256"}
    # and the limits are in force for the running processes, not only in the units
    for unit in ("securedrop-wm-source", "tor@default"):
        pid = sh(drop, f"systemctl show -p MainPID --value {unit}")
        limits = sh(drop, f"cat /proc/{pid}/limits")
        assert re.search(r"Max core file size\s+0\s+0", limits), (unit, limits)


def test_the_signing_key_is_out_of_the_source_uis_reach(drop: Deployment) -> None:
    def main_pid(unit: str) -> str:
        return sh(drop, f"systemctl show -p MainPID --value {unit}")

    signing = f"{DATA}/signing"
    # The transfer API sees the signing key's home; the source UI's processes see an
    # empty, inaccessible folder in its place, even as root.
    inside_transfer = sh(drop, f"nsenter -t {main_pid(UNITS[2])} -m -- ls -A {signing}")
    assert "private-keys-v1.d" in inside_transfer
    source = main_pid(UNITS[1])
    assert sh(drop, f"nsenter -t {source} -m -- ls -A {signing} 2>&1 || true") in (
        "",
        f"ls: cannot open directory '{signing}': Permission denied",
    )
    as_app = drop.box.sh(f"nsenter -t {source} -m -- runuser -u sdwm -- ls {signing}", check=False)
    assert as_app.returncode != 0 and "Permission denied" in as_app.stderr
    # and the source UI's own GnuPG home holds no secret key at all
    listing = f"runuser -u sdwm -- gpg --homedir {DATA}/gnupg --batch --list-secret-keys"
    assert sh(drop, listing) == ""


def submissions(deployment: Deployment) -> tuple[str, str]:
    """What the drop holds: its sources and reports, and the ciphertexts' digests."""
    cli = "runuser -u sdwm -- env SDWM_CONFIG=/var/lib/securedrop-wm/config.toml"
    listed = sh(deployment, f"{cli} /opt/securedrop-wm/venv/bin/securedrop-wm list-sources")
    digests = sh(deployment, f"cd {DATA}/store && find . -type f | sort | xargs -r sha256sum")
    return listed, digests


def decrypt_backup(archive: Path, passphrase: str) -> subprocess.CompletedProcess[bytes]:
    """Decrypt a backup archive with plain gpg and ``passphrase``, in a throwaway home."""
    home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    try:
        return subprocess.run(
            [
                "gpg",
                "--homedir",
                str(home),
                "--batch",
                "--quiet",
                "--pinentry-mode",
                "loopback",
                "--passphrase-fd",
                "0",
                "--no-symkey-cache",
                "--decrypt",
                str(archive),
            ],
            input=passphrase.encode() + b"\n",
            capture_output=True,
            timeout=120,
            check=False,
        )
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
        shutil.rmtree(home, ignore_errors=True)


def test_backup_restores_into_a_fresh_server(
    drop: Deployment, deployment_factory: Callable[[str, int], Deployment], tmp_path: Path
) -> None:
    # Given a report in the drop
    assert int(sh(drop, f"python3 {CLIENT_IN_BOX} {SOURCE_SOCKET} submit 'A report'")) == 200
    held = submissions(drop)
    assert "1 report(s)" in held[0]
    assert held[1]
    # When it is backed up, and restored onto a fresh server
    drop.playbook("backup.yml")
    (archive,) = (drop.admin_dir / "backups").glob("securedrop-wm-*.tar.gz.gpg")
    # The archive is OpenPGP-encrypted to the backup passphrase: the right one gives a
    # gzipped tar of the data, a wrong one gives nothing (a bare or merely renamed tar
    # fails the first check: gpg finds no encrypted data in it).
    passphrase = str(drop.extra_vars["sdwm_backup_passphrase"])
    plain = decrypt_backup(archive, passphrase)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout[:2] == b"\x1f\x8b"
    with tarfile.open(fileobj=io.BytesIO(plain.stdout), mode="r:gz") as tar:
        assert any(name.startswith(DATA.lstrip("/")) for name in tar.getnames())
    wrong = decrypt_backup(archive, passphrase + "x")
    assert wrong.returncode != 0 and wrong.stdout == b""
    assert sh(drop, "ls -A /var/backups/securedrop-wm") == ""
    assert source_get(drop, "/") == 200  # the apps came back after the backup
    fresh = deployment_factory("sdwm-drop-b", 2)
    copy_client(fresh)
    # A run whose own key is not among the admin's keys stops before shutting root out
    # (it could not come back), and root still logs in.
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other], check=True)
    with pytest.raises(HarnessError, match="could not log in as sdwm-admin"):
        fresh.playbook("site.yml", sdwm_ssh_admin_keys=[Path(f"{other}.pub").read_text()])
    assert not (fresh.box.root / "etc/ssh/sshd_config.d/securedrop-wm.conf").exists()
    assert ssh_as(fresh, "root", "id -u", "-o", over_proxy(fresh)).stdout.strip() == "0"
    # (a key that is the admin's but not this run's is refused too)
    locked_out = ssh_as(fresh, ADMIN_USER, "true", "-o", over_proxy(fresh))
    assert locked_out.returncode == 255
    fresh.playbook("restore.yml", sdwm_backup_restore_archive=str(archive))
    # Then it has the same onion addresses and the same submissions
    for name in ("source", "transfer"):
        assert (fresh.admin_dir / f"{name}.onion").read_text() == (
            drop.admin_dir / f"{name}.onion"
        ).read_text()
    assert submissions(fresh) == held
    for unit in UNITS:
        assert sh(fresh, f"systemctl is-active {unit}") == "active", unit
    assert source_get(fresh, "/") == 200
    # Its admin comes over the same (restored) ssh onion, and only that way.
    assert (fresh.admin_dir / "ssh.onion").read_text() == (drop.admin_dir / "ssh.onion").read_text()
    assert_ssh_over_onion_only(fresh)
    admin = ssh_as(fresh, ADMIN_USER, "sudo -n id -u", "-o", over_proxy(fresh))
    assert admin.stdout.strip() == "0", admin.stderr
    assert ssh_as(fresh, "root", "true", "-o", over_proxy(fresh)).returncode == 255


def test_update_to_a_new_release(drop: Deployment, app_source: Path, tmp_path: Path) -> None:
    # Given a new release of the app
    new = build_wheel(app_source, tmp_path, version="99.0.0")
    held = submissions(drop)
    # When update.yml installs it (after a backup of its own)
    recap = drop.playbook("update.yml", sdwm_app_wheel=str(new))
    # Then the new release runs, both apps answer, and nothing held was lost
    assert recap["changed"] > 0
    venv = "/opt/securedrop-wm/venv/bin"
    assert sh(drop, f"{venv}/securedrop-wm --version").endswith("99.0.0")
    assert sh(drop, f"cd {venv}/../../dist && ls *.whl") == new.name
    for unit in UNITS:
        assert sh(drop, f"systemctl is-active {unit}") == "active", unit
    assert source_get(drop, "/") == 200
    assert submissions(drop) == held
    assert len(list((drop.admin_dir / "backups").glob("*.tar.gz.gpg"))) == 2


def test_rotating_transfer_credentials(drop: Deployment) -> None:
    auth_private = drop.admin_dir / "clients/transfer.auth_private"
    old_private, old_auth = (
        auth_private.read_text(),
        sh(drop, f"cat {TRANSFER_HS}/authorized_clients/transfer.auth"),
    )
    recap = drop.playbook("rotate-transfer-credentials.yml")
    assert recap["changed"] > 0
    new_auth = sh(drop, f"cat {TRANSFER_HS}/authorized_clients/transfer.auth")
    assert auth_private.read_text() != old_private
    assert new_auth != old_auth
    # Same onion address, new key; tor still up.
    assert auth_private.read_text().split(":")[0] == old_private.split(":")[0]
    assert sh(drop, "systemctl is-active tor@default") == "active"
