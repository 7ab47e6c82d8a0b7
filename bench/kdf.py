"""Measure Argon2id derivation cost on this machine for candidate parameters.

Run: python bench/kdf.py   (prints a table; docs/kdf.md quotes it)
"""

from __future__ import annotations

import secrets
import statistics
import time

from securedrop_wm.codenames import generate_codename
from securedrop_wm.kdf import Peppers, derive
from securedrop_wm.settings import KdfParams

CANDIDATES = [
    KdfParams(time_cost=1, memory_kib=19 * 1024, parallelism=1),
    KdfParams(time_cost=2, memory_kib=64 * 1024, parallelism=1),
    KdfParams(time_cost=3, memory_kib=64 * 1024, parallelism=1),
    KdfParams(time_cost=3, memory_kib=256 * 1024, parallelism=1),
]


def main() -> None:
    peppers = Peppers(secrets.token_bytes(32), secrets.token_bytes(32), secrets.token_bytes(32))
    default = KdfParams()
    print(f"{'time_cost':>9} {'memory':>8} {'p':>2} {'median ms':>10} {'max ms':>8}")
    for params in CANDIDATES:
        runs = []
        for _ in range(7):
            codename = generate_codename()
            start = time.perf_counter()
            derive(codename, peppers, params)
            runs.append((time.perf_counter() - start) * 1000)
        mark = "  <- default" if params == default else ""
        print(
            f"{params.time_cost:>9} {params.memory_kib // 1024:>6}Mi {params.parallelism:>2} "
            f"{statistics.median(runs):>10.1f} {max(runs):>8.1f}{mark}"
        )


if __name__ == "__main__":
    main()
