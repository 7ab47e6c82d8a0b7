"""Load: concurrent sources against the real server, then every accepted report checked.

Each virtual source is a thread with its own cookies. It starts as a new source, then
keeps choosing: send a report with a file of 1 to 20 MiB, send a text-only report, come
back later with its codename (or another source's), or give way to a brand-new source.
When the time is up, an export bundle is written with the real CLI, verified against the
pinned server key as the workstation does, and every item decrypted: each accepted
report must be there exactly once, byte for byte, and nothing else.

Run from the repository root (production Argon2id parameters; about 6 minutes):

    python -m bench.load                       # 50 sources, 60 s, 2x4 (default) vs 2x16
    python -m bench.load --sources 10 --seconds 10 --servers 2x4

A server configuration ``WxT`` is W gunicorn workers of T threads each.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from securedrop_wm.crypto import GnuPG
from tests.live import LiveServer, free_port
from tests.load.generator import MIB, run_load, summary
from tests.load.verify import compare, read_export


def _gpg_baseline(home: Path, fingerprint: str, work: Path) -> float:
    """MiB/s of plain gpg encrypting 64 MiB to the team key: the ceiling for one upload."""
    plain = work / "baseline.bin"
    with plain.open("wb") as f:
        for _ in range(64):
            f.write(secrets.token_bytes(MIB))
    start = time.perf_counter()
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--yes", "--trust-model", "always"]
        + ["--compress-algo", "none", "-r", fingerprint, "-o", str(work / "b.gpg"), "-e"]
        + [str(plain)],
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - start
    plain.unlink()
    (work / "b.gpg").unlink()
    return 64 / seconds


def new_drop(base: Path, team_key: Path, checkout: Path | None = None) -> Path:
    """A data dir made by the real ``securedrop-wm init``, production KDF parameters: this
    checkout's, or that of the checkout ``checkout`` (``python -m`` imports from there)."""
    data = base / "data"
    subprocess.run(
        [sys.executable, "-m", "securedrop_wm", "init", "--data-dir", str(data)]
        + ["--responder-key", str(team_key)],
        check=True,
        capture_output=True,
        cwd=checkout,
    )
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--min-mib", type=int, default=1)
    parser.add_argument("--max-mib", type=int, default=20)
    parser.add_argument("--servers", default="2x4,2x16", help="WxT,... (first: the baseline)")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="sdwm-load-", dir="/tmp"))
    responders = GnuPG(base / "responders")
    try:
        team = responders.create_key("Response team (load bench)", None)
        team_key = base / "team.asc"
        team_key.write_text(responders.export_public_key(team))
        ceiling = _gpg_baseline(base / "responders", team, base)
        print(f"plain gpg encryption, one stream: {ceiling:.0f} MiB/s")
        all_ok = True
        for config in args.servers.split(","):
            workers, threads = (int(x) for x in config.split("x"))
            run_dir = base / config
            data = new_drop(run_dir, team_key)
            with LiveServer(data / "config.toml", free_port(), workers, threads) as server:
                result = run_load(
                    server.url,
                    args.sources,
                    args.seconds,
                    (args.min_mib * MIB, args.max_mib * MIB),
                )
            start = time.perf_counter()
            problems = compare(result.accepted, read_export(data, base / "responders", run_dir))
            check = time.perf_counter() - start
            print()
            print("\n".join(summary(f"{config} ({workers} workers x {threads} threads)", result)))
            print(
                f"  export bundle verified and every item decrypted in {check:.0f} s: "
                + ("all accepted reports exact, nothing else" if not problems else "PROBLEMS")
            )
            for line in problems[:20] + result.server_errors[:20] + result.refused[:20]:
                print(f"    {line}")
            all_ok &= not problems and not result.server_errors
            shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        responders.close()
        for home in base.glob("*/data/gnupg"):
            subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
        shutil.rmtree(base, ignore_errors=True)
    sys.exit(0 if all_ok else 1)


if __name__ == "__main__":
    main()
