"""A 500 MiB upload through the real server leaves its worker's memory where it was.

The body streams into gpg a megabyte at a time (source_ui/uploads.py): a worker that
buffered it, spooled it or read it whole would grow by hundreds of MiB here.
bench/upload.py measures the same with timings; this is the gate.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live import LiveServer, free_port
from tests.load.client import RandomFile, SourceClient, accepted

MIB = 1024 * 1024
SIZE = 500 * MIB
GROWTH_LIMIT = 64 * MIB


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


@pytest.mark.slow
def test_a_500_mib_upload_keeps_the_worker_within_64_mib(data_dir: Path) -> None:
    env = {"SDWM_MAX_REPORT_BYTES": str(SIZE + 16 * MIB)}
    with LiveServer(data_dir / "config.toml", free_port(), workers=1, env=env) as server:
        source = SourceClient(server.url)
        codename, _ = source.new_codename()
        assert codename is not None
        (worker,) = server.worker_pids()
        before = _kib(worker, "VmRSS") * 1024
        Path(f"/proc/{worker}/clear_refs").write_text("5")  # VmHWM := VmRSS
        file = RandomFile("video.mp4", SIZE)
        assert accepted(source.report("A recording of the threat.", file))
        peak = _kib(worker, "VmHWM") * 1024
        source.close()
    stored = sorted((data_dir / "store").glob("*.gpg"), key=lambda p: p.stat().st_size)
    assert stored[-1].stat().st_size > SIZE  # the whole file, encrypted
    assert peak - before < GROWTH_LIMIT, f"grew {(peak - before) / MIB:.1f} MiB"
