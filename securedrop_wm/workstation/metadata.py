"""What an attachment may reveal: a summary of its metadata, read where a library can.

Parsing a file a stranger sent is risky, so it happens in a child process with limits on
memory, CPU time and output, never in the app: ``python -m
securedrop_wm.workstation.metadata FILE...`` prints one JSON object per file. Only
headers are read (EXIF, PDF document info), no pixels are decoded, nothing is rendered.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

Summary = dict[str, str]
_LIMIT_MEMORY = 512 * 1024 * 1024
_LIMIT_CPU_SECONDS = 20
_TIMEOUT_SECONDS = 120
_MAX_VALUE_CHARS = 200
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"II*\x00", b"MM\x00*", b"RIFF")
# EXIF tags that say who, where, when or with what a picture was made.
_EXIF_TAGS = {
    0x010F: "camera make",
    0x0110: "camera model",
    0x0131: "software",
    0x013B: "artist",
    0x8298: "copyright",
    0x0132: "modified",
    0x9003: "taken",
    0xA430: "camera owner",
    0xA431: "camera serial number",
    0xA434: "lens model",
}


def summarize(paths: Sequence[Path]) -> list[Summary]:
    """Summaries of ``paths`` in order, read in a limited child process.

    A file the child cannot read (or that makes it fail) gets ``{"error": ...}``.
    """
    if not paths:
        return []
    try:
        out = subprocess.run(
            [sys.executable, "-m", __name__, *map(str, paths)],
            capture_output=True,
            timeout=_TIMEOUT_SECONDS,
            check=False,
        )
        lines = out.stdout.decode("utf-8", "replace").splitlines()
        results = [_clean(json.loads(line)) for line in lines]
    except (subprocess.TimeoutExpired, ValueError, OSError):
        results = []
    if len(results) != len(paths):
        return [{"error": "the metadata reader failed on these files"} for _ in paths]
    return results


def _limit() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (_LIMIT_MEMORY, _LIMIT_MEMORY))
    resource.setrlimit(resource.RLIMIT_CPU, (_LIMIT_CPU_SECONDS, _LIMIT_CPU_SECONDS))


def _clean(raw: Any) -> Summary:
    if not isinstance(raw, dict):
        raise ValueError("not an object")
    return {str(k)[:_MAX_VALUE_CHARS]: str(v)[:_MAX_VALUE_CHARS] for k, v in raw.items()}


def read_one(path: Path) -> Summary:
    """The metadata of one file (called in the child process)."""
    with path.open("rb") as f:
        head = f.read(8)
    try:
        if head.startswith(_IMAGE_MAGIC):
            return _image(path)
        if head.startswith(b"%PDF-"):
            return _pdf(path)
    except Exception as e:  # noqa: BLE001 - a hostile file may break any parser
        return {"error": f"could not be read ({type(e).__name__})"}
    return {"type": "unknown", "note": "no metadata reader for this kind of file"}


def _image(path: Path) -> Summary:
    from PIL import Image
    from PIL.ExifTags import IFD

    with Image.open(path) as image:
        summary = {"type": f"image ({image.format})", "size": f"{image.width} x {image.height}"}
        exif = image.getexif()
        tags = dict(exif)
        tags.update(exif.get_ifd(IFD.Exif))
        for tag, label in _EXIF_TAGS.items():
            if tag in tags and str(tags[tag]).strip():
                summary[label] = str(tags[tag]).strip("\x00 ")
        gps = exif.get_ifd(IFD.GPSInfo)
        if gps:
            summary["GPS position"] = _gps(gps)
        for key in ("comment", "Comment", "Description", "Author"):
            if key in image.info:
                summary[key.lower()] = str(image.info[key])
    return summary


def _gps(gps: dict[int, Any]) -> str:
    try:
        lat = _degrees(gps[2]) * (-1 if gps.get(1) == "S" else 1)
        lon = _degrees(gps[4]) * (-1 if gps.get(3) == "W" else 1)
        return f"present: {lat:.5f}, {lon:.5f}"
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return "present"


def _degrees(dms: Any) -> float:
    d, m, s = (float(x) for x in dms)
    return d + m / 60 + s / 3600


def _pdf(path: Path) -> Summary:
    from pypdf import PdfReader

    reader = PdfReader(path)
    summary = {"type": "PDF", "pages": str(len(reader.pages))}
    info: Any = reader.metadata or {}
    for key, label in (
        ("/Author", "author"),
        ("/Creator", "creator"),
        ("/Producer", "producer"),
        ("/Title", "title"),
        ("/CreationDate", "created"),
        ("/ModDate", "modified"),
    ):
        value = info.get(key)
        if value:
            summary[label] = str(value)
    return summary


def _main(argv: Sequence[str]) -> None:
    _limit()  # before any byte of a file is parsed
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    for arg in argv:
        print(json.dumps(read_one(Path(arg))), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1:])
