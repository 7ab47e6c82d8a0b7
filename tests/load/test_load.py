"""A short load run (the full one is ``python -m bench.load``): concurrent sources on the
real server, then every accepted report read back through a verified export bundle."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Responders
from tests.live import LiveServer, free_port

from .generator import KINDS, MIB, run_load, summary
from .verify import compare, read_export


@pytest.mark.slow
def test_ten_sources_for_ten_seconds_lose_nothing(
    data_dir: Path, responders: Responders, tmp_path: Path
) -> None:
    # Given the real server (gunicorn, default workers)
    with LiveServer(data_dir / "config.toml", free_port()) as server:
        # When ten sources report, send files of 1 to 4 MiB and come back, for ten seconds
        result = run_load(server.url, sources=10, seconds=10, sizes=(1 * MIB, 4 * MIB))
    print("\n".join(summary("10 sources, 10 s, 2x4", result)))
    # Then no source met a server error or a refusal, and every kind of visit happened
    assert result.server_errors == []
    assert result.refused == []
    assert all(result.latencies[kind] for kind in KINDS)
    assert len(result.accepted) >= 20
    # And the export bundle holds every accepted report exactly as sent, and nothing else
    received = read_export(data_dir, responders.home, tmp_path)
    assert len(received) == len(result.accepted)
    assert compare(result.accepted, received) == []
