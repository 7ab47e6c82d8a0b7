"""Import and decrypt an export bundle of 1,000 submissions, beside a plain gpg loop.

A real server data dir receives reports through the core (a message and three files of
2 to 64 KiB each: a JPEG, a PNG and a PDF or random bytes, the images and PDFs small
real ones made with Pillow), writes one export bundle, and the workstation side then
imports it. In the same run, on the same ciphertexts and with the same secret key, a
plain loop of ``gpg --decrypt`` gives the baseline. Target: the import takes at most
1.0x the loop.

Run from the repository root:

    python -m bench.bundle_import                  # 1,000 submissions
    python -m bench.bundle_import --submissions 200 --rounds 1
    python -m bench.bundle_import --workers 1     # the import with one gpg at a time

Printed: the plain loop (run before and after the others, averaged),
``verify_export_bundle`` plus one decryption per item (the bundle layer alone; also with
two gpg processes at a time, as a 2-core workstation could), and the workstation's
``import_bundle`` (verify, decrypt ``--workers`` gpg processes at a time, hash, case
database; attachments are not parsed at import) when that package is present.
All of them use one keyring, the workstation's. The load of the machine matters: run it
on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from securedrop_wm import sources
from securedrop_wm.bundles import export_bundle, verify_export_bundle
from securedrop_wm.cli import main as cli
from securedrop_wm.codenames import Codename, generate_codename
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop, open_drop
from securedrop_wm.settings import load_settings

FILES_PER_REPORT = 3
REPORTS_PER_SOURCE = 10


def _armored_secret(home: Path, fingerprint: str) -> str:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--armor", "--export-secret-keys", fingerprint],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _server(base: Path, responders: GnuPG, team: str, ws_key: str) -> Drop:
    (base / "team.asc").write_text(responders.export_public_key(team))
    (base / "ws.asc").write_text(responders.export_public_key(ws_key))
    result = CliRunner().invoke(
        cli,
        ["init", "--data-dir", str(base / "server"), "--responder-key", str(base / "team.asc")]
        + ["--workstation-key", str(base / "ws.asc")]
        + ["--kdf-memory-kib", "1024", "--kdf-time-cost", "1"],
    )
    assert result.exit_code == 0, result.output
    return open_drop(load_settings(base / "server" / "config.toml", environ={}))


def _attachment(k: int, rng: random.Random) -> tuple[str, bytes]:
    """File ``k`` of a report: a real JPEG, a real PNG, then a real PDF or random bytes,
    each 2 to 64 KiB (noise does not compress, so the size follows the pixels)."""
    if k == 2 and rng.random() < 0.5:
        return "bin", rng.randbytes(rng.randint(2048, 65536))
    side = rng.randint(24, 110)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    kind = ("jpeg", "png", "pdf")[k]
    out = io.BytesIO()
    image.save(out, kind.upper(), **({"quality": 90} if kind == "jpeg" else {}))
    return kind.replace("jpeg", "jpg"), out.getvalue()


def _fill(drop: Drop, submissions: int, rng: random.Random) -> tuple[int, int]:
    """Submit reports until ``submissions`` ciphertexts exist; return (reports, sources)."""
    per_report = FILES_PER_REPORT + 1
    reports = submissions // per_report
    login = None
    n_sources = 0
    for n in range(reports):
        if n % REPORTS_PER_SOURCE == 0:
            login = sources.create_source(drop, Codename(generate_codename()))
            n_sources += 1
        assert login is not None
        files = []
        for k in range(FILES_PER_REPORT):
            extension, data = _attachment(k, rng)
            pending = sources.start_file(drop, f"evidence-{n}-{k}.{extension}")
            pending.writer.write(data)
            files.append(pending)
        fields = sources.ReportFields(
            category="harassment", what_happened=f"Report {n}: " + "x" * rng.randint(100, 4000)
        )
        sources.submit_report(drop, login, fields, files)
    return reports, n_sources


def _plain_gpg_loop(home: Path, ciphertexts: list[Path], out: Path) -> float:
    out.mkdir()
    start = time.perf_counter()
    for path in ciphertexts:
        subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--quiet", "--yes"]
            + ["--output", str(out / path.name), "--decrypt", str(path)],
            check=True,
            capture_output=True,
        )
    elapsed = time.perf_counter() - start
    shutil.rmtree(out)
    return elapsed


def _bundle_layer(gpg: GnuPG, bundle: Path, server: str, work: Path, workers: int = 1) -> float:
    """Verify the bundle, then decrypt every item with the drop's own GnuPG wrapper,
    in ``workers`` gpg processes at a time."""
    out = work / "plain"
    out.mkdir()
    start = time.perf_counter()
    with verify_export_bundle(bundle, gpg, server, work) as verified:

        def decrypt(item_id: str) -> None:
            gpg.decrypt_to_file(verified.item_path(item_id), out / item_id)

        ids = [item.id for item in verified.manifest.items]
        if workers == 1:
            for item_id in ids:
                decrypt(item_id)
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(decrypt, ids))
    elapsed = time.perf_counter() - start
    shutil.rmtree(out)
    return elapsed


def _keyring(base: Path, responders: GnuPG, team: str, drop: Drop) -> GnuPG:
    """A workstation-like keyring: the team's secret key and the server key, imported.

    (Imported, not generated: a keyring whose keys were made in it is ultimately trusted
    and gpg spends about 2 ms per call checking its trust database.)
    """
    gpg = GnuPG(base / "keyring")
    gpg.import_keys(_armored_secret(responders.home, team))
    gpg.import_keys(drop.gpg.export_public_key(drop.settings.signing_fingerprint))
    return gpg


class _Workstations:
    """Fresh real workstations (``workstation init``), one per round of the import."""

    def __init__(
        self, base: Path, responders: GnuPG, team: str, ws_key: str, drop: Drop, bundle: Path
    ) -> None:
        self.base, self.bundle = base, bundle
        self.homes: list[Path] = []
        keys = base / "keys"
        keys.mkdir()
        (keys / "team.asc").write_text(_armored_secret(responders.home, team))
        (keys / "ws.asc").write_text(_armored_secret(responders.home, ws_key))
        self.server = drop.settings.signing_fingerprint
        (keys / "server.asc").write_text(drop.gpg.export_public_key(self.server))
        self.keys = keys

    def setup(self) -> Path:
        """Initialize one more workstation; return its config path."""
        from securedrop_wm.workstation.cli import workstation as ws_cli

        folder = self.base / f"ws{len(self.homes)}"
        keys = self.keys
        result = CliRunner().invoke(
            ws_cli,
            ["init", "--data-dir", str(folder), "--team-key", str(keys / "team.asc")]
            + ["--signing-key", str(keys / "ws.asc"), "--server-key", str(keys / "server.asc")]
            + ["--server-fingerprint", self.server, "--admin", "bench"],
            env={"SDWM_WS_ADMIN_PASSWORD": "bench password for the import benchmark"},
        )
        if result.exit_code != 0:
            raise RuntimeError(f"workstation init failed: {result.output.strip()}")
        self.homes.append(folder / "gnupg")
        return folder / "config.toml"

    def time_import(self, config: Path, workers: int) -> float:
        """Seconds the workstation takes to import the bundle (verify, decrypt with
        ``workers`` gpg processes at a time, record)."""
        from securedrop_wm.workstation.importing import import_bundle
        from securedrop_wm.workstation.services import open_workstation
        from securedrop_wm.workstation.settings import load_workstation_settings

        ws = open_workstation(load_workstation_settings(config, environ={}))
        try:
            start = time.perf_counter()
            imported = import_bundle(ws, "bench", self.bundle, workers=workers)
            elapsed = time.perf_counter() - start
            assert imported.reports > 0 and not imported.already_imported
            return elapsed
        finally:
            ws.close()


def _workstations(
    base: Path, responders: GnuPG, team: str, ws_key: str, drop: Drop, bundle: Path
) -> _Workstations | None:
    try:
        import securedrop_wm.workstation.importing  # noqa: F401
    except ImportError:
        return None
    return _Workstations(base, responders, team, ws_key, drop, bundle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs; medians shown")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--workers", type=int, default=2, help="gpg processes at a time in the import"
    )
    args = parser.parse_args()
    os.umask(0o077)
    base = Path(tempfile.mkdtemp(prefix="sdwm-bench-", dir="/tmp"))
    responders = GnuPG(base / "resp")
    drop = None
    workstations = None
    try:
        team = responders.create_key("Bench team", None)
        ws_key = responders.create_key("Bench workstation", None)
        drop = _server(base, responders, team, ws_key)
        start = time.perf_counter()
        reports, n_sources = _fill(drop, args.submissions, random.Random(args.seed))
        setup = time.perf_counter() - start
        bundle = base / "export.tar"
        start = time.perf_counter()
        manifest = export_bundle(drop, bundle)
        export_time = time.perf_counter() - start
        server = drop.settings.signing_fingerprint
        # Every decryption below uses one kind of keyring: a workstation's when there is
        # one (each round imports into a fresh workstation, set up outside the timing).
        workstations = _workstations(base, responders, team, ws_key, drop, bundle)
        configs = [workstations.setup() for _ in range(args.rounds)] if workstations else []
        keyring = (
            GnuPG(workstations.homes[0]) if workstations else _keyring(base, responders, team, drop)
        )
        # The same ciphertexts as files, for the plain loop
        work = base / "work"
        work.mkdir()
        plain_in = base / "ciphertexts"
        plain_in.mkdir()
        files = []
        with verify_export_bundle(bundle, keyring, server, work) as verified:
            for item in verified.manifest.items:
                target = plain_in / f"{item.id}.gpg"
                shutil.copyfile(verified.item_path(item.id), target)
                files.append(target)
        # Warm-up: the agent has the key loaded, the files are in the page cache.
        _plain_gpg_loop(keyring.home, files[:20], base / "warm")

        times: dict[str, list[float]] = {}
        for n in range(args.rounds):
            runs: list[tuple[str, Callable[[], float]]] = [
                ("loop", lambda: _plain_gpg_loop(keyring.home, files, base / "out")),
                ("layer", lambda: _bundle_layer(keyring, bundle, server, work)),
                ("parallel", lambda: _bundle_layer(keyring, bundle, server, work, workers=2)),
            ]
            if workstations:
                runs.append(("import", partial(workstations.time_import, configs[n], args.workers)))
            for name, run in runs:
                times.setdefault(name, []).append(run())

        size = bundle.stat().st_size / (1 << 20)
        print(
            f"{len(manifest.items)} submissions ({reports} reports, {n_sources} sources), "
            f"bundle {size:.1f} MiB; reports submitted in {setup:.1f} s, "
            f"export written in {export_time:.2f} s; {args.rounds} interleaved round(s)"
        )
        loop = statistics.median(times["loop"])
        print(f"{'median of the rounds':34}{'seconds':>9}{'per item':>10}{'vs loop':>9}   runs")
        labels = {
            "loop": "plain gpg --decrypt loop",
            "layer": "verify + decrypt (bundles.py)",
            "parallel": "  same, 2 gpg processes at a time",
            "import": f"workstation import_bundle, {args.workers} gpg",
        }
        for name, label in labels.items():
            if name not in times:
                continue
            seconds = statistics.median(times[name])
            per = seconds / len(files) * 1000
            runs_text = " ".join(f"{t:.2f}" for t in times[name])
            print(f"{label:34}{seconds:>9.2f}{per:>8.1f}ms{seconds / loop:>8.2f}x   {runs_text}")
        print("target: the workstation import takes at most 1.00x the plain loop")
    finally:
        if drop is not None:
            drop.close()
        homes = [base / "resp", base / "keyring", *(workstations.homes if workstations else [])]
        for home in homes:
            subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
