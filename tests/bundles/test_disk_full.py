"""A full disk under the importer's work folder: a clear error and nothing kept.

The disk is a 1 MiB tmpfs mounted for the test: a real ENOSPC, not a simulated one.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from securedrop_wm.bundles import BundleError, export_bundle, verify_export_bundle
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop
from tests.conftest import short_tempdir

from .helpers import submit


@pytest.fixture
def small_disk() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    base = short_tempdir("sdwm-bfull-")
    disk = base / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(disk)])
    try:
        yield disk
    finally:
        for _ in range(50):
            if subprocess.run(["umount", str(disk)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["umount", "--lazy", str(disk)], check=True)
        disk.rmdir()
        base.rmdir()


def test_verifying_into_a_full_disk_says_so_and_keeps_nothing(
    drop: Drop, workstation_gpg: GnuPG, small_disk: Path, tmp_path: Path
) -> None:
    submit(drop, {"video.webm": os.urandom(3 * 1024 * 1024)})
    bundle = tmp_path / "export.tar"
    export_bundle(drop, bundle)
    server = drop.settings.signing_fingerprint
    with pytest.raises(BundleError, match="cannot keep submissions/.* No space left on device"):
        verify_export_bundle(bundle, workstation_gpg, server, small_disk)
    assert list(small_disk.iterdir()) == []
    # The same bundle verifies where there is room: the bundle was never the problem
    with verify_export_bundle(bundle, workstation_gpg, server, tmp_path) as verified:
        assert len(verified.manifest.items) == 2
