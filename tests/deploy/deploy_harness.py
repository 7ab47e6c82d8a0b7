"""Boot a Debian 12 root file system with systemd-nspawn and apply Ansible to it.

What was learned on this machine (see the ansible-nspawn recipe) turned into code:

- the root file system comes from ``debootstrap --variant=minbase`` once, and is cached
  as a zstd archive outside the repository (``~/.cache/securedrop-wm/``);
- ``systemd-nspawn -b --register=no --keep-unit --network-veth`` boots it with systemd
  as PID 1, inside a cgroup of its own;
- Ansible reaches it over real ssh with no route at all: ``ProxyCommand`` runs the
  container's own ``sshd -i`` through ``nsenter``;
- packages come in through a ``tinyproxy`` that listens only on the host end of the
  veth pair.

Every resource is recorded when it is made and released by :meth:`Container.destroy`
and :meth:`Proxy.stop`, by pid and by name, never by a broad pattern.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CACHE_DIR = Path(os.environ.get("SDWM_DEPLOY_CACHE", Path.home() / ".cache" / "securedrop-wm"))

# What a provider's minimal Debian 12 image has, plus what Ansible and the harness need.
# The admin account the playbook makes (sdwm_ssh_admin_user's default).
ADMIN_USER = "sdwm-admin"
BASE_PACKAGES = ("python3", "systemd", "systemd-sysv", "dbus", "openssh-server", "iproute2")

CGROUP_ROOT = Path("/sys/fs/cgroup")
REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO / "ansible"


class HarnessError(RuntimeError):
    """Raised when the container cannot be built, booted, reached or torn down."""


def run(
    args: Sequence[str | os.PathLike[str]],
    *,
    check: bool = True,
    timeout: float = 600,
    input_text: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a host command, capturing its output; raise with that output on failure."""
    proc = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input_text,
        env=env,
        check=False,
    )
    if check and proc.returncode != 0:
        raise HarnessError(
            f"{' '.join(map(str, args))} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    return proc


def host_mirrors() -> list[tuple[str, str]]:
    """Return ``(uri, suites)`` pairs from the host's own apt configuration.

    The harness never names a mirror itself: it uses whichever the machine already uses.
    """
    pairs: list[tuple[str, str]] = []
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for stanza in sources.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1)
                for line in stanza.splitlines()
                if re.match(r"^[A-Za-z-]+:", line)
            )
            if "URIs" in fields and "Suites" in fields:
                pairs.append((fields["URIs"].split()[0], fields["Suites"].strip()))
    legacy = Path("/etc/apt/sources.list")
    if not pairs and legacy.exists():
        for line in legacy.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb":
                pairs.append((parts[1], parts[2]))
    if not pairs:
        raise HarnessError("no Debian mirror found in the host's apt configuration")
    return pairs


def root_archive() -> Path:
    """Return the cached root file system archive, building it with debootstrap if needed."""
    key = hashlib.sha256(" ".join(BASE_PACKAGES).encode()).hexdigest()[:12]
    archive = CACHE_DIR / f"bookworm-minbase-{key}.tar.zst"
    if archive.exists():
        return archive
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    mirror = host_mirrors()[0][0]
    with tempfile.TemporaryDirectory(prefix="sdwm-debootstrap-", dir=CACHE_DIR) as tmp:
        root = Path(tmp) / "root"
        run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=" + ",".join(BASE_PACKAGES),
                "bookworm",
                root,
                mirror,
            ],
            timeout=900,
        )
        # The archives debootstrap fetched are not needed in the image.
        for deb in (root / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        partial = archive.with_suffix(".partial")
        run(
            [
                "tar",
                "-C",
                root,
                "--numeric-owner",
                "--xattrs",
                "-I",
                "zstd -T0 -3",
                "-cf",
                partial,
                ".",
            ],
            timeout=600,
        )
        partial.rename(archive)
    return archive


def build_wheel(source: Path, out: Path, version: str | None = None) -> Path:
    """Build the app's wheel from a checkout, as an admin would; optionally as VERSION."""
    if version is not None:
        copy = out / "src"
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns(".git", ".venv", "build"))
        pyproject = copy / "pyproject.toml"
        text = pyproject.read_text()
        pyproject.write_text(re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', text))
        source = copy
    run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", out, source],
        env={**os.environ, "SOURCE_DATE_EPOCH": "315532800"},
    )
    (found,) = out.glob("securedrop_wm-*.whl")
    return found


@dataclass
class Proxy:
    """A tinyproxy listening only on given host addresses, for apt and pip inside."""

    workdir: Path
    port: int = 8888
    process: subprocess.Popen[bytes] | None = None

    def start(self, listen_on: str, allow: str) -> None:
        """Start tinyproxy bound to ``listen_on``, serving only clients in ``allow``."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / f"tinyproxy-{listen_on}.conf"
        log = self.workdir / f"tinyproxy-{listen_on}.log"
        conf.write_text(
            f"Port {self.port}\nListen {listen_on}\nTimeout 120\nMaxClients 50\n"
            f'Allow {allow}\nLogFile "{log}"\nLogLevel Warning\n'
            "ConnectPort 443\nDisableViaHeader Yes\n"
        )
        # -d: stay in the foreground, so the pid is ours to end.
        self.process = subprocess.Popen(  # noqa: S603
            ["tinyproxy", "-d", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HarnessError(f"tinyproxy exited {self.process.returncode}; see {log}")
            if f":{self.port:04X}" in _listening_tcp():
                return
            time.sleep(0.1)
        raise HarnessError("tinyproxy did not start listening")

    def stop(self) -> None:
        """End the tinyproxy started here, by its pid."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


def _listening_tcp() -> str:
    return Path("/proc/net/tcp").read_text()


@dataclass
class Container:
    """One booted Debian container, with the resources made for it."""

    name: str
    subnet: int  # the third octet of 10.231.<subnet>.0/30
    workdir: Path
    ssh_key: Path
    nspawn: subprocess.Popen[bytes] | None = None
    leader: int | None = None
    cgroups: list[Path] = field(default_factory=list)
    log: Path | None = None

    @property
    def root(self) -> Path:
        return self.workdir / "root"

    @property
    def host_ip(self) -> str:
        return f"10.231.{self.subnet}.1"

    @property
    def ip(self) -> str:
        return f"10.231.{self.subnet}.2"

    @property
    def host_veth(self) -> str:
        # systemd-nspawn names the host end "ve-" plus the machine name when that fits in
        # 15 characters (a longer name gets a hashed one: booted() refuses it).
        return "ve-" + self.name

    # -- build and boot -------------------------------------------------------------

    def prepare(self, archive: Path, proxy_port: int) -> None:
        """Unpack the cached root and put in what the harness needs before boot."""
        self.root.mkdir(parents=True)
        # A server's / is 0755 whatever the umask of the process running the tests.
        self.root.chmod(0o755)
        run(["tar", "-C", self.root, "--numeric-owner", "--xattrs", "-I", "zstd", "-xf", archive])
        r = self.root
        (r / "etc/hostname").write_text(self.name + "\n")
        (r / "etc/hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {self.name}\n")
        # The host's apt sources (with security updates), as the admin's server would have.
        sources = Path("/etc/apt/sources.list.d/debian.sources")
        if sources.exists():
            shutil.copy(sources, r / "etc/apt/sources.list.d/debian.sources")
            (r / "etc/apt/sources.list").unlink(missing_ok=True)
        proxy = f"http://{self.host_ip}:{proxy_port}"
        (r / "etc/apt/apt.conf.d/90proxy").write_text(
            f'Acquire::http::Proxy "{proxy}";\nAcquire::https::Proxy "{proxy}";\n'
        )
        ca = r / "usr/local/share/sdwm-host-ca.crt"
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", ca)
        (r / "etc/pip.conf").write_text(
            f"[global]\nproxy = {proxy}\ncert = /usr/local/share/sdwm-host-ca.crt\ntimeout = 120\n"
        )
        ssh_dir = r / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        pub = Path(str(self.ssh_key) + ".pub").read_text()
        (ssh_dir / "authorized_keys").write_text(pub)
        os.chmod(ssh_dir / "authorized_keys", 0o600)
        # The container's address on its end of the veth, set by systemd-networkd-free means:
        # a oneshot unit, so the address is there before anything else needs it.
        unit = r / "etc/systemd/system/sdwm-harness-net.service"
        unit.write_text(
            "[Unit]\nDescription=Test harness: address on host0\n"
            "Before=network-online.target\nWants=network-online.target\n"
            "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
            f"ExecStart=/sbin/ip addr replace {self.ip}/30 dev host0\n"
            "ExecStart=/sbin/ip link set host0 up\n"
            f"ExecStart=/sbin/ip route replace default via {self.host_ip}\n"
            "[Install]\nWantedBy=multi-user.target\n"
        )
        wants = r / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(exist_ok=True)
        link = wants / "sdwm-harness-net.service"
        if not link.exists():
            link.symlink_to("/etc/systemd/system/sdwm-harness-net.service")
        # Host keys made by the image's first boot would differ per container: make them now.
        run(["chroot", r, "ssh-keygen", "-A"])

    def boot(self, timeout: float = 60) -> None:
        """Boot the container with systemd as PID 1 and wait until it is running."""
        self.log = self.workdir / "nspawn.log"
        cgroup_name = f"sdwm-deploy-{self.name}"
        for hierarchy in ("systemd", "unified"):
            base = CGROUP_ROOT / hierarchy
            if base.is_dir():
                path = base / cgroup_name
                path.mkdir(exist_ok=True)
                self.cgroups.append(path)
        # Placing nspawn in its cgroup before exec: a small shell writes its own pid first.
        script = "".join(f'echo $$ > "{c}/cgroup.procs"; ' for c in self.cgroups)
        script += 'exec "$@"'
        log = self.log.open("wb")
        self.nspawn = subprocess.Popen(  # noqa: S603
            [
                "sh",
                "-c",
                script,
                "nspawn",
                "systemd-nspawn",
                "-b",
                "-D",
                str(self.root),
                "-M",
                self.name,
                "--register=no",
                "--keep-unit",
                "--network-veth",
                "--console=passive",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while self.leader is None:
            self._check_alive()
            self.leader = self._find_leader()
            if time.monotonic() > deadline:
                raise HarnessError(f"no container init found; see {self.log}")
            time.sleep(0.1)
        self._wait_for_veth(deadline)
        run(["ip", "addr", "replace", f"{self.host_ip}/30", "dev", self.host_veth])
        run(["ip", "link", "set", self.host_veth, "up"])
        while True:
            self._check_alive()
            state = self.exec(["systemctl", "is-system-running"], check=False).stdout.strip()
            if state in ("running", "degraded"):
                break
            if time.monotonic() > deadline:
                raise HarnessError(f"container stuck in state {state!r}; see {self.log}")
            time.sleep(0.2)
        if state == "degraded":
            failed = self.exec(["systemctl", "--failed", "--no-legend"], check=False).stdout
            raise HarnessError(f"container booted degraded:\n{failed}")

    def _check_alive(self) -> None:
        assert self.nspawn is not None
        if self.nspawn.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:] if self.log else ""
            raise HarnessError(f"systemd-nspawn exited {self.nspawn.returncode}:\n{tail}")

    def _find_leader(self) -> int | None:
        """Return the host pid of the container's PID 1 (found by its own cgroup tree)."""
        for pid in (p for c in self.cgroups for p in _cgroup_pids(c)):
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{pid}/status").read_text()
                nspid = re.search(r"^NSpid:\s+(.*)$", status, re.M)
                if nspid and nspid.group(1).split()[-1] == "1" and len(nspid.group(1).split()) > 1:
                    return pid
        return None

    def _wait_for_veth(self, deadline: float) -> None:
        while not Path(f"/sys/class/net/{self.host_veth}").exists():
            self._check_alive()
            if time.monotonic() > deadline:
                raise HarnessError(f"veth {self.host_veth} did not appear")
            time.sleep(0.1)

    # -- talk to it -----------------------------------------------------------------

    def exec(
        self, args: Sequence[str], *, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the container (all its namespaces), as root."""
        assert self.leader is not None
        return run(
            ["nsenter", "-t", str(self.leader), "-a", "--", *args], check=check, timeout=timeout
        )

    def sh(self, script: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a shell snippet inside the container."""
        return self.exec(["/bin/sh", "-c", script], check=check)

    def ssh_proxy_command(self) -> str:
        """The ssh ProxyCommand that runs the container's own sshd over a pipe.

        Without PAM: pam_systemd would ask logind for a session for an sshd that lives
        outside the container's cgroups, and wait 40 s for each connection.
        """
        return f"nsenter -t {self.leader} -a /usr/sbin/sshd -i -o UsePAM=no"

    # -- tear down ------------------------------------------------------------------

    def destroy(self) -> None:
        """Stop the container at once, then make sure nothing made for it is left.

        A throwaway container needs no clean shutdown (tor alone would wait its
        ShutdownWaitLength): killing its PID 1 ends its whole pid namespace, and nspawn
        then removes the veth and its mounts.
        """
        if self.nspawn is not None and self.nspawn.poll() is None:
            if self.leader is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.leader, signal.SIGKILL)
            else:
                self.nspawn.send_signal(signal.SIGTERM)
            try:
                self.nspawn.wait(15)
            except subprocess.TimeoutExpired:
                self.nspawn.kill()
                self.nspawn.wait(10)
        # Anything still in the container's cgroups (an sshd -i, a stray helper): by pid.
        for cgroup in reversed(self.cgroups):
            for _ in range(50):
                pids = _cgroup_pids(cgroup)
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.1)
            with contextlib.suppress(OSError):
                _rmdir_cgroup(cgroup)
        self.cgroups.clear()
        if Path(f"/sys/class/net/{self.host_veth}").exists():
            run(["ip", "link", "delete", self.host_veth], check=False)
        if self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)
        self.nspawn = None
        self.leader = None


def _cgroup_pids(cgroup: Path) -> list[int]:
    pids: list[int] = []
    for procs in cgroup.rglob("cgroup.procs"):
        with contextlib.suppress(OSError):
            pids += [int(p) for p in procs.read_text().split()]
    return pids


def _rmdir_cgroup(cgroup: Path) -> None:
    # Children first: the container's systemd made a tree below ours.
    for sub in sorted((p for p in cgroup.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            sub.rmdir()
    cgroup.rmdir()


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
        raise HarnessError("ansible-playbook not found: install ansible-core")
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
            "ansible_user": self.login_user(),
            "ansible_ssh_private_key_file": str(self.box.ssh_key),
            "ansible_ssh_common_args": ssh_args,
        }
        path.write_text(
            json.dumps({"all": {"children": {"drop_servers": {"hosts": {self.box.name: host}}}}})
        )
        return path

    def login_user(self) -> str:
        """Who Ansible logs in as: root on a fresh server, the admin once site.yml has
        shut root out of ssh (as the example inventory tells an admin to do)."""
        if (self.box.root / "etc/ssh/sshd_config.d/securedrop-wm.conf").exists():
            return ADMIN_USER
        return "root"

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
        args = [
            _ansible_playbook(),
            "-i",
            str(self.inventory()),
            "-e",
            f"@{vars_file}",
            str(ANSIBLE_DIR / name),
        ]
        with log.open("w") as out:
            # A session of its own, so that ansible's workers and ssh end with it.
            proc = subprocess.Popen(  # noqa: S603
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ANSIBLE_DIR,
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
            raise HarnessError(
                f"{name} failed (exit {proc.returncode}); log {log}:\n{text[-6000:]}"
            )
        counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", recap.group(1))}
        counts["seconds"] = round(time.monotonic() - started)
        self.recaps.append(counts)
        return counts

    def close_ssh(self) -> None:
        """End ssh's persistent connections to this container, by their control sockets."""
        for sock in (self.workdir / "cp").glob("*"):
            run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], check=False, timeout=10)


@contextlib.contextmanager
def booted(name: str, subnet: int, workdir: Path, ssh_key: Path) -> Iterator[Container]:
    """Boot a fresh container with a proxy on its veth; always tear both down."""
    if len("ve-" + name) > 15:
        raise HarnessError(f"machine name {name!r} is longer than 12 characters")
    archive = root_archive()
    box = Container(name=name, subnet=subnet, workdir=workdir, ssh_key=ssh_key)
    proxy = Proxy(workdir)
    try:
        box.prepare(archive, proxy.port)
        box.boot()
        proxy.start(box.host_ip, f"{box.ip}")
        yield box
    finally:
        proxy.stop()
        box.destroy()
