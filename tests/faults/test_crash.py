"""Crashes: the server's workers are killed with SIGKILL at random moments of uploads, at
least 50 times, and now and then the whole server dies at once (master, workers and gpg)
and is started again, as after a power cut.

After every kill: each report the database refers to decrypts to exactly what was sent
(no half-written ciphertext is referenced), every earlier ciphertext is unchanged, and
the plaintext marker carried by every upload is in no file on disk. After every full
restart, start-up clean-up (``securedrop-wm clean-orphans`` or ``serve`` itself) has
left nothing in the store that the database does not refer to.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import Responders
from tests.live import LiveServer, free_port
from tests.load.client import RandomFile, SourceClient, accepted
from tests.load.verify import Received, Sent, compare, db_rows, read_store

from .disk import files_with, sha256_of, store_state

KILLS = 50
FULL_RESTART_EVERY = 10
#: Every this many uploads, one goes through with no kill and must be accepted.
CONTROL_EVERY = 5
KIB = 1024


class Crasher:
    """A server and the ways it dies: workers only, or everything at once."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.config = data_dir / "config.toml"
        self.env = env
        self.server = LiveServer(self.config, free_port(), env=env).start()

    def kill_workers(self) -> list[int]:
        pids = self.server.worker_pids()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return pids

    def kill_during(
        self,
        file: RandomFile,
        at: int,
        delay: float,
        *,
        answered: threading.Event,
        killed: list[int],
    ) -> None:
        """Kill the workers once ``at`` bytes of ``file`` went out (and ``delay`` seconds
        more), unless the server has answered by then."""
        while file.sent < at and not answered.is_set():
            time.sleep(0.001)
        time.sleep(delay)
        if not answered.is_set():
            killed.extend(self.kill_workers())

    def wait_for_workers(self, killed: list[int], timeout: float = 60) -> None:
        """Until the master has replaced every killed worker and pages are served again."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.server.worker_pids()
            if len(pids) == self.server.workers and not set(pids) & set(killed):
                try:
                    if requests.get(self.server.url + "/", timeout=10).status_code == 200:
                        return
                except requests.ConnectionError:
                    pass
            time.sleep(0.05)
        raise AssertionError("gunicorn did not replace its killed workers")

    def power_cut(self, clean_with_cli: bool) -> None:
        """Kill the whole process group at once, then start again on a new port."""
        process = self.server.process
        assert process is not None
        os.killpg(os.getpgid(process.pid), signal.SIGKILL)
        process.wait(timeout=30)
        if clean_with_cli:
            out = subprocess.run(
                [sys.executable, "-m", "securedrop_wm", "--config", str(self.config)]
                + ["clean-orphans"],
                capture_output=True,
                text=True,
                check=True,
            )
            assert "orphaned file(s)" in out.stdout
        self.server = LiveServer(self.config, free_port(), env=self.env).start()

    def stop(self) -> None:
        self.server.stop()


@pytest.mark.slow
def test_sigkill_during_uploads_loses_and_leaks_nothing(
    data_dir: Path, responders: Responders
) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    print(f"random seed {seed}")
    rng = random.Random(seed)
    marker = b"SDWM-PLAINTEXT-" + secrets.token_hex(12).encode()
    server_tmp = data_dir.parent / "server-tmp"
    server_tmp.mkdir()
    scan_roots = [data_dir.parent, Path("/dev/shm")]
    crasher = Crasher(data_dir, {"TMPDIR": str(server_tmp)})
    client = SourceClient(crasher.server.url, timeout=60)
    sent_ok: list[Sent] = []
    unsure: list[Sent] = []
    received: dict[str, Received] = {}
    ciphertexts: dict[str, str] = {}  # store name -> SHA-256, once its report was checked
    in_flight_kills = attempts = 0
    scanned_at = time.time() - 1
    try:
        codename, _ = client.new_codename()
        assert codename
        while in_flight_kills < KILLS:
            attempts += 1
            assert attempts < KILLS * 4, "too few kills landed while an upload was in flight"
            # Given an upload of up to 3 MiB, and a kill due at a random byte of it or
            # shortly after its last byte (while the server encrypts, commits, answers)
            size = rng.randint(64 * KIB, 3 * 1024 * KIB)
            kill_at = rng.randint(1, size)
            after_body = rng.random() < 0.3
            delay = rng.uniform(0, 0.15)
            text = f"report {attempts} {secrets.token_hex(8)} {marker.decode()}"
            file = RandomFile(f"proof-{attempts}.bin", size, marker)
            if attempts % CONTROL_EVERY == 0:
                # A control upload with no kill: whatever the machine's load (under load
                # every kill can land before an answer), the restarted server takes it.
                response = client.report(text, file)
                assert accepted(response), response.status_code
                sent_ok.append(Sent(text, {file.name: file.sha256}))
                continue
            answered = threading.Event()
            killed: list[int] = []
            killer = threading.Thread(
                target=crasher.kill_during,
                args=(file, size if after_body else kill_at, delay if after_body else 0),
                kwargs={"answered": answered, "killed": killed},
            )
            killer.start()
            # When the workers die with it under way
            try:
                response: requests.Response | None = client.report(text, file)
            except requests.RequestException:
                response = None
            answered.set()
            killer.join()
            sent = Sent(text, {file.name: file.sha256})
            if response is not None and accepted(response):
                sent_ok.append(sent)
            elif response is None:
                unsure.append(sent)
            else:
                assert response.status_code < 500, response.status_code
            if not killed:
                continue
            if response is None or not accepted(response):  # it died before answering
                in_flight_kills += 1
            crasher.wait_for_workers(killed)

            # Then every report the database refers to decrypts to exactly what was sent
            new = {report for report, *_ in db_rows(data_dir)} - set(received)
            for report in read_store(data_dir, responders.home, only=new):
                received[report.report_id] = report
            assert compare(sent_ok, received.values(), maybe=unsure) == []
            # and earlier ciphertexts did not change
            for name, digest in ciphertexts.items():
                assert sha256_of(data_dir / "store" / name) == digest, name
            for *_, name in db_rows(data_dir):
                ciphertexts.setdefault(name, sha256_of(data_dir / "store" / name))
            # and no plaintext reached a disk
            now = time.time()
            assert files_with(marker, scan_roots, since=scanned_at) == []
            scanned_at = now - 1

            if in_flight_kills % FULL_RESTART_EVERY == 0:
                # And after a power cut, start-up clean-up leaves no orphan
                crasher.power_cut(clean_with_cli=in_flight_kills % 20 == 0)
                referenced, on_disk = store_state(data_dir)
                assert on_disk == referenced
                client.close()
                client = SourceClient(crasher.server.url, timeout=60)
                assert client.login(codename).url.endswith("/replies")
    finally:
        client.close()
        crasher.stop()
    print(
        f"{in_flight_kills} kills in flight over {attempts} uploads: {len(sent_ok)} accepted, "
        f"{len(unsure)} unanswered ({sum(1 for s in unsure if s.text in _texts(received))} "
        f"of them stored whole), {len(received)} reports checked"
    )
    # Finally: the whole disk area is free of plaintext, and the store holds only reports.
    assert files_with(marker, [data_dir.parent]) == []
    assert compare(sent_ok, read_store(data_dir, responders.home), maybe=unsure) == []
    assert len(sent_ok) > 0


def _texts(received: dict[str, Received]) -> set[str]:
    return {r.text for r in received.values()}
