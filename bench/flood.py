"""Flood: what a real source gets while someone stalls and floods the drop, on loopback.

The real server (``securedrop-wm serve``, production Argon2id parameters) on a
throwaway data dir. Legitimate sources walk the whole way (landing, codename, report
with a 100 KB file) or come back (login, report), timed end to end, while an attacker:

- **stalls**: keeps ``--stalls`` connections open (half send half a request head, half a
  whole head announcing a body they never send), opening a new one whenever the server
  closes one;
- **floods new sources**: asks for codenames and creates sources at ten times the rate
  the drop was measured to create them, open loop, each attempt with a valid form token.

Side by side in one run: this checkout (defences on) and, with ``--against REF``, the
same scenarios against a git checkout of REF served the same way (defences off: the
code before them). Printed per server and scenario: success rate, p50 and p95 of the
legitimate walks, and what the attacker was served.

Run from the repository root on an otherwise idle machine (about 5 minutes):

    python bench/flood.py --against 04244f4
    python bench/flood.py --stalls 200 --walks 10          # quicker, this checkout only

There is no proof-of-work on loopback. ``--tor`` runs instead on the private Tor network
of tests/tor (loopback only): this checkout served by ``securedrop-wm serve --onion``
(proof-of-work and stream limits on, from onion_defences.ini), a few quiet walks over
Tor, then ``--attackers`` threads flooding it with new sources for ``--flood-seconds``
(a new SOCKS username, so a new circuit and introduction, every 2 sources, and
``MaxStreams + 1`` streams on each circuit before leaving it) while a legitimate client
walks landing, codename, report over Tor as a new visitor each time. Printed: the walks'
success rate, p50 and p95, what the attackers were served, and tor's proof-of-work
figures (descriptor pow-params, MetricsPort). About 3 minutes:

    python bench/flood.py --tor --attackers 6 --flood-seconds 60
"""

from __future__ import annotations

import argparse
import os
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

# Runs as ``python bench/flood.py``: the repository root holds the test helpers it reuses.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import new_drop  # noqa: E402
from tests.live import LiveServer, free_port  # noqa: E402
from tests.load.client import RandomFile, SourceClient, accepted  # noqa: E402
from tests.load.test_stalled_connections import BODY_NEVER_SENT, HALF_HEAD  # noqa: E402

WALK_TIMEOUT = 20.0
# Over Tor a request also waits for circuits (and, under load, the PoW queue).
TOR_WALK_TIMEOUT = 60.0
FILE_BYTES = 100_000


@dataclass
class Walks:
    """Timed legitimate walks: how many went through, and how long they took."""

    seconds: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)

    def record(self, walk: Callable[[], str]) -> None:
        started = time.monotonic()
        try:
            why = walk()
        except requests.RequestException as e:
            why = type(e).__name__
        if why:
            self.failures[why] += 1
        else:
            self.seconds.append(time.monotonic() - started)

    @property
    def attempted(self) -> int:
        return len(self.seconds) + sum(self.failures.values())

    def line(self) -> str:
        done = len(self.seconds)
        rate = f"{done}/{self.attempted} ok"
        if done == 0:
            return f"{rate}; failures: {dict(self.failures)}"
        p50 = statistics.median(self.seconds)
        p95 = sorted(self.seconds)[max(0, int(round(0.95 * done)) - 1)]
        failed = f"; failures: {dict(self.failures)}" if self.failures else ""
        return f"{rate}, p50 {p50:.2f} s, p95 {p95:.2f} s{failed}"

    @property
    def p95(self) -> float:
        if not self.seconds:
            return float("inf")
        return sorted(self.seconds)[max(0, int(round(0.95 * len(self.seconds))) - 1)]


def new_source_walk(url: str) -> str:
    """Landing, codename, report with a file: ``""`` when it all went through."""
    return walk_as_new_source(SourceClient(url, timeout=WALK_TIMEOUT), "Flood bench report.")


def walk_as_new_source(source: SourceClient, text: str) -> str:
    """Landing, codename, report with a file, then ``source`` is closed: ``""`` when it
    all went through, else what failed."""
    try:
        source.get("/")
        codename, response = source.new_codename()
        if codename is None:
            return f"create {response.status_code}"
        reported = source.report(text, RandomFile("f.pdf", FILE_BYTES))
        return "" if accepted(reported) else f"report {reported.status_code}"
    finally:
        source.close()


def returning_walk(url: str, codename: str) -> str:
    """Log in with a codename, then report: ``""`` when it went through."""
    client = SourceClient(url, timeout=WALK_TIMEOUT)
    try:
        response = client.login(codename)
        if not response.ok or "/login" in response.url:
            return f"login {response.status_code}"
        reported = client.report("Flood bench follow-up.")
        return "" if accepted(reported) else f"report {reported.status_code}"
    finally:
        client.close()


class Stalls:
    """Keeps ``count`` stalled connections open until stopped; counts what they got."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.served: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._opened = 0

    def __enter__(self) -> Stalls:
        self._thread.start()
        while self._opened < self.count and self._thread.is_alive():
            time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _open(self, selector: selectors.BaseSelector) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.sendall(HALF_HEAD if self._opened % 2 else BODY_NEVER_SENT)
        except OSError:
            self.served["refused at connect"] += 1
            return
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        self._opened += 1

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            for _ in range(self.count):
                self._open(selector)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.5):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        answer = sock.recv(64)
                    except OSError:
                        answer = b""
                    status = answer.split(b"\r\n", 1)[0].decode("ascii", "replace")
                    self.served[status or "closed, no answer"] += 1
                    selector.unregister(sock)
                    sock.close()
                    self._open(selector)
            for key in list(selector.get_map().values()):
                self.served["still open at the end"] += 1
                key.fileobj.close()  # type: ignore[union-attr]


def create_attempt(url: str, served: Counter[str], seconds: list[float]) -> None:
    """One attacker's new source: a codename page, then /create with its token."""
    client = SourceClient(url, timeout=WALK_TIMEOUT)
    started = time.monotonic()
    try:
        client.get("/generate")
        response = client.http.post(
            url + "/create",
            data={"csrf_token": client.token()},
            timeout=WALK_TIMEOUT,
            allow_redirects=False,
        )
        served[str(response.status_code)] += 1
    except requests.Timeout:
        served["timeout"] += 1
    except requests.RequestException as e:
        served[type(e).__name__] += 1
    finally:
        seconds.append(time.monotonic() - started)
        client.close()


def creation_capacity(url: str, concurrency: int, seconds: float) -> float:
    """New sources per second the drop creates when asked as fast as it answers."""
    served: Counter[str] = Counter()
    times: list[float] = []
    deadline = time.monotonic() + seconds

    def loop() -> None:
        while time.monotonic() < deadline:
            create_attempt(url, served, times)

    with ThreadPoolExecutor(concurrency) as pool:
        for _ in range(concurrency):
            pool.submit(loop)
    return max(served["302"] + served["303"], 1) / seconds


def flood(url: str, rate: float, seconds: float, served: Counter[str], times: list[float]) -> None:
    """Open-loop flood of new sources at ``rate`` per second for ``seconds``."""
    with ThreadPoolExecutor(max_workers=256) as pool:
        started = time.monotonic()
        n = 0
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate) + 1
            while n < due:
                pool.submit(create_attempt, url, served, times)
                n += 1
            time.sleep(0.01)


@dataclass
class Result:
    """What one server got through, scenario by scenario."""

    name: str
    lines: list[str] = field(default_factory=list)

    def add(self, scenario: str, text: str) -> None:
        self.lines.append(f"  {scenario:<34} {text}")
        print(f"{self.name}: {scenario}: {text}", file=sys.stderr)


def run_scenarios(server: LiveServer, name: str, args: argparse.Namespace) -> Result:
    """Quiet, stalled and flooded, against one running server."""
    result = Result(name)
    url = server.url
    quiet = Walks()
    for _ in range(args.walks):
        quiet.record(lambda: new_source_walk(url))
    result.add("quiet: new sources", quiet.line())

    stalled = Walks()
    with Stalls(server.port, args.stalls) as stalls:
        deadline = time.monotonic() + args.scenario_seconds
        for _ in range(args.walks):
            if time.monotonic() > deadline:
                break
            stalled.record(lambda: new_source_walk(url))
    ratio = stalled.p95 / quiet.p95 if quiet.seconds else float("inf")
    result.add(f"{args.stalls} stalled: new sources", f"{stalled.line()}; p95 {ratio:.2f}x quiet")
    result.add(f"{args.stalls} stalled: attacker got", str(dict(stalls.served.most_common())))

    capacity = creation_capacity(url, args.capacity_concurrency, 10)
    result.add("creation capacity", f"{capacity:.2f} new sources/s")
    codenames = []
    for _ in range(args.returning):
        client = SourceClient(url, timeout=60)
        codename, _ = client.new_codename()
        client.close()
        if codename:
            codenames.append(codename)
    served: Counter[str] = Counter()
    times: list[float] = []
    returning = Walks()
    rate = 10 * capacity
    attacker = threading.Thread(
        target=flood, args=(url, rate, args.scenario_seconds, served, times)
    )
    attacker.start()
    while attacker.is_alive():
        for codename in codenames:
            returning.record(lambda c=codename: returning_walk(url, c))  # type: ignore[misc]
    attacker.join()
    result.add(f"flood at {rate:.1f}/s: returning", returning.line())
    fast = statistics.median(times) if times else 0.0
    result.add(
        f"flood at {rate:.1f}/s: attacker got",
        f"{dict(served.most_common())}, median {fast:.2f} s",
    )
    return result


def team_key(base: Path) -> Path:
    """A responder key, made with plain gpg in its own home."""
    home = base / "responders"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback"]
    subprocess.run(
        [*gpg, "--passphrase", "", "--quick-gen-key", "Flood bench team", "ed25519", "sign", "0"],
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(
        [*gpg, "--with-colons", "--list-keys"], check=True, capture_output=True, text=True
    ).stdout
    fingerprint = next(x.split(":")[9] for x in listing.splitlines() if x.startswith("fpr"))
    subprocess.run(
        [*gpg, "--passphrase", "", "--quick-add-key", fingerprint, "cv25519", "encr", "0"],
        check=True,
        capture_output=True,
    )
    key = base / "team.asc"
    exported = subprocess.run([*gpg, "--armor", "--export", fingerprint], capture_output=True)
    key.write_bytes(exported.stdout)
    return key


def tor_walk(url: str, client: Any, visitor: str) -> str:
    """Landing, codename, report with a file over Tor, as a new visitor (its own SOCKS
    username, so its own circuit and introduction): ``""`` when it all went through."""
    from served import isolated_session

    source = SourceClient(url, timeout=TOR_WALK_TIMEOUT)
    source.http.close()
    source.http = isolated_session(client, visitor)
    return walk_as_new_source(source, "Flood bench report over Tor.")


def run_tor(args: argparse.Namespace) -> None:
    """The private Tor network, this checkout behind ``serve --onion`` (PoW on), quiet
    walks, then walks during a flood of new sources over Tor; prints what it saw."""
    sys.path.insert(0, str(ROOT / "tests" / "tor"))
    from privnet import PortPicker, default_key_cache, fetch_until_ok, running_network
    from served import (
        POW_METRICS,
        TorFlood,
        descriptor_inner_layer,
        metrics,
        pow_figures,
        privnet_torrc,
        served,
    )

    from securedrop_wm.onion_defences import load_defences

    defences = load_defences("source")
    base = Path(tempfile.mkdtemp(prefix="sdwm-flood-", dir="/tmp"))
    lines: list[str] = []

    def add(scenario: str, text: str) -> None:
        lines.append(f"  {scenario:<36} {text}")
        print(f"tor: {scenario}: {text}", file=sys.stderr)

    try:
        data = new_drop(base / "run", team_key(base), ROOT)
        with running_network(base / "tornet", key_cache=default_key_cache()) as net:
            metrics_port = PortPicker().pick()
            torrc = privnet_torrc(net, base / "privnet.torrc", metrics_port)
            port = free_port()
            serve = ["serve", "--onion", "--port", str(port), "--tor-config", str(torrc)]
            serve += ["--workers", str(args.workers), "--threads", str(args.threads)]
            with served(data / "config.toml", serve, port, base / "serve.out") as server:
                legit, attacker = net.clients
                service_id = server.address.removesuffix(".onion")
                url = f"http://{server.address}"
                fetch_until_ok(legit.session(), url + "/")
                inner = descriptor_inner_layer(legit, server.address)
                pow_params = next(
                    (x for x in inner.splitlines() if x.startswith("pow-params")), "none"
                )
                add("descriptor", pow_params)
                add("PoW figures, quiet", str(pow_figures(metrics(metrics_port), service_id)))

                quiet = Walks()
                for n in range(args.tor_quiet_walks):
                    quiet.record(lambda n=n: tor_walk(url, legit, f"quiet-{n}"))  # type: ignore[misc]
                add("quiet: new sources over Tor", quiet.line())

                flooded = Walks()
                peaks: dict[str, float] = {name: 0.0 for name in POW_METRICS}
                flood = TorFlood(
                    attacker,
                    url,
                    threads=args.attackers,
                    seconds=args.flood_seconds,
                    stream_burst=defences["HiddenServiceMaxStreams"] + 1,
                )
                with flood:
                    n = 0
                    while flood.running:
                        n += 1
                        flooded.record(lambda n=n: tor_walk(url, legit, f"walk-{n}"))  # type: ignore[misc]
                        for name, value in pow_figures(metrics(metrics_port), service_id).items():
                            peaks[name] = max(peaks[name], float(value))
                label = f"{args.attackers} attackers, {args.flood_seconds:.0f} s"
                add(f"flood ({label}): new sources", flooded.line())
                add(
                    "flood: attacker got",
                    f"{dict(flood.served.most_common())} "
                    f"({flood.served['created'] / args.flood_seconds:.1f} new sources/s); "
                    f"{flood.circuits} circuits, "
                    f"{flood.circuits_closed} closed by the stream limit",
                )
                add("PoW figures, highest seen", str(peaks))
                add("PoW figures, at the end", str(pow_figures(metrics(metrics_port), service_id)))
                server.stop()
        subprocess.run(["gpgconf", "--homedir", str(data / "gnupg"), "--kill", "gpg-agent"])
    finally:
        subprocess.run(["gpgconf", "--homedir", str(base / "responders"), "--kill", "gpg-agent"])
        shutil.rmtree(base, ignore_errors=True)
    pow_on = ", ".join(
        f"{k.removeprefix('HiddenService')} {v}"
        for k, v in defences.items()
        if "PoW" in k or "MaxStreams" in k
    )
    print(f"\nprivate Tor network, serve --onion: {args.workers} workers x {args.threads} threads,")
    print(f"production Argon2id; {pow_on}; walks time out after {TOR_WALK_TIMEOUT:.0f} s")
    print(f"a request; load average {_load():.1f} at the end\n")
    print("this checkout over Tor")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", help="a git ref to serve side by side (defences off)")
    parser.add_argument("--stalls", type=int, default=1000)
    parser.add_argument("--walks", type=int, default=20, help="legitimate walks per scenario")
    parser.add_argument("--returning", type=int, default=3, help="returning sources in the flood")
    parser.add_argument("--scenario-seconds", type=float, default=40)
    parser.add_argument("--capacity-concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16, help="as deployed")
    parser.add_argument("--tor", action="store_true", help="over the private Tor network, PoW on")
    parser.add_argument("--attackers", type=int, default=6, help="--tor: flooding threads")
    parser.add_argument("--flood-seconds", type=float, default=60, help="--tor: flood length")
    parser.add_argument("--tor-quiet-walks", type=int, default=3, help="--tor: walks before")
    args = parser.parse_args()
    if args.tor:
        run_tor(args)
        return

    base = Path(tempfile.mkdtemp(prefix="sdwm-flood-", dir="/tmp"))
    checkouts = [("this checkout", ROOT)]
    try:
        key = team_key(base)
        if args.against:
            older = base / "against"
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(older), args.against],
                check=True,
                capture_output=True,
            )
            checkouts.append((f"{args.against} (before)", older))
        results = []
        for n, (name, checkout) in enumerate(checkouts):
            data = new_drop(base / f"run{n}", key, checkout)
            server = LiveServer(
                data / "config.toml",
                free_port(),
                workers=args.workers,
                threads=args.threads,
                log_dir=base / f"logs{n}",
                cwd=checkout,
            )
            with server:
                results.append(run_scenarios(server, name, args))
            subprocess.run(["gpgconf", "--homedir", str(data / "gnupg"), "--kill", "gpg-agent"])
    finally:
        subprocess.run(["gpgconf", "--homedir", str(base / "responders"), "--kill", "gpg-agent"])
        if args.against:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base / "against")],
                capture_output=True,
            )
        shutil.rmtree(base, ignore_errors=True)
    print(f"\n{args.workers} workers x {args.threads} threads, production Argon2id;")
    print(f"walks time out after {WALK_TIMEOUT:.0f} s; load average {_load():.1f} at the end\n")
    for result in results:
        print(result.name)
        print("\n".join(result.lines))


def _load() -> float:
    return os.getloadavg()[0]


if __name__ == "__main__":
    main()
