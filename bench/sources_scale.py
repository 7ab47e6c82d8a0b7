"""What a new source and a report cost at 10, 1,000 and 10,000 sources: flat, or not.

A drop is made with the real ``securedrop-wm init`` (cheap Argon2id parameters: the key
derivation costs the same whatever the number of sources and would only hide what
does not), then grown to each size with the bulk fixture of tests/load/bulk.py (one
real source key made by the production code, its files copied once per source under
names of their own, rows inserted in one transaction). At each size it times
``sources.create_source`` (key made in a throwaway home, moved in) and
``sources.submit_report`` (a text report, encrypted to the team key), ``--runs`` times
each, and prints the median and the slowest, and the ratio of each median to the first
size's.

``--legacy`` makes the new sources' keys as before this change (into the home's
keybox, every file of the home re-dated): the bulk sources' files are still copies, not
entries of the home's keybox, so it shows the re-dating part of the old cost only.

Run from the repository root:  python -m bench.sources_scale [--sizes 10 1000 10000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from bench.source_latency import median_ms
from securedrop_wm import sources
from securedrop_wm.codenames import generate_codename
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import open_drop
from securedrop_wm.models import Source
from securedrop_wm.settings import load_settings
from tests.load.bulk import add_sources


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--legacy", action="store_true")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="sdwm-scale-", dir="/tmp"))
    responders = GnuPG(base / "responders")
    try:
        team = responders.create_key("Response team (scale bench)", None)
        (base / "team.asc").write_text(responders.export_public_key(team))
        data = base / "data"
        subprocess.run(
            [sys.executable, "-m", "securedrop_wm", "init", "--data-dir", str(data)]
            + ["--responder-key", str(base / "team.asc")]
            + ["--kdf-memory-kib", "1024", "--kdf-time-cost", "1"],
            check=True,
            capture_output=True,
        )
        drop = open_drop(load_settings(data / "config.toml", environ={}))
        if args.legacy:
            create = drop.gpg.create_key

            def old_create(
                name: str, passphrase: str | None, days: int = 0, own_keybox: bool = False
            ) -> str:  # the bulk fixture's template keeps its own keybox: it copies it
                return create(name, passphrase, days, own_keybox=own_keybox and "bulk" in name)

            drop.gpg.create_key = old_create  # type: ignore[method-assign,assignment]
        fields = sources.ReportFields(category="doxxing", what_happened="a report " * 50)
        rows = []
        first: tuple[float, float] | None = None
        for size in sorted(args.sizes):
            with drop.sessions() as db:
                have = db.scalar(select(func.count(Source.id))) or 0
            if size > have:
                start = time.perf_counter()
                add_sources(drop, size - have)
                grown = time.perf_counter() - start
                # The bulk files are still being written back: the first fsyncs of the
                # measured runs would wait for them.
                os.sync()
            else:
                grown = 0.0
            logins = []

            def new_source() -> None:
                logins.append(sources.create_source(drop, generate_codename()))  # noqa: B023

            def report() -> None:
                sources.submit_report(drop, logins.pop(), fields, [])  # noqa: B023

            new_source()  # warm up: the agent, the caches
            report()
            create_ms = median_ms(new_source, args.runs)
            report_ms = median_ms(report, args.runs)
            if first is None:
                first = (create_ms[0], report_ms[0])
            rows.append((size, grown, create_ms, report_ms, first))
        print(
            f"{'sources':>8} {'bulk s':>7} | {'new source ms (median/max)':>27} {'x':>5} |"
            f" {'report ms (median/max)':>23} {'x':>5}"
        )
        for size, grown, (cm, cx), (rm, rx), (c0, r0) in rows:
            print(
                f"{size:>8} {grown:>7.1f} | {cm:>18.1f} / {cx:>6.1f} {cm / c0:>5.2f} |"
                f" {rm:>14.1f} / {rx:>6.1f} {rm / r0:>5.2f}"
            )
        drop.close()
    finally:
        responders.close()
        subprocess.run(
            ["gpgconf", "--homedir", str(base / "data/gnupg"), "--kill", "gpg-agent"], check=False
        )
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
