"""Hostile contents inside genuine bundles.

A malicious source cannot forge a bundle, but chooses what goes in one: files built to
crash or hang a parser, names built to inject markup. Those must import intact, without
hanging the workstation, and reach the responder as inert downloads.

A compromised server signs whatever it likes, including ciphertext that gpg inflates
far beyond its size.
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from securedrop_wm.drop import Drop
from securedrop_wm.workstation.errors import ImportRefusedError
from securedrop_wm.workstation.importing import import_bundle
from securedrop_wm.workstation.models import Case, Submission
from securedrop_wm.workstation.services import Workstation
from tests.conftest import Responders, new_source
from tests.workstation.fixtures import Station, export, login, report, source_reports

from .forge import Genuine, resign, tar_bytes

MIB = 1024 * 1024


def _png_bomb() -> bytes:
    """A PNG that claims 100,000 x 100,000 pixels (10 gigapixels) in a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 100_000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)


def _pdf_loop() -> bytes:
    """A PDF whose page tree contains itself."""
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >> endobj\n"
        b"3 0 obj << /Type /Pages /Kids [2 0 R] /Count 1 >> endobj\n"
        b"trailer << /Root 1 0 R >>\n%%EOF\n"
    )


def _exif_garbage() -> bytes:
    """A JPEG whose EXIF block points far outside itself."""
    tiff = b"II*\x00" + struct.pack("<I", 0x7FFFFFF0) + b"\xff" * 64
    app1 = b"Exif\x00\x00" + tiff
    return b"\xff\xd8\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + b"\xff\xd9"


HOSTILE_FILES = {
    "bomb.png": _png_bomb(),
    "loop.pdf": _pdf_loop(),
    "exif.jpg": _exif_garbage(),
    "<img src=x onerror=alert(1)>.html": b"<script>alert('responder')</script>",
    # A name with a bidi override ("\u202egpj.exe") is refused at the source now, and one
    # stored before is shown with a visible marker: tests/*/test_file_names.py.
    "empty.bin": b"",
}


def test_hostile_attachments_from_a_source_import_intact_and_stay_inert(
    client: FlaskClient, drop: Drop, station: Station, ws_client: FlaskClient, tmp_path: Path
) -> None:
    # Given a source who attaches files made to break parsers and to inject markup
    new_source(client)
    report(
        client,
        what_happened="<b>look</b> at <script>alert(1)</script> these",
        files=[(data, name) for name, data in HOSTILE_FILES.items()],
    )
    # When the responders import the bundle
    start = time.monotonic()
    result = import_bundle(station.ws, "admin", export(drop, tmp_path))
    # Then it imports whole, promptly, every file byte for byte
    assert result.files == len(HOSTILE_FILES)
    assert time.monotonic() - start < 90  # the metadata reader's limits held
    with station.ws.sessions() as db:
        files = {
            s.filename: s for s in db.scalars(select(Submission).where(Submission.kind == "file"))
        }
    assert set(files) == set(HOSTILE_FILES)
    for name, data in HOSTILE_FILES.items():
        assert (station.ws.settings.files_dir / files[name].uuid).read_bytes() == data
    # And the responder's pages show the names and text as text, files as downloads
    login(ws_client, station)
    page = ws_client.get(f"/cases/{_case_id(station.ws)}")
    assert page.status_code == 200
    assert "<img src=x" not in page.text and "<script>alert" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;.html" in page.text
    download = ws_client.get(f"/files/{files['<img src=x onerror=alert(1)>.html'].uuid}")
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in download.headers["Content-Security-Policy"]
    download.close()


def _case_id(ws: Workstation) -> int:
    with ws.sessions() as db:
        return int(db.scalars(select(Case.id)).one())


@pytest.mark.parametrize("kind", ["file", "message"])
def test_an_item_that_inflates_far_beyond_its_ciphertext_is_refused(
    drop: Drop, ws: Workstation, responders: Responders, tmp_path: Path, kind: str
) -> None:
    # Given a compromised server that signs a bundle whose file item (or message, which
    # is decrypted in memory) is 64 MiB of zeros compressed by gpg into a few kilobytes
    # (the real server never compresses)
    with tmp_path.joinpath("zeros").open("wb") as f:
        f.truncate(64 * MIB)
    bomb = subprocess.run(
        ["gpg", "--homedir", str(responders.home), "--batch", "--trust-model", "always"]
        + ["--compress-algo", "zlib", "-z", "9", "-r", responders.team_fingerprint]
        + ["-o", "-", "-e", str(tmp_path / "zeros")],
        capture_output=True,
        check=True,
    ).stdout
    assert len(bomb) < MIB
    source_reports(drop, "with a file", files=[(b"small", "a.bin")])
    genuine = Genuine(export(drop, tmp_path))
    items = {f"submissions/{i['id']}.gpg" for i in genuine.manifest["items"] if i["kind"] == kind}
    members = [(info, bomb if info.name in items else data) for info, data in genuine.members]

    def swap(manifest: dict[str, Any]) -> None:
        for item in manifest["items"]:
            if item["kind"] == kind:
                item["size"], item["sha256"] = len(bomb), hashlib.sha256(bomb).hexdigest()

    path = tmp_path / "bomb.tar"
    server = drop.settings
    path.write_bytes(
        tar_bytes(resign(members, server.signing_gpg_home, server.signing_fingerprint, swap))
    )
    # When it is imported, then it is refused rather than written out at 64 MiB
    start = time.monotonic()
    with pytest.raises(ImportRefusedError, match="decrypts to more than"):
        import_bundle(ws, "admin", path)
    assert time.monotonic() - start < 30
    # And nothing of it is kept
    assert list(ws.settings.files_dir.iterdir()) == []
    with ws.sessions() as db:
        assert db.scalars(select(Submission)).all() == []
