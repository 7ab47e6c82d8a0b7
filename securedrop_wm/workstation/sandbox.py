"""A sandbox for code that reads a stranger's file: bubblewrap, limits, seccomp.

:meth:`Sandbox.run` runs one command in an empty mount namespace that holds only ``/usr``
(and the ``/lib``, ``/bin`` links into it), the loader cache, the font configuration, a
private ``/proc``, a minimal ``/dev``, a small private ``/tmp`` and whatever read-only
folders the caller binds (the renderer: the venv's ``site-packages``, which holds no
secrets). Not the data folder, not the host's ``/tmp``, ``/run`` or home: no team key, no
case database, no gpg-agent socket. The file to read comes in as standard input, an
open descriptor, never a path. Every namespace is new (no network, no IPC, its own
PIDs), the command runs as uid/gid 65534 with no capabilities, an empty environment and
a new session, and dies with the app. When the app runs as root, bubblewrap itself is
started as 65534 too, so even an escape from the namespaces lands as ``nobody``.
``prlimit`` sets address space, CPU seconds, file size, open files and processes before
the command starts; on x86_64 a seccomp filter refuses sockets, ``ptrace``, mounts,
keyrings, ``bpf``, ``io_uring`` and the like. The app waits a bounded wall-clock time
and reads a bounded amount of output.

:meth:`Sandbox.check` runs a cheap self-test once per :class:`Sandbox` (one lives on
each :class:`~.services.Workstation`): when it fails (no bubblewrap, user namespaces
refused, ...), nothing is parsed and callers get :class:`SandboxUnavailableError`.
"""

from __future__ import annotations

import os
import platform
import selectors
import signal
import struct
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import WorkstationError

NOBODY = 65534
# Classic BPF for seccomp (linux/filter.h, linux/seccomp.h, linux/audit.h).
_BPF_LD_W_ABS, _BPF_JEQ_K, _BPF_JGE_K, _BPF_RET_K = 0x20, 0x15, 0x35, 0x06
_SECCOMP_RET_ALLOW, _SECCOMP_RET_ERRNO, _SECCOMP_RET_KILL = 0x7FFF0000, 0x00050000, 0x80000000
_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_BIT = 0x40000000
_EPERM = 1
# x86_64 system calls refused with EPERM: every socket (so no network, no Unix socket
# such as gpg-agent's), tracing, mounts and namespaces, keyrings, bpf, io_uring, modules.
_REFUSED_X86_64 = {
    41: "socket",
    42: "connect",
    53: "socketpair",
    101: "ptrace",
    135: "personality",
    155: "pivot_root",
    161: "chroot",
    165: "mount",
    166: "umount2",
    175: "init_module",
    176: "delete_module",
    246: "kexec_load",
    248: "add_key",
    249: "request_key",
    250: "keyctl",
    272: "unshare",
    298: "perf_event_open",
    303: "name_to_handle_at",
    304: "open_by_handle_at",
    308: "setns",
    310: "process_vm_readv",
    311: "process_vm_writev",
    313: "finit_module",
    321: "bpf",
    323: "userfaultfd",
    425: "io_uring_setup",
    426: "io_uring_enter",
    427: "io_uring_register",
    428: "open_tree",
    429: "move_mount",
    430: "fsopen",
    431: "fsconfig",
    432: "fsmount",
    433: "fspick",
    442: "mount_setattr",
}


class SandboxUnavailableError(WorkstationError):
    """Raised when the sandbox cannot be set up here: nothing is parsed; says why."""


@dataclass(frozen=True)
class Limits:
    """What a sandboxed command may use."""

    memory_bytes: int = 1024 * 1024 * 1024
    cpu_seconds: int = 20
    file_bytes: int = 16 * 1024 * 1024
    open_files: int = 64
    processes: int = 16
    wall_seconds: float = 60.0
    output_bytes: int = 128 * 1024 * 1024


@dataclass(frozen=True)
class Result:
    """What a sandboxed command did: its exit status (negative: killed by that signal),
    its output (at most the limit), and whether it was stopped for time or output."""

    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool
    output_truncated: bool

    @property
    def ok(self) -> bool:
        """It exited 0 within its time and output limits."""
        return self.returncode == 0 and not self.timed_out and not self.output_truncated


def seccomp_program() -> bytes | None:
    """The seccomp filter as bubblewrap's ``--seccomp`` reads it, or ``None`` when this
    machine is not x86_64 (the filter is built for its system call numbers only)."""
    if platform.machine() != "x86_64":
        return None
    refused = sorted(_REFUSED_X86_64)
    ops: list[tuple[int, int, int, int]] = [(_BPF_LD_W_ABS, 0, 0, 4)]  # arch
    # If the arch is not x86_64: kill (jump over everything to the last instruction).
    body = 2 + len(refused) + 1  # load nr, x32 check, one test per call, allow
    ops.append((_BPF_JEQ_K, 0, body + 1, _AUDIT_ARCH_X86_64))
    ops.append((_BPF_LD_W_ABS, 0, 0, 0))  # system call number
    # x32 ABI calls (nr | 0x40000000) would bypass the numbers below: refuse them all.
    ops.append((_BPF_JGE_K, len(refused) + 1, 0, _X32_BIT))
    for i, nr in enumerate(refused):
        ops.append((_BPF_JEQ_K, len(refused) - i, 0, nr))
    ops.append((_BPF_RET_K, 0, 0, _SECCOMP_RET_ALLOW))
    ops.append((_BPF_RET_K, 0, 0, _SECCOMP_RET_ERRNO | _EPERM))
    ops.append((_BPF_RET_K, 0, 0, _SECCOMP_RET_KILL))
    return b"".join(struct.pack("=HBBI", *op) for op in ops)


@dataclass
class Sandbox:
    """Runs commands under bubblewrap; one per :class:`~.services.Workstation`."""

    bwrap: str = "/usr/bin/bwrap"
    limits: Limits = field(default_factory=Limits)
    _problem: str | None = field(default=None, init=False, repr=False)
    _checked: bool = field(default=False, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def check(self) -> None:
        """Make sure the sandbox can be set up here (a self-test, run once).

        :raises SandboxUnavailableError: saying why it cannot.
        """
        with self._lock:
            if not self._checked:
                self._problem, self._checked = self._self_test()
            problem = self._problem
        if problem is not None:
            raise SandboxUnavailableError(problem)

    def _self_test(self) -> tuple[str | None, bool]:
        """What keeps the sandbox from working here (``None``: nothing), and whether
        that is settled for this process (a self-test that ran out of time is not)."""
        if not Path(self.bwrap).is_file() or not os.access(self.bwrap, os.X_OK):
            return f"bubblewrap is not installed ({self.bwrap} is missing)", True
        try:
            with open(os.devnull, "rb") as empty:
                result = self._run(["/usr/bin/true"], empty.fileno(), (), self.limits, 10.0)
        except OSError as e:
            return f"bubblewrap cannot be started ({e.strerror})", True
        if result.timed_out:
            return "the sandbox's self-test ran out of time (the machine is busy)", False
        if not result.ok:
            said = result.stderr.decode("utf-8", "replace").strip()[:300]
            return f"bubblewrap cannot set up a sandbox here ({said or result.returncode})", True
        return None, True

    def run(
        self,
        argv: Sequence[str],
        input_fd: int,
        *,
        binds: Sequence[tuple[Path, str]] = (),
        limits: Limits | None = None,
        env: Sequence[tuple[str, str]] = (),
    ) -> Result:
        """Run ``argv`` in the sandbox with ``input_fd`` as its standard input.

        ``binds`` are (host folder or file, path inside) pairs mounted read-only.

        :raises SandboxUnavailableError: the sandbox cannot be set up here.
        """
        self.check()
        chosen = limits or self.limits
        return self._run(argv, input_fd, binds, chosen, chosen.wall_seconds, env)

    def _argv(
        self,
        argv: Sequence[str],
        binds: Sequence[tuple[Path, str]],
        limits: Limits,
        env: Sequence[tuple[str, str]],
        seccomp_fd: int | None,
    ) -> list[str]:
        cmd = [self.bwrap, "--unshare-all", "--new-session", "--die-with-parent"]
        cmd += ["--cap-drop", "ALL", "--uid", str(NOBODY), "--gid", str(NOBODY)]
        cmd += ["--clearenv", "--setenv", "PATH", "/usr/bin", "--setenv", "LANG", "C.UTF-8"]
        for name, value in env:
            cmd += ["--setenv", name, value]
        cmd += ["--ro-bind", "/usr", "/usr"]
        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            link = Path("/") / top
            if link.is_symlink():
                cmd += ["--symlink", os.readlink(link), str(link)]
            elif link.is_dir():
                cmd += ["--ro-bind", str(link), str(link)]
        for extra in ("/etc/ld.so.cache", "/etc/fonts", "/var/cache/fontconfig"):
            if Path(extra).exists():
                cmd += ["--ro-bind", extra, extra]
        for host, inside in binds:
            cmd += ["--ro-bind", str(host), inside]
        cmd += ["--proc", "/proc", "--dev", "/dev"]
        # A private, size-limited /tmp inside, not the host's.
        cmd += ["--size", str(limits.file_bytes), "--tmpfs", "/tmp", "--chdir", "/tmp"]  # noqa: S108
        if seccomp_fd is not None:
            cmd += ["--seccomp", str(seccomp_fd)]
        cmd += ["--", "/usr/bin/prlimit", f"--as={limits.memory_bytes}"]
        cmd += [f"--cpu={limits.cpu_seconds}", f"--fsize={limits.file_bytes}"]
        cmd += [f"--nofile={limits.open_files}", f"--nproc={limits.processes}", "--", *argv]
        return cmd

    def _run(
        self,
        argv: Sequence[str],
        input_fd: int,
        binds: Sequence[tuple[Path, str]],
        limits: Limits,
        wall_seconds: float,
        env: Sequence[tuple[str, str]] = (),
    ) -> Result:
        program = seccomp_program()
        seccomp_fd = None
        if program is not None:
            seccomp_fd = os.memfd_create("sdwm-seccomp", 0)
            os.write(seccomp_fd, program)
            os.lseek(seccomp_fd, 0, os.SEEK_SET)
        # Started as nobody when the app is root: bubblewrap needs no privilege.
        as_nobody = os.geteuid() == 0
        try:
            proc = subprocess.Popen(  # noqa: S603 - argv is built here, no shell
                self._argv(argv, binds, limits, env, seccomp_fd),
                stdin=input_fd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=() if seccomp_fd is None else (seccomp_fd,),
                start_new_session=True,
                env={},
                cwd="/",
                user=NOBODY if as_nobody else None,
                group=NOBODY if as_nobody else None,
                extra_groups=[] if as_nobody else None,
            )
        finally:
            if seccomp_fd is not None:
                os.close(seccomp_fd)
        return _collect(proc, limits.output_bytes, wall_seconds)


def _collect(proc: subprocess.Popen[bytes], max_output: int, wall_seconds: float) -> Result:
    """Read stdout (up to ``max_output``) and a little stderr until exit or the deadline."""
    assert proc.stdout is not None and proc.stderr is not None
    deadline = time.monotonic() + wall_seconds
    out, err = bytearray(), bytearray()
    timed_out = truncated = False
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=min(left, 1.0)):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buffer: bytearray = key.data
                buffer += chunk
                if buffer is out and len(out) > max_output:
                    truncated = True
                    del out[max_output:]
                if buffer is err and len(err) > 16384:
                    del err[16384:]
            if truncated:
                break
    if timed_out or truncated:
        _kill(proc)
    try:
        returncode = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _kill(proc)
        timed_out = True
        returncode = proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    return Result(returncode, bytes(out), bytes(err), timed_out, truncated)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
