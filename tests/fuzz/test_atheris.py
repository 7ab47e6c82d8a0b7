"""A short, fixed-time run of every coverage-guided harness under ``fuzz/`` (atheris,
libFuzzer). A long campaign is run by hand: see fuzz/README.md."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARNESSES = sorted(
    p.stem for p in (ROOT / "fuzz").glob("*.py") if p.stem not in ("__init__", "common")
)
SECONDS = int(os.environ.get("SDWM_FUZZ_SECONDS", "10"))


def test_every_harness_is_run() -> None:
    assert set(HARNESSES) >= {"bundles", "codenames", "sessions", "source_forms"}


@pytest.mark.slow
@pytest.mark.parametrize("harness", HARNESSES)
def test_harness_finds_nothing_in_a_short_run(harness: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", f"fuzz.{harness}", f"-max_total_time={SECONDS}"]
        + ["-rss_limit_mb=2048", "-timeout=60", f"-artifact_prefix={tmp_path}/", str(corpus)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SECONDS + 240,
        check=False,
    )
    tail = "\n".join(result.stderr.splitlines()[-40:])
    assert result.returncode == 0, tail
    assert "Done" in result.stderr, tail
    assert list(tmp_path.glob("crash-*")) == [], tail
    runs = int(result.stderr.rsplit("Done ", 1)[1].split()[0])
    print(f"{harness}: {runs} inputs in {SECONDS} s, corpus {len(list(corpus.iterdir()))}")
    assert runs > 50
