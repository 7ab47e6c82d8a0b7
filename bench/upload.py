"""Upload benchmark: large files through the real HTTP stack, beside plain ``gpg --encrypt``.

A throwaway data dir (fast KDF: key derivation is not what is measured) is served by the
real server (``securedrop-wm serve``: gunicorn, gthread workers). One source logs in and
uploads files of random bytes, generated on the fly and streamed from a generator with a
``Content-Length``, as Tor Browser sends them. In the same run, plain ``gpg --encrypt``
with the server's options (same GnuPG home and recipients, ``--compress-algo none``,
``--trust-model always``) encrypts a file of the same size, before and after each
upload. The best of each is compared (on a shared machine, the least disturbed run),
and the ratio of the medians is printed beside it.

Run from the repository root (about a minute; 2 GiB of free disk for 500 MiB):

    python bench/upload.py                 # 50 MiB and 500 MiB, 3 uploads each
    python bench/upload.py --sizes 5,50 --repeat 1
    python bench/upload.py --against 04244f4   # and the same uploads to that commit

With ``--against REF``, a git checkout of REF serves a second drop of its own, side by
side: each round uploads to both, so the two are compared under the same load.

Printed per size: the upload's wall time (request sent to 302 received, the commit and
fsync included) and the raw gpg time; the gunicorn worker that handled the upload (the
one whose child gpg ran), its resident memory before, its peak during (VmHWM, reset
before each upload through ``/proc/PID/clear_refs``) and the growth; the peak of the
gpg child separately; then the CPU time of the client, the worker and gpg. Targets
(issue 2): at most 2x raw gpg's time, and the worker grows by less than 64 MiB for
500 MiB.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# Runs as ``python bench/upload.py``: the repository root holds the test helpers it reuses.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from securedrop_wm.crypto import GnuPG  # noqa: E402
from tests.live import LiveServer, free_port  # noqa: E402
from tests.security.source_http import HttpSource, stored_rows  # noqa: E402

MIB = 1024 * 1024
CHUNK = MIB
GROWTH_TARGET_MIB = 64
RATIO_TARGET = 2.0
FAST_KDF = ["--kdf-memory-kib", "1024", "--kdf-time-cost", "1"]


def random_chunks(size: int, seed: int) -> Iterator[bytes]:
    """``size`` random bytes, made a chunk at a time: never all in memory.

    An AES-CTR keystream: about three times cheaper than ``random.randbytes`` here, and
    the client shares the machine's cores with the server and gpg.
    """
    key = hashlib.sha256(f"bench-{seed}".encode()).digest()
    keystream = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    zeros = bytes(CHUNK)
    left = size
    while left:
        n = min(CHUNK, left)
        yield keystream.update(zeros[:n] if n < CHUNK else zeros)
        left -= n


def status_kib(pid: int, field_name: str) -> int:
    """A ``VmRSS``/``VmHWM``-style field of /proc/PID/status, in KiB (0 if gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    """Direct children of ``pid``, whichever of its threads started them."""
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return found


def command_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0; needs the same user or root)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@dataclass
class Sampler:
    """Watches the workers during an upload: which one runs gpg, and peak memories."""

    workers: list[int]
    interval: float = 0.02
    handler: int | None = None
    worker_peak_rss: dict[int, int] = field(default_factory=dict)
    gpg_peak_kib: int = 0
    gpg_cpu: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for worker in self.workers:
                rss = status_kib(worker, "VmRSS")
                self.worker_peak_rss[worker] = max(self.worker_peak_rss.get(worker, 0), rss)
                for child in children(worker):
                    if command_name(child) == "gpg":
                        self.handler = worker
                        peak = max(status_kib(child, "VmHWM"), status_kib(child, "VmRSS"))
                        self.gpg_peak_kib = max(self.gpg_peak_kib, peak)
                        # The last reading before gpg exits: close to its total.
                        self.gpg_cpu[child] = max(self.gpg_cpu.get(child, 0), cpu_seconds(child))


@dataclass
class Upload:
    """One upload through the server, as measured."""

    seconds: float
    before_kib: int
    peak_kib: int
    gpg_child_kib: int
    worker_cpu: float
    gpg_child_cpu: float
    client_cpu: float


@dataclass
class GpgRun:
    """One plain ``gpg --encrypt`` of the same file."""

    seconds: float
    cpu: float
    peak_kib: int


@dataclass
class Row:
    """Every measurement of one size: uploads interleaved with plain gpg runs."""

    size_mib: int
    uploads: list[Upload]
    gpg_runs: list[GpgRun]
    against: list[Upload] = field(default_factory=list)

    @property
    def upload_s(self) -> float:
        """The best upload: on a shared machine, the one least disturbed."""
        return min(u.seconds for u in self.uploads)

    @property
    def gpg_s(self) -> float:
        return min(g.seconds for g in self.gpg_runs)

    @property
    def ratio(self) -> float:
        return self.upload_s / self.gpg_s

    @property
    def median_ratio(self) -> float:
        return statistics.median(u.seconds for u in self.uploads) / statistics.median(
            g.seconds for g in self.gpg_runs
        )

    @property
    def worst(self) -> Upload:
        """The upload whose worker grew most."""
        return max(self.uploads, key=lambda u: u.peak_kib - u.before_kib)

    @property
    def growth_mib(self) -> float:
        return (self.worst.peak_kib - self.worst.before_kib) / 1024


def raw_gpg(home: Path, recipients: list[str], plain: Path, out: Path) -> tuple[float, float, int]:
    """Seconds, CPU seconds and peak RSS (KiB) of plain gpg encrypting ``plain`` with the
    server's options."""
    command = ["gpg", "--homedir", str(home), "--batch", "--yes", "--trust-model", "always"]
    command += ["--compress-algo", "none", "--no-encrypt-to"]
    for r in recipients:
        command += ["--recipient", r]
    command += ["--output", str(out), "--encrypt", str(plain)]
    peak = 0
    cpu_before = _children_cpu()
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Polled, not wait4's ru_maxrss: that one counts the forked Python before exec.
    while process.poll() is None:
        peak = max(peak, status_kib(process.pid, "VmHWM"))
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"gpg failed: {process.stderr.read() if process.stderr else ''}")
    out.unlink()
    return GpgRun(seconds, _children_cpu() - cpu_before, peak)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def responder_keys(base: Path) -> list[Path]:
    """A team key and one responder's, exported to files."""
    responders = GnuPG(base / "responders")
    try:
        keys = []
        for name in ("team", "responder"):
            fingerprint = responders.create_key(f"bench {name}", None)
            keys.append(base / f"{name}.asc")
            keys[-1].write_text(responders.export_public_key(fingerprint))
    finally:
        responders.close()
    return keys


def new_drop(base: Path, keys: list[Path], checkout: Path = ROOT) -> tuple[Path, list[str]]:
    """A data dir made by ``checkout``'s own ``securedrop-wm init`` for ``keys``."""
    data = base / "data"
    command = [sys.executable, "-m", "securedrop_wm", "init", "--data-dir", str(data), *FAST_KDF]
    for key in keys:
        command += ["--responder-key", str(key)]
    subprocess.run(command, check=True, capture_output=True, cwd=checkout)
    config = (data / "config.toml").read_text()
    line = next(x for x in config.splitlines() if x.startswith("responder_fingerprints"))
    return data, [part.strip(' "') for part in line.split("[")[1].rstrip("]").split(",")]


def upload_once(server: LiveServer, source: HttpSource, data: Path, size: int, seed: int) -> Upload:
    """Upload ``size`` bytes and measure the worker that handled it and its gpg child."""
    workers = server.worker_pids()
    before = {w: status_kib(w, "VmRSS") for w in workers}
    resettable = all(reset_peak(w) for w in workers)
    source.get("/submit")
    fields = {"category": "other", "urgency": "routine", "what_happened": "benchmark"}
    cpu_before = {w: cpu_seconds(w) for w in workers}
    with Sampler(workers) as sampler:
        client_cpu = _self_cpu()
        start = time.perf_counter()
        response = source.submit(
            fields, "bench.bin", (random_chunks(size, seed), size), allow_redirects=False
        )
        seconds = time.perf_counter() - start
        client_cpu = _self_cpu() - client_cpu
    if response.status_code != 302 or not response.headers["Location"].endswith("/thanks"):
        raise RuntimeError(f"upload refused ({response.status_code}): {response.text[:500]}")
    stored = [s for s in stored_rows(data, "submissions") if s["kind"] == "file"]
    if stored[-1]["size"] != size:
        raise RuntimeError(f"stored {stored[-1]['size']} bytes, sent {size}")
    handler = sampler.handler
    if handler is None:
        raise RuntimeError("no worker was seen running gpg: upload too fast to sample?")
    peak = status_kib(handler, "VmHWM") if resettable else 0
    return Upload(
        seconds=seconds,
        before_kib=before[handler],
        peak_kib=max(peak, sampler.worker_peak_rss.get(handler, 0)),
        gpg_child_kib=sampler.gpg_peak_kib,
        worker_cpu=cpu_seconds(handler) - cpu_before[handler],
        gpg_child_cpu=max(sampler.gpg_cpu.values()),
        client_cpu=client_cpu,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,500", help="MiB, comma-separated")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="uploads per size (best kept)")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway dir")
    parser.add_argument("--against", help="a git ref whose checkout serves a second drop")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    base = Path(tempfile.mkdtemp(prefix="sdwm-bench-upload-", dir="/tmp"))
    rows: list[Row] = []
    encrypted = base / "plain.gpg"
    limit = str((max(sizes) + 16) * MIB)
    older = base / "against"
    try:
        keys = responder_keys(base)
        data, recipients = new_drop(base, keys)
        server = LiveServer(
            data / "config.toml",
            free_port(),
            workers=args.workers,
            log_dir=base / "logs",
            env={"SDWM_MAX_REPORT_BYTES": limit},
        )
        other: tuple[LiveServer, HttpSource, Path] | None = None
        if args.against:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(older), args.against],
                check=True,
                capture_output=True,
            )
            other_data, _ = new_drop(base / "run-against", keys, older)
            other_server = LiveServer(
                other_data / "config.toml",
                free_port(),
                workers=args.workers,
                log_dir=base / "logs-against",
                env={"SDWM_MAX_REPORT_BYTES": limit},
                cwd=older,
            ).start()
            other = (other_server, HttpSource(other_server.url, {}), other_data)
            other[1].new_codename()
        with server:
            source = HttpSource(server.url, {})
            source.new_codename()
            for n, size_mib in enumerate(sizes):
                size = size_mib * MIB
                plain = base / "plain.bin"
                with plain.open("wb") as f:
                    for chunk in random_chunks(size, seed=1000 + n):
                        f.write(chunk)
                row = Row(size_mib, [], [])
                for _ in range(args.repeat):
                    # Interleaved, so a burst of load elsewhere hits both sides alike.
                    row.gpg_runs.append(raw_gpg(data / "gnupg", recipients, plain, encrypted))
                    row.uploads.append(upload_once(server, source, data, size, seed=n))
                    delete_stored(data)
                    if other is not None:
                        row.against.append(upload_once(*other[:2], other[2], size, seed=n))
                        delete_stored(other[2])
                row.gpg_runs.append(raw_gpg(data / "gnupg", recipients, plain, encrypted))
                plain.unlink()
                rows.append(row)
                print(f"  {size_mib} MiB done", file=sys.stderr)
            source.close()
            if other is not None:
                other[1].close()
                other[0].stop()
    finally:
        for home in (base / "data" / "gnupg", base / "run-against/data/gnupg", base / "responders"):
            subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
        if args.against:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(older)],
                capture_output=True,
                check=False,
            )
        if args.keep:
            print(f"kept {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)
    report(rows, args.workers, args.repeat)
    if args.against:
        report_against(rows, args.against)


def delete_stored(data: Path) -> None:
    """Remove the stored ciphertexts, so that hundreds of MiB do not pile up on disk."""
    for path in (data / "store").glob("*.gpg"):
        path.unlink()


def report(rows: list[Row], workers: int, repeat: int) -> None:
    """One table, then where the CPU went, then whether each target is met."""
    print(f"\nupload through gunicorn ({workers} workers) vs plain gpg --encrypt,")
    print(f"best of {repeat} uploads and {repeat + 1} gpg runs interleaved;")
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end\n")
    header = (
        f"{'size':>8} {'upload s':>9} {'MiB/s':>6} {'gpg s':>7} {'MiB/s':>6} {'ratio':>6}"
        f" {'(median)':>8} {'worker before':>14} {'peak':>9} {'growth':>9}"
        f" {'gpg child':>10} {'raw gpg':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        u = r.worst
        print(
            f"{r.size_mib:>4} MiB {r.upload_s:>9.2f} {r.size_mib / r.upload_s:>6.0f}"
            f" {r.gpg_s:>7.2f} {r.size_mib / r.gpg_s:>6.0f} {r.ratio:>5.2f}x"
            f" {r.median_ratio:>7.2f}x {u.before_kib / 1024:>10.1f} MiB"
            f" {u.peak_kib / 1024:>5.1f} MiB {r.growth_mib:>5.1f} MiB"
            f" {max(x.gpg_child_kib for x in r.uploads) / 1024:>6.1f} MiB"
            f" {max(g.peak_kib for g in r.gpg_runs) / 1024:>5.1f} MiB"
        )
    print("\nCPU seconds per upload, median (client, server worker and gpg share the cores):")
    print(f"{'size':>8} {'client':>8} {'worker':>8} {'gpg child':>10} {'raw gpg':>8}")
    for r in rows:
        print(
            f"{r.size_mib:>4} MiB"
            f" {statistics.median(u.client_cpu for u in r.uploads):>8.2f}"
            f" {statistics.median(u.worker_cpu for u in r.uploads):>8.2f}"
            f" {statistics.median(u.gpg_child_cpu for u in r.uploads):>10.2f}"
            f" {statistics.median(g.cpu for g in r.gpg_runs):>8.2f}"
        )
    print()
    for r in rows:
        ok_time = r.ratio <= RATIO_TARGET
        ok_memory = r.growth_mib < GROWTH_TARGET_MIB
        print(
            f"{r.size_mib} MiB: time {r.ratio:.2f}x raw gpg "
            f"({'meets' if ok_time else 'MISSES'} <= {RATIO_TARGET}x); worker grew "
            f"{r.growth_mib:.1f} MiB ({'meets' if ok_memory else 'MISSES'}"
            f" < {GROWTH_TARGET_MIB} MiB)"
        )


def report_against(rows: list[Row], ref: str) -> None:
    """This checkout's uploads beside the same uploads to ``ref``, best and median."""
    print(f"\nthis checkout vs {ref}, same uploads interleaved (target: at most 1.15x):")
    for r in rows:
        best = r.upload_s / min(u.seconds for u in r.against)
        median = statistics.median(u.seconds for u in r.uploads) / statistics.median(
            u.seconds for u in r.against
        )
        growth = max(u.peak_kib - u.before_kib for u in r.against) / 1024
        print(
            f"{r.size_mib:>4} MiB: {r.upload_s:.2f} s vs {min(u.seconds for u in r.against):.2f} s"
            f" = {best:.2f}x (median {median:.2f}x); {ref}'s worker grew {growth:.1f} MiB"
        )


if __name__ == "__main__":
    main()
