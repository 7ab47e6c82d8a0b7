"""Measure what the sandbox costs a render: one JPEG (3000 x 2000, with EXIF) and one
5-page PDF, each rendered by render_worker.py in a fresh process, under bubblewrap
(viewing.render, as the workstation does) and without it (the same script, no sandbox);
"+encode" adds what a first view also does outside: PNG pages and the clean copy.
Every render is a new process, so every run is cold in the sense that matters here: no
renderer stays alive between files; the OS page cache is warm after the first run.

Run: python bench/sandbox_render.py   (needs bwrap and pdftoppm; prints a table)
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

from securedrop_wm.workstation import render_worker, viewing
from securedrop_wm.workstation.sandbox import Sandbox

RUNS = 7


def _jpeg() -> bytes:
    image = Image.new("RGB", (3000, 2000), (30, 120, 200))
    ImageDraw.Draw(image).ellipse((500, 300, 2500, 1700), fill=(240, 200, 20))
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def _pdf() -> bytes:
    pages = []
    for n in range(5):
        page = Image.new("RGB", (1240, 1754), "white")  # A4 at 150 dpi
        draw = ImageDraw.Draw(page)
        for y in range(100, 1700, 40):
            draw.line((100, y, 1140, y), fill=(n * 40, 0, 0), width=3)
        pages.append(page)
    out = io.BytesIO()
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:], author="bench")
    return out.getvalue()


def _bare(path: Path) -> None:
    """The same renderer, same interpreter, no sandbox (what the sandbox is measured against)."""
    with path.open("rb") as f:
        out = subprocess.run(
            [sys.executable, "-s", "-B", render_worker.__file__],
            stdin=f,
            capture_output=True,
            check=True,
        ).stdout
    viewing.parse_render(out, 1 << 30)


def _time(action: Callable[[], object]) -> list[float]:
    runs = []
    for _ in range(RUNS):
        start = time.perf_counter()
        action()
        runs.append((time.perf_counter() - start) * 1000)
    return runs


def main() -> None:
    sandbox = Sandbox()
    start = time.perf_counter()
    sandbox.check()
    print(f"sandbox self-test (once per process): {(time.perf_counter() - start) * 1000:.0f} ms")
    print(f"{'file':<12} {'how':<10} {'first ms':>9} {'median ms':>10} {'max ms':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for name, data in (("jpeg", _jpeg()), ("pdf-5pages", _pdf())):
            path = Path(folder) / name
            path.write_bytes(data)
            os.chmod(path, 0o600)
            for how, action in (
                ("bare", lambda p=path: _bare(p)),
                ("sandboxed", lambda p=path: viewing.render(sandbox, p)),
                # What a first view costs: render, then PNGs and the clean copy made here.
                ("+encode", lambda p=path: viewing._cache_files(viewing.render(sandbox, p))),
            ):
                runs = _time(action)
                print(
                    f"{name:<12} {how:<10} {runs[0]:>9.0f} {statistics.median(runs):>10.0f} "
                    f"{max(runs):>8.0f}"
                )


if __name__ == "__main__":
    main()
