"""The tor that ``serve --onion`` and ``serve-transfer --onion`` start (``Onion.launch``)
writes no log into its data dir: tor's notices name the onion services it publishes and
when it started, stopped or failed, and a seized disk should not keep them."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from securedrop_wm.errors import TorLaunchError
from securedrop_wm.onion import Onion

pytestmark = pytest.mark.skipif(shutil.which("tor") is None, reason="needs Debian's tor")


def _log_like(data_dir: Path) -> list[str]:
    """Files of ``data_dir`` that are or hold a tor log."""
    found = []
    for path in data_dir.rglob("*"):
        if not path.is_file():
            continue
        if path.suffix == ".log" or b"[notice]" in path.read_bytes():
            found.append(str(path.relative_to(data_dir)))
    return found


def test_a_launched_tor_writes_no_log_to_disk(tmp_path: Path) -> None:
    # Given a tor of ours, started as serve --onion starts it (offline: no network here)
    data_dir = tmp_path / "tor"
    with Onion.launch(
        data_dir, config={"DisableNetwork": "1"}, wait_for_bootstrap=False, timeout=60
    ) as onion:
        assert onion.status().bootstrap_percent >= 0
        time.sleep(1)  # what tor logs at start is written by now
        # Then its data dir holds no log, while it runs and after it stopped
        assert _log_like(data_dir) == []
    assert _log_like(data_dir) == []


def test_a_tor_that_fails_still_says_why(tmp_path: Path) -> None:
    # Its log lives in memory only, and still explains a failed start.
    with pytest.raises(TorLaunchError, match="exited at start: .*SocksPort"):
        Onion.launch(tmp_path / "tor", config={"SocksPort": "not-a-port"}, timeout=30)
    assert _log_like(tmp_path / "tor") == []
