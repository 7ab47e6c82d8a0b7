"""Long bundle work shows a progress bar on a terminal and stays quiet elsewhere."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from securedrop_wm.drop import Drop

from .helpers import submit

CLI = [sys.executable, "-m", "securedrop_wm"]


def _export(drop: Drop, output: Path, *, terminal: bool) -> tuple[int, str]:
    """Run ``securedrop-wm export`` with stderr on a pseudo-terminal or on a pipe."""
    config = str(drop.settings.data_dir / "config.toml")
    command = [*CLI, "--config", config, "export", "--output", str(output)]
    if not terminal:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stderr
    leader, follower = pty.openpty()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    return child.wait(timeout=120), seen.decode(errors="replace")


def test_export_shows_progress_on_a_terminal_only(drop: Drop, tmp_path: Path) -> None:
    submit(drop, {"a.bin": os.urandom(300_000), "b.bin": os.urandom(300_000)})
    code, shown = _export(drop, tmp_path / "one.tar", terminal=True)
    assert code == 0, shown
    assert "export bundle" in shown and "100%" in shown
    code, quiet = _export(drop, tmp_path / "two.tar", terminal=False)
    assert code == 0, quiet
    assert quiet == ""
