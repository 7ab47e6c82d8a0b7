"""Concurrent sources against a real server, each a thread with its own cookies.

A virtual source starts as a new source, then keeps choosing: send a report with a file
(random bytes, hashed as sent), send a text-only report, come back with its codename (or
another source's), or give way to a brand-new source. The run records what was accepted,
so it can be compared with what the responders decrypt (:mod:`tests.load.verify`).
"""

from __future__ import annotations

import random
import secrets
import statistics
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import requests

from .client import RandomFile, SourceClient, accepted
from .verify import Sent

MIB = 1024 * 1024
KINDS = ("new source", "login", "message", "file")


@dataclass
class LoadResult:
    """What a run saw from the sources' side."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    accepted: list[Sent] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    file_bytes: int = 0
    elapsed: float = 0.0

    @property
    def reports_per_second(self) -> float:
        return len(self.accepted) / self.elapsed if self.elapsed else 0.0


class _Run:
    """Shared state of one run: the clock, the codenames made so far, the result."""

    def __init__(self, url: str, seconds: float, sizes: tuple[int, int], seed: int) -> None:
        self.url = url
        self.deadline = time.monotonic() + seconds
        self.sizes = sizes
        self.seed = seed
        self.codenames: list[str] = []
        self.result = LoadResult()
        self.lock = threading.Lock()

    def record(self, kind: str, seconds: float, response: requests.Response | None) -> None:
        with self.lock:
            self.result.latencies[kind].append(seconds)
            if response is None:
                return
            for r in [*response.history, response]:
                if r.status_code >= 500:
                    self.result.server_errors.append(f"{kind}: HTTP {r.status_code} {r.url}")

    def source(self, index: int) -> None:
        """One virtual source, until the deadline."""
        rng = random.Random(self.seed * 1000 + index)
        client = SourceClient(self.url)
        try:
            client = self._new_source(client)
            while time.monotonic() < self.deadline:
                roll = rng.random()
                if roll < 0.08:
                    client = self._new_source(client)
                elif roll < 0.25:
                    client = self._login(client, rng)
                elif roll < 0.6:
                    self._report(client, None)
                else:
                    size = rng.randint(*self.sizes)
                    self._report(client, RandomFile(f"evidence-{secrets.token_hex(6)}.bin", size))
        except requests.RequestException as e:
            with self.lock:
                self.result.server_errors.append(f"connection failed: {type(e).__name__}")
        finally:
            client.close()

    def _new_source(self, old: SourceClient) -> SourceClient:
        old.close()
        client = SourceClient(self.url)
        start = time.perf_counter()
        codename, response = client.new_codename()
        self.record("new source", time.perf_counter() - start, response)
        with self.lock:
            if codename is not None:
                self.codenames.append(codename)
            elif response.status_code < 500:
                self.result.refused.append(f"new source: HTTP {response.status_code}")
        return client

    def _login(self, old: SourceClient, rng: random.Random) -> SourceClient:
        with self.lock:
            codename = rng.choice(self.codenames) if self.codenames else None
        if codename is None:
            return old
        old.close()
        client = SourceClient(self.url)
        start = time.perf_counter()
        response = client.login(codename)
        self.record("login", time.perf_counter() - start, response)
        if not response.url.endswith("/replies"):
            with self.lock:
                self.result.refused.append(f"login: HTTP {response.status_code}")
        return client

    def _report(self, client: SourceClient, file: RandomFile | None) -> None:
        text = f"load report {secrets.token_hex(12)}: they keep reverting my edits"
        start = time.perf_counter()
        response = client.report(text, file)
        kind = "file" if file else "message"
        self.record(kind, time.perf_counter() - start, response)
        if accepted(response):
            sent = Sent(text, {file.name: file.sha256} if file else {})
            with self.lock:
                self.result.accepted.append(sent)
                self.result.file_bytes += file.size if file else 0
        elif response.status_code < 500:
            with self.lock:
                self.result.refused.append(f"{kind}: HTTP {response.status_code}")


def run_load(
    url: str,
    sources: int = 50,
    seconds: float = 60,
    sizes: tuple[int, int] = (1 * MIB, 20 * MIB),
    seed: int = 7,
) -> LoadResult:
    """Run ``sources`` concurrent sources against ``url`` for ``seconds``.

    Actions under way at the deadline finish; ``elapsed`` counts until the last one did.
    """
    run = _Run(url, seconds, sizes, seed)
    threads = [threading.Thread(target=run.source, args=(i,)) for i in range(sources)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.result.elapsed = time.perf_counter() - start
    return run.result


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, by the inclusive method."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def summary(name: str, result: LoadResult) -> list[str]:
    """Lines for one run: throughput, then p50/p99 per kind."""
    mib_s = result.file_bytes / MIB / result.elapsed if result.elapsed else 0.0
    lines = [
        f"{name}: {len(result.accepted)} reports accepted in {result.elapsed:.1f} s = "
        f"{result.reports_per_second:.2f}/s ({mib_s:.1f} MiB/s of files); "
        f"{len(result.server_errors)} server errors, {len(result.refused)} refused",
        f"  {'kind':<11} {'count':>6} {'p50 s':>8} {'p99 s':>8} {'max s':>8}",
    ]
    for kind in KINDS:
        values = result.latencies.get(kind, [])
        if values:
            lines.append(
                f"  {kind:<11} {len(values):>6} {percentile(values, 0.5):>8.2f} "
                f"{percentile(values, 0.99):>8.2f} {max(values):>8.2f}"
            )
    return lines
