"""The renderer: runs INSIDE the sandbox (sandbox.py), reads a file on standard input and
writes raw pixels and a metadata summary on standard output.

It is started as a script (``python3 render_worker.py``) with only the standard library,
Pillow and pypdf at hand; it imports nothing of securedrop_wm. PDFs are drawn by
poppler's ``pdftoppm``, run by this script inside the same sandbox. What it writes is
untrusted: viewing.py checks every size before it uses a byte. The format::

    b"SDWM-RENDER-1\\n"
    u32 length, then that much UTF-8 JSON: {"kind": ..., "metadata": {...}, "error": ...}
    per page: u16 width, u16 height, then width * height * 3 bytes of RGB

(big-endian). At most :data:`MAX_PAGES` pages, each at most :data:`MAX_SIDE` a side.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import warnings
from typing import Any

MAGIC = b"SDWM-RENDER-1\n"
MAX_SIDE = 2000
MAX_PAGES = 20
PDF_SIDE = 1600
MAX_PIXELS = 40_000_000
MAX_VALUE_CHARS = 200
EXIT_NO_LIBRARIES = 3
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"II*\x00", b"MM\x00*", b"RIFF", b"BM")
# EXIF tags that say who, where, when or with what a picture was made.
EXIF_TAGS = {
    0x010F: "camera make",
    0x0110: "camera model",
    0x0131: "software",
    0x013B: "author",
    0x8298: "copyright",
    0x0132: "modified",
    0x9003: "taken",
    0xA430: "camera owner",
    0xA431: "camera serial number",
    0xA434: "lens model",
}
PDF_INFO = {
    "/Author": "author",
    "/Creator": "creator",
    "/Producer": "producer",
    "/Title": "title",
    "/CreationDate": "created",
    "/ModDate": "modified",
}

Page = tuple[int, int, bytes]


def main() -> None:
    """Render standard input; exit 0 with a result (an ``error`` one included), or
    :data:`EXIT_NO_LIBRARIES` before reading a byte when Pillow or pypdf cannot load."""
    warnings.simplefilter("ignore")
    try:
        import PIL.Image  # noqa: F401
        import pypdf  # noqa: F401
    except ImportError as e:
        print(f"the renderer cannot load its libraries: {e}", file=sys.stderr)
        sys.exit(EXIT_NO_LIBRARIES)
    head = os.pread(0, 16, 0)
    kind, meta, error = "other", {"type": "unknown"}, ""
    pages: list[Page] = []
    try:
        if head.startswith(IMAGE_MAGIC):
            kind = "image"
            pages = render_image(meta)
        elif head.startswith(b"%PDF-"):
            kind = "pdf"
            pages = render_pdf(meta)
    except Exception as e:  # noqa: BLE001 - a hostile file may break any parser
        error = "too large" if "DecompressionBomb" in type(e).__name__ else "unreadable"
        pages = []
    header = {"kind": kind, "metadata": _bounded(meta), "error": error}
    out = sys.stdout.buffer
    blob = json.dumps(header).encode()
    out.write(MAGIC + struct.pack(">I", len(blob)) + blob)
    for width, height, rgb in pages:
        out.write(struct.pack(">HH", width, height) + rgb)
    out.flush()


def _bounded(meta: dict[str, str]) -> dict[str, str]:
    items = list(meta.items())[:40]
    return {k[:MAX_VALUE_CHARS]: str(v).strip("\x00 ")[:MAX_VALUE_CHARS] for k, v in items}


def render_image(meta: dict[str, str]) -> list[Page]:
    """One page of pixels of the image on standard input; its EXIF summary into ``meta``."""
    from PIL import Image, ImageOps
    from PIL.ExifTags import IFD

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    with Image.open(os.fdopen(os.dup(0), "rb")) as image:
        meta.update(type=f"image ({image.format})", size=f"{image.width} x {image.height}")
        exif = image.getexif()
        tags = dict(exif)
        tags.update(exif.get_ifd(IFD.Exif))
        for tag, label in EXIF_TAGS.items():
            if tag in tags and str(tags[tag]).strip("\x00 "):
                meta[label] = str(tags[tag])
        gps = exif.get_ifd(IFD.GPSInfo)
        if gps:
            meta["gps"] = _gps(gps)
        for key in ("comment", "Comment", "Description", "Author"):
            if key in image.info:
                meta[key.lower()] = str(image.info[key])
        image.draft("RGB", (MAX_SIDE, MAX_SIDE))
        upright = ImageOps.exif_transpose(image)
        rgb = upright.convert("RGB")
        rgb.thumbnail((MAX_SIDE, MAX_SIDE))
        return [(rgb.width, rgb.height, rgb.tobytes())]


def _gps(gps: dict[int, Any]) -> str:
    try:
        lat = _degrees(gps[2]) * (-1 if gps.get(1) == "S" else 1)
        lon = _degrees(gps[4]) * (-1 if gps.get(3) == "W" else 1)
        return f"{lat:.5f}, {lon:.5f}"
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return "present"


def _degrees(dms: Any) -> float:
    d, m, s = (float(x) for x in dms)
    return d + m / 60 + s / 3600


def render_pdf(meta: dict[str, str]) -> list[Page]:
    """Up to MAX_PAGES pages drawn by pdftoppm; the document's metadata into ``meta``."""
    meta["type"] = "PDF"
    data = os.fdopen(os.dup(0), "rb").read()
    try:
        meta.update(_pdf_metadata(data))
    except Exception:  # noqa: BLE001 - the pages may still draw
        meta["note"] = "its metadata could not be read"
    if b"/JavaScript" in data or b"/JS" in data:
        meta["scripts"] = "yes"
    if b"/EmbeddedFile" in data:
        meta["embedded files"] = "yes"
    os.lseek(0, 0, os.SEEK_SET)
    drawn = subprocess.run(
        ["/usr/bin/pdftoppm", "-q", "-scale-to", str(PDF_SIDE), "-f", "1", "-l", str(MAX_PAGES)]
        + ["-"],
        stdin=0,
        capture_output=True,
        check=False,
    )
    pages = _ppms(drawn.stdout)
    if not pages:
        raise ValueError("no page could be drawn")
    return pages


def _pdf_metadata(data: bytes) -> dict[str, str]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    meta = {"pages": str(len(reader.pages))}
    info: Any = reader.metadata or {}
    for key, label in PDF_INFO.items():
        if info.get(key):
            meta[label] = str(info[key])
    xmp = reader.xmp_metadata
    if xmp is not None and "author" not in meta and xmp.dc_creator:
        meta["author"] = ", ".join(map(str, xmp.dc_creator))
    return meta


def _ppms(data: bytes) -> list[Page]:
    """The binary PPMs pdftoppm wrote one after another (8 bits, RGB)."""
    pages: list[Page] = []
    at = 0
    while at < len(data) and len(pages) < MAX_PAGES:
        fields: list[bytes] = []
        while len(fields) < 4:
            while data[at : at + 1].isspace():
                at += 1
            end = at
            while end < len(data) and not data[end : end + 1].isspace():
                end += 1
            fields.append(data[at:end])
            at = end
        at += 1  # the single whitespace after the maximum value
        magic, width, height, maxval = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
        if magic != b"P6" or maxval != 255 or not (0 < width <= MAX_SIDE >= height > 0):
            raise ValueError("unexpected output from pdftoppm")
        size = width * height * 3
        if len(data) - at < size:
            raise ValueError("truncated output from pdftoppm")
        pages.append((width, height, data[at : at + size]))
        at += size
    return pages


if __name__ == "__main__":
    main()
