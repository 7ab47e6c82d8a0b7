"""What a source waits for, with production Argon2id parameters, beside what it is made of.

Two flows through the real server (gunicorn, over HTTP on loopback):
- a new source's first report: codename page, "I have saved it" (Argon2id, a new
  OpenPGP key), the report form, a text report (gpg encrypts it);
- a returning source's login with ten replies waiting: Argon2id, then ten decryptions
  with the source's key.

Then, in the same run, the parts on their own: one Argon2id derivation, one key
creation, one encryption of a report, one decryption of a reply. The difference between
a flow and the sum of its parts is the web stack, the database and the network.

Run from the repository root:  python -m bench.source_latency [--runs 10]
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from securedrop_wm.codenames import generate_codename
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop, open_drop
from securedrop_wm.kdf import derive
from securedrop_wm.models import Source
from securedrop_wm.settings import KdfParams, load_settings
from securedrop_wm.sources import add_reply
from tests.live import LiveServer, free_port
from tests.load.client import SourceClient, accepted

REPORT = "They published my home address on a talk page and keep restoring it. " * 8
REPLY = "We have read your report. Here is what we suggest you do first. " * 10


def median_ms(run: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median and maximum wall time of ``run``, in milliseconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    runs = args.runs

    base = Path(tempfile.mkdtemp(prefix="sdwm-lat-", dir="/tmp"))
    responders = GnuPG(base / "responders")
    try:
        team = responders.create_key("Response team (latency bench)", None)
        (base / "team.asc").write_text(responders.export_public_key(team))
        data = base / "data"
        subprocess.run(
            [sys.executable, "-m", "securedrop_wm", "init", "--data-dir", str(data)]
            + ["--responder-key", str(base / "team.asc")],
            check=True,
            capture_output=True,
        )
        settings = load_settings(data / "config.toml", environ={})
        assert settings.kdf == KdfParams(), "the bench must use production KDF parameters"
        drop = open_drop(settings)

        with LiveServer(data / "config.toml", free_port()) as server:

            def first_report() -> None:
                client = SourceClient(server.url)
                codename, _ = client.new_codename()
                assert codename and accepted(client.report(REPORT))
                client.close()

            codename = _source_with_replies(server.url, drop, 10)

            def returning_login() -> None:
                client = SourceClient(server.url)
                page = client.login(codename)
                assert page.text.count('class="reply"') == 10, "ten replies shown"
                client.close()

            first_report()  # warm the workers up
            new_ms = median_ms(first_report, runs)
            login_ms = median_ms(returning_login, runs)

        peppers = drop.peppers
        kdf_ms = median_ms(lambda: derive(generate_codename(), peppers, settings.kdf), runs)
        passphrase = secrets.token_hex(32)
        key_ms = median_ms(lambda: drop.gpg.create_key("bench source", passphrase), runs)
        out = base / "message.gpg"
        encrypt_ms = median_ms(
            lambda: drop.gpg.encrypt_bytes(REPORT.encode(), settings.responder_fingerprints, out),
            runs,
        )
        source_key = drop.gpg.create_key("bench reader", passphrase)
        drop.gpg.encrypt_bytes(REPLY.encode(), [source_key], out)
        decrypt_ms = median_ms(lambda: drop.gpg.decrypt_file(out, passphrase), runs)
        drop.close()
    finally:
        responders.close()
        subprocess.run(["gpgconf", "--homedir", str(base / "data" / "gnupg"), "--kill", "all"])
        shutil.rmtree(base, ignore_errors=True)

    k = KdfParams()
    print(
        f"Argon2id t={k.time_cost}, m={k.memory_kib // 1024} MiB, p={k.parallelism} (production);"
        f" gunicorn 2 workers x 4 threads; median of {runs} runs (max), milliseconds"
    )
    flows = [
        (
            "new source: codename, key, first report",
            new_ms,
            [
                ("Argon2id derivation", 1, kdf_ms),
                ("gpg: create the source's key", 1, key_ms),
                ("gpg: encrypt the report", 1, encrypt_ms),
            ],
        ),
        (
            "returning source: login, 10 replies",
            login_ms,
            [
                ("Argon2id derivation", 1, kdf_ms),
                ("gpg: decrypt a reply", 10, decrypt_ms),
            ],
        ),
    ]
    for flow, (median, worst), parts in flows:
        print(f"{flow + ' (over HTTP)':<58} {median:>6.0f}   (max {worst:.0f})")
        total = 0.0
        for label, times, (part, part_worst) in parts:
            total += times * part
            each = f"{times:>2} x {part:>6.1f} (max {part_worst:>4.0f})"
            print(f"  {label:<30} {each} = {times * part:>6.0f}")
        print(f"  {'sum of the parts':<56} {total:>6.0f}")
        print(f"  {'the rest: web stack, database, loopback':<56} {median - total:>6.0f}")


def _source_with_replies(url: str, drop: Drop, replies: int) -> str:
    """A source made over HTTP, with ``replies`` replies added as an admin would."""
    client = SourceClient(url)
    codename, _ = client.new_codename()
    client.close()
    assert codename
    with drop.sessions() as db:
        designation = db.scalars(select(Source.designation).order_by(Source.id.desc())).first()
    assert designation
    for _ in range(replies):
        add_reply(drop, designation, REPLY)
    return codename


if __name__ == "__main__":
    main()
