"""Viewing a source's file safely: previews, metadata and clean copies.

The app never parses an original outside the sandbox (sandbox.py). On first view the
renderer (render_worker.py) reads it there and sends back raw pixels and a metadata
summary; this module treats that output as hostile: it checks the header and every
size, builds each picture from the raw bytes and encodes the PNG itself. Plain text is
the exception: it is only decoded here (UTF-8 with replacement, bounded), never parsed.
Other kinds are offered only as a download.

What a render gives is cached under ``files_dir/previews/<file>/`` (same disk as the
originals): the pages as PNG, a clean copy (the image re-encoded from the pixels, or a
PDF assembled here from the page pictures: no metadata, no scripts, no attachments), and
``result.json``. The metadata summary is stored in ``Submission.metadata_json`` ("" until
read). :func:`remove_previews` goes with the file when a case is purged.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ..store import shred
from . import audit, render_worker
from .errors import CaseNotFoundError
from .models import Submission
from .sandbox import Sandbox, SandboxUnavailableError
from .services import Workstation

MAX_RENDER_BYTES = 64 * 1024 * 1024
MAX_TEXT_BYTES = 256 * 1024
_SNIFF_BYTES = 64 * 1024
_MAX_HEADER = 64 * 1024
_WORKER_INSIDE = "/sandbox/render_worker.py"
_KINDS = {"image", "pdf", "other"}
# Why a file is not shown; the web layer words each in the reader's language.
PROBLEMS = ("unavailable", "unreadable", "too large", "timeout", "missing")


class RenderOutputError(ValueError):
    """Raised when the renderer's output breaks the format: it is not used at all."""


@dataclass(frozen=True)
class Rendered:
    """The renderer's output, checked."""

    kind: str
    metadata: dict[str, str]
    error: str
    pages: list[tuple[int, int, bytes]] = field(default_factory=list)


@dataclass(frozen=True)
class FileView:
    """What the case page shows of one file.

    ``kind``: "image", "pdf", "text" or "other" (download only); ``pages``: how many
    preview pictures there are, ``sizes`` their width and height; ``problem``: one of
    :data:`PROBLEMS` when it is not shown (``detail`` says more, in English, for
    "unavailable"); ``clean``: the suffix of the clean copy ("png", "pdf") or "".
    """

    uuid: str
    kind: str
    pages: int = 0
    sizes: list[tuple[int, int]] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    text_truncated: bool = False
    problem: str | None = None
    detail: str = ""
    clean: str = ""


def parse_render(data: bytes, max_bytes: int) -> Rendered:
    """Check the renderer's output strictly and split it into header and pages.

    :raises RenderOutputError: anything out of format, size or count.
    """
    magic = render_worker.MAGIC
    if len(data) > max_bytes or not data.startswith(magic):
        raise RenderOutputError("not the renderer's format")
    at = len(magic)
    if len(data) < at + 4:
        raise RenderOutputError("truncated header")
    (length,) = struct.unpack(">I", data[at : at + 4])
    at += 4
    if length > _MAX_HEADER or len(data) < at + length:
        raise RenderOutputError("header too long or truncated")
    try:
        header: Any = json.loads(data[at : at + length].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise RenderOutputError("header is not JSON") from e
    at += length
    if not isinstance(header, dict) or header.get("kind") not in _KINDS:
        raise RenderOutputError("header is not an object of a known kind")
    error, meta = header.get("error", ""), header.get("metadata", {})
    if error not in ("", "unreadable", "too large") or not isinstance(meta, dict):
        raise RenderOutputError("bad error or metadata")
    if len(meta) > 40 or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 200 and len(v) <= 200
        for k, v in meta.items()
    ):
        raise RenderOutputError("metadata out of bounds")
    pages: list[tuple[int, int, bytes]] = []
    limit = {"image": 1, "pdf": render_worker.MAX_PAGES, "other": 0}[header["kind"]]
    while at < len(data):
        if len(pages) >= limit or len(data) < at + 4:
            raise RenderOutputError("too many pages or a truncated page header")
        width, height = struct.unpack(">HH", data[at : at + 4])
        at += 4
        size = width * height * 3
        side = render_worker.MAX_SIDE
        if not (0 < width <= side and 0 < height <= side) or len(data) < at + size:
            raise RenderOutputError("page out of bounds or truncated")
        pages.append((width, height, data[at : at + size]))
        at += size
    if header["kind"] != "other" and not error and not pages:
        raise RenderOutputError("no page and no error")
    return Rendered(header["kind"], dict(meta), error, pages)


def png(width: int, height: int, rgb: bytes) -> bytes:
    """A PNG of raw, already checked, RGB pixels."""
    from PIL import Image

    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), rgb).save(out, "PNG")
    return out.getvalue()


def clean_pdf(pages: list[tuple[int, int, bytes]]) -> bytes:
    """A new PDF with one picture per page, made from raw pixels: nothing else in it."""
    from PIL import Image

    images = [Image.frombytes("RGB", (w, h), rgb) for w, h, rgb in pages]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=150.0)
    return out.getvalue()


def looks_like_text(head: bytes) -> bool:
    """Whether a file that starts with ``head`` is plain text: no NUL byte, UTF-8 but for
    at most 1 % of bad bytes (shown as U+FFFD), and not something the renderer draws (a
    PDF may well be all ASCII)."""
    if b"\x00" in head or head.startswith((*render_worker.IMAGE_MAGIC, b"%PDF-")):
        return False
    decoded = head.decode("utf-8", "replace")
    # A character cut at the end of the sample is not a bad byte.
    return decoded[:-2].count("\ufffd") * 100 <= len(head)


def _interpreter_and_binds() -> tuple[str, list[tuple[Path, str]], str]:
    """The Python to run the renderer with, what it needs mounted, and its PYTHONPATH."""
    import PIL
    import pypdf

    python = os.path.realpath(sys.executable)
    if not python.startswith("/usr/"):
        raise SandboxUnavailableError(f"the renderer's Python ({python}) is not under /usr")
    binds = [(Path(render_worker.__file__), _WORKER_INSIDE)]
    folders = sorted({Path(m.__file__ or "").parent.parent for m in (PIL, pypdf)})
    inside = [f"/sandbox/lib{i}" for i in range(len(folders))]
    binds += zip(folders, inside, strict=True)
    return python, binds, ":".join(inside)


def render(sandbox: Sandbox, path: Path) -> Rendered:
    """Render the file at ``path`` in ``sandbox``: its metadata and bounded pixels.

    :raises SandboxUnavailableError: the sandbox cannot be set up; nothing was parsed.
    :raises RenderOutputError: the renderer crashed, ran out of time or lied.
    """
    sandbox.check()
    python, binds, pythonpath = _interpreter_and_binds()
    argv = [python, "-s", "-B", _WORKER_INSIDE]
    env = [("PYTHONPATH", pythonpath), ("PYTHONDONTWRITEBYTECODE", "1")]
    with path.open("rb") as f:
        result = sandbox.run(argv, f.fileno(), binds=binds, env=env)
    if result.timed_out:
        raise RenderOutputError("timeout")
    said = result.stderr.decode("utf-8", "replace").strip()[:300]
    # Faults of this machine, not of the file (not remembered against it): bubblewrap
    # could not mount what the renderer needs, or its libraries do not load there.
    if result.returncode != 0 and result.stderr.startswith(b"bwrap:"):
        raise SandboxUnavailableError(f"bubblewrap cannot set up the renderer's sandbox ({said})")
    if result.returncode == render_worker.EXIT_NO_LIBRARIES:
        raise SandboxUnavailableError(said)
    if not result.ok:
        raise RenderOutputError(f"the renderer failed ({result.returncode})")
    return parse_render(result.stdout, sandbox.limits.output_bytes)


def previews_dir(files_dir: Path, safe_name: str) -> Path:
    """Where the previews of the file ``safe_name`` are cached."""
    return files_dir / "previews" / safe_name


def remove_previews(files_dir: Path, safe_name: str) -> None:
    """Overwrite and remove the cached previews and clean copy of a file."""
    folder = previews_dir(files_dir, safe_name)
    if not folder.is_dir():
        return
    for item in folder.iterdir():
        shred(item)
    folder.rmdir()


def _submission(ws: Workstation, uuid: str) -> tuple[str, str]:
    with ws.sessions() as db:
        sub = db.scalar(select(Submission).where(Submission.uuid == uuid))
        if sub is None or sub.kind != "file" or not sub.safe_name:
            raise CaseNotFoundError("there is no such file")
        return sub.safe_name, sub.metadata_json


def _store_metadata(ws: Workstation, uuid: str, metadata: dict[str, str]) -> None:
    with ws.write() as db:
        sub = db.scalar(select(Submission).where(Submission.uuid == uuid))
        if sub is not None and not sub.metadata_json:
            sub.metadata_json = json.dumps(metadata)


def _write_cache(folder: Path, files: dict[str, bytes]) -> None:
    """Write a preview folder whole (a temporary folder renamed), or not at all."""
    folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = folder.parent / f".tmp-{secrets.token_hex(8)}"
    temp.mkdir(mode=0o700)
    try:
        for name, data in files.items():
            (temp / name).write_bytes(data)
        temp.rename(folder)
    except OSError:
        if folder.is_dir():  # rendered at the same time by another request
            shutil.rmtree(temp, ignore_errors=True)
            return
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _from_cache(uuid: str, folder: Path, metadata_json: str) -> FileView:
    result = json.loads((folder / "result.json").read_text())
    return FileView(
        uuid,
        result["kind"],
        pages=result["pages"],
        sizes=[(int(w), int(h)) for w, h in result["sizes"]],
        metadata=json.loads(metadata_json) if metadata_json else {},
        problem=result["problem"],
        clean=result["clean"],
    )


def view_file(ws: Workstation, uuid: str) -> FileView:
    """What the case page shows of the file ``uuid``; renders it on first view.

    :raises CaseNotFoundError: no such file.
    """
    safe_name, metadata_json = _submission(ws, uuid)
    original = ws.settings.files_dir / safe_name
    folder = previews_dir(ws.settings.files_dir, safe_name)
    if not original.is_file():
        return FileView(uuid, "other", problem="missing")
    with original.open("rb") as f:
        head = f.read(_SNIFF_BYTES)
    if looks_like_text(head):
        if not metadata_json:
            _store_metadata(ws, uuid, {"type": "text"})
        with original.open("rb") as f:
            raw = f.read(MAX_TEXT_BYTES + 1)
        text = raw[:MAX_TEXT_BYTES].decode("utf-8", "replace")
        return FileView(uuid, "text", metadata={"type": "text"}, text=text,
                        text_truncated=len(raw) > MAX_TEXT_BYTES)  # fmt: skip
    if (folder / "result.json").is_file():
        if metadata_json:
            return _from_cache(uuid, folder, metadata_json)
    if original.stat().st_size > MAX_RENDER_BYTES:
        return FileView(uuid, "other", problem="too large")
    try:
        rendered = render(ws.sandbox, original)
    except SandboxUnavailableError as e:
        return FileView(uuid, "other", problem="unavailable", detail=str(e))
    except RenderOutputError as e:
        rendered = Rendered("other", {}, "timeout" if str(e) == "timeout" else "unreadable")
    files, clean = _cache_files(rendered)
    sizes = [[w, h] for w, h, _ in rendered.pages]
    result = {"kind": rendered.kind, "pages": len(sizes), "sizes": sizes}
    result["problem"] = rendered.error or None
    files["result.json"] = json.dumps({**result, "clean": clean}).encode()
    _write_cache(folder, files)
    _store_metadata(ws, uuid, rendered.metadata)
    _, stored = _submission(ws, uuid)
    return _from_cache(uuid, folder, stored)


def _cache_files(rendered: Rendered) -> tuple[dict[str, bytes], str]:
    files = {f"page-{n}.png": png(*page) for n, page in enumerate(rendered.pages, start=1)}
    if rendered.kind == "image" and rendered.pages:
        files["clean.png"] = files["page-1.png"]
        return files, "png"
    if rendered.kind == "pdf" and rendered.pages:
        files["clean.pdf"] = clean_pdf(rendered.pages)
        return files, "pdf"
    return files, ""


def view_files(ws: Workstation, uuids: Iterable[str]) -> dict[str, FileView]:
    """:func:`view_file` of each of ``uuids``."""
    return {uuid: view_file(ws, uuid) for uuid in uuids}


def preview_page(ws: Workstation, uuid: str, page: int) -> Path:
    """The PNG of page ``page`` (from 1) of the file ``uuid``, rendered if need be.

    :raises CaseNotFoundError: no such file or page.
    """
    view = view_file(ws, uuid)
    if not 1 <= page <= view.pages:
        raise CaseNotFoundError("there is no such page")
    safe_name, _ = _submission(ws, uuid)
    return previews_dir(ws.settings.files_dir, safe_name) / f"page-{page}.png"


def clean_copy(ws: Workstation, actor: str, uuid: str) -> tuple[Path, str]:
    """The clean copy of the file ``uuid`` and its suffix; the download is audited.

    :raises CaseNotFoundError: no such file, or no clean copy of it.
    """
    view = view_file(ws, uuid)
    if not view.clean:
        raise CaseNotFoundError("there is no clean copy of this file")
    safe_name, _ = _submission(ws, uuid)
    path = previews_dir(ws.settings.files_dir, safe_name) / f"clean.{view.clean}"
    with ws.write() as db:
        sub = db.scalar(select(Submission).where(Submission.uuid == uuid))
        assert sub is not None
        audit.record(
            db, ws.now(), actor, "file.download", case_id=sub.report.case_id, detail=f"{uuid} clean"
        )
    return path, view.clean
