"""The sandbox that reads sources' files (securedrop_wm/workstation/sandbox.py): code run
in it, through the same function the renderer uses, cannot reach the team key, the
gpg-agent, the UI's port or any network, runs as nobody with no capabilities, and is
stopped at its time, output, memory and process limits. Real bubblewrap throughout."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from securedrop_wm.workstation.sandbox import Limits, Result, Sandbox, SandboxUnavailableError
from securedrop_wm.workstation.services import Workstation

PYTHON = os.path.realpath("/usr/bin/python3")


def _probe(sandbox: Sandbox, code: str, data: bytes = b"", **kw: object) -> Result:
    """Run Python ``code`` in ``sandbox`` with ``data`` on its standard input."""
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    try:
        return sandbox.run([PYTHON, "-I", "-c", textwrap.dedent(code)], read, **kw)  # type: ignore[arg-type]
    finally:
        os.close(read)


def _json(result: Result) -> dict[str, object]:
    assert result.ok, result
    found: dict[str, object] = json.loads(result.stdout)
    return found


ATTEMPTS = """
import json, os, socket, sys
out = {}
def attempt(name, action):
    try:
        action()
        out[name] = "succeeded"
    except OSError as e:
        out[name] = e.errno
for i, path in enumerate(sys.argv[1:]):
    attempt(f"read {i}", lambda: open(path, "rb").read(1))
def unix():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(os.environ.get("AGENT", "/nonexistent"))
attempt("agent", unix)
def tcp():
    s = socket.create_connection(("127.0.0.1", int(os.environ.get("PORT", "1"))), timeout=2)
attempt("tcp", tcp)
attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
attempt("inet6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
attempt("pair", lambda: socket.socketpair())
status = dict(l.split(":", 1) for l in open("/proc/self/status"))
out["uid"] = os.getuid()
out["gid"] = os.getgid()
out["CapEff"] = status["CapEff"].strip()
out["CapBnd"] = status["CapBnd"].strip()
out["root"] = sorted(os.listdir("/"))
out["env"] = ENV
out["stdin"] = sys.stdin.read()
print(json.dumps(out))
"""


def _agent_socket(home: Path) -> Path:
    """The ws gpg home's agent socket, with a real gpg-agent started on it."""
    subprocess.run(["gpgconf", "--homedir", str(home), "--launch", "gpg-agent"], check=True)
    found = subprocess.run(
        ["gpgconf", "--homedir", str(home), "--list-dirs", "agent-socket"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(found)


def test_a_probe_cannot_reach_keys_agent_ui_port_or_network(
    ws: Workstation, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = ws.settings.gpg_home
    agent = _agent_socket(home)
    # The agent is really there: from outside the sandbox it answers.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(agent))
        assert s.recv(64).startswith(b"OK")
    secrets = [p for p in home.rglob("*") if p.is_file() and not p.is_socket()]
    secrets += [Path(ws.settings.database_url.removeprefix("sqlite:///"))]
    secrets += [ws.settings.config_path.parent / "secrets.toml"]
    assert any(p.suffix == ".key" for p in secrets)  # the team key's secret key file
    listener = socket.create_server(("127.0.0.1", 0))  # the UI's port, as it listens
    port = listener.getsockname()[1]
    monkeypatch.setenv("SECRET_IN_APP_ENV", "1")
    setup = f"os.environ.update(AGENT={str(agent)!r}, PORT='{port}')"
    code = f"import os; ENV = sorted(os.environ); {setup}\n" + ATTEMPTS
    try:
        result = ws.sandbox.run(
            [PYTHON, "-I", "-c", code, *map(str, secrets)], _stdin(b"the file to read")
        )
    finally:
        listener.close()
    out = _json(result)
    for i in range(len(secrets)):
        assert out[f"read {i}"] in (2, 13), (secrets[i], out)  # ENOENT / EACCES
    for attempt in ("agent", "tcp", "udp", "inet6", "pair"):
        assert out[attempt] == 1, (attempt, out)  # EPERM: seccomp refuses any socket
    assert (out["uid"], out["gid"]) == (65534, 65534)
    assert out["CapEff"] == out["CapBnd"] == "0000000000000000"
    assert out["root"] == sorted(["bin", "dev", "etc", "lib", "lib64", "proc", "sbin", "tmp"] +
                                 ["usr", "var"])  # fmt: skip
    assert out["env"] == ["LANG", "PATH", "PWD"]  # nothing of the app's environment
    assert out["stdin"] == "the file to read"  # its one input: a descriptor, not a path


def _stdin(data: bytes) -> int:
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    return read


def test_the_network_namespace_is_empty() -> None:
    """A second wall behind seccomp: the sandbox's network has only a loopback."""
    result = _probe(Sandbox(), "print(open('/proc/self/net/dev').read())")
    assert result.ok, result
    lines = result.stdout.decode().splitlines()[2:]
    assert [line.split(":")[0].strip() for line in lines if line.strip()] == ["lo"]


def test_the_host_tmp_run_and_data_are_not_there(ws: Workstation, tmp_path: Path) -> None:
    marker = Path("/tmp") / f"sdwm-marker-{os.getpid()}"
    marker.write_text("host tmp")
    try:
        code = f"""
        import os
        print(os.path.exists({str(marker)!r}), os.path.exists('/run'), os.path.exists('/root'),
              os.path.exists({str(ws.settings.data_dir)!r}), os.path.exists('/home'))
        """
        result = _probe(ws.sandbox, code)
    finally:
        marker.unlink()
    assert result.ok and result.stdout.split() == [b"False"] * 5, result


def test_time_output_memory_and_processes_are_bounded() -> None:
    tight = Limits(wall_seconds=1, output_bytes=100_000, memory_bytes=256 << 20, processes=8)
    sandbox = Sandbox(limits=tight)
    started = time.monotonic()
    slept = _probe(sandbox, "import time; time.sleep(60)")
    assert slept.timed_out and not slept.ok
    assert time.monotonic() - started < 10
    flood = _probe(sandbox, "import sys\nwhile True: sys.stdout.write('x' * 65536)")
    assert flood.output_truncated and len(flood.stdout) == 100_000
    hog = _probe(sandbox, "x = bytearray(1 << 30)\nprint('allocated')")
    assert not hog.ok and b"MemoryError" in hog.stderr
    bomb = _probe(
        sandbox,
        """
        import os, time
        n = 0
        try:
            for _ in range(200):
                if os.fork() == 0:
                    time.sleep(0.5)
                    os._exit(0)
                n += 1
        except OSError:
            pass
        print(n)
        """,
    )
    assert bomb.ok and int(bomb.stdout) < 8, bomb
    cpu = _probe(Sandbox(limits=Limits(cpu_seconds=1)), "while True: pass")
    assert cpu.returncode != 0 and not cpu.timed_out  # killed by its CPU limit (SIGXCPU/KILL)


def test_without_bubblewrap_nothing_runs_and_the_reason_is_clear(tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    sandbox = Sandbox(bwrap=str(tmp_path / "no-bwrap"))
    with pytest.raises(SandboxUnavailableError, match="bubblewrap is not installed"):
        _probe(sandbox, f"open({str(ran)!r}, 'w')")
    assert not ran.exists()
