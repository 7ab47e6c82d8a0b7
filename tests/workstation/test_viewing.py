"""Viewing sources' files (securedrop_wm/workstation/viewing.py): metadata read lazily in
the sandbox on first view, previews from checked pixels, clean copies without metadata,
a hostile corpus contained, nothing parsed when the sandbox is missing, previews purged
with their file. Files come in through a real export bundle and a real import."""

from __future__ import annotations

import io
import json
import struct
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image
from PIL.ExifTags import IFD
from sqlalchemy import select

from securedrop_wm.drop import Drop
from securedrop_wm.workstation import cases, importing, replies, retention, viewing
from securedrop_wm.workstation.models import Submission
from securedrop_wm.workstation.sandbox import Limits, Sandbox
from securedrop_wm.workstation.services import Workstation
from tests.workstation.fixtures import ADMIN, Station, export, source_reports

AUTHOR = "Jane Secret-Author"


def photo_with_gps() -> bytes:
    """A JPEG whose EXIF names a camera and a GPS position."""
    image = Image.new("RGB", (40, 30), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "EOS 5D"
    exif.get_ifd(IFD.GPSInfo).update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def pdf(objects: list[bytes], root: int = 1, info: int | None = None) -> bytes:
    """A PDF of ``objects`` (numbered from 1) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    trailer = b"/Size %d /Root %d 0 R" % (len(objects) + 1, root)
    if info:
        trailer += b" /Info %d 0 R" % info
    out += b"trailer\n<< %s >>\nstartxref\n%d\n%%%%EOF\n" % (trailer, xref)
    return bytes(out)


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(data), extra, data)


def hostile_pdf() -> bytes:
    """One page, a JavaScript open action, an embedded .exe, the author in Info and XMP."""
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
        b'22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/">'
        b"<dc:creator><rdf:Seq><rdf:li>" + AUTHOR.encode() + b"</rdf:li></rdf:Seq>"
        b"</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    return pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R /Metadata 8 0 R /Names << "
            b"/JavaScript << /Names [(x) 5 0 R] >> /EmbeddedFiles << /Names [(evil.exe) 7 0 R] "
            b">> >> >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
            _stream(b"0 0 1 rg 20 20 160 160 re f"),
            b"<< /S /JavaScript /JS (app.alert\\('owned'\\);) >>",
            _stream(b"MZ evil payload", b"/Type /EmbeddedFile"),
            b"<< /Type /Filespec /F (evil.exe) /EF << /F 6 0 R >> >>",
            _stream(xmp, b"/Type /Metadata /Subtype /XML"),
            b"<< /Author (" + AUTHOR.encode() + b") /Creator (SecretTool 1.0) >>",
        ],
        info=9,
    )


def png_declaring(width: int, height: int, rows: int) -> bytes:
    """A grey PNG declaring ``width`` x ``height`` whose data holds ``rows`` zero rows
    (all of them: a decompression bomb; fewer: a truncated image)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    data = b"".join(packer.compress(row) for _ in range(rows)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def polyglot() -> bytes:
    """A JPEG that is also a ZIP archive (a ZIP is read from its end)."""
    archive = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("payload.sh", "rm -rf ~")
    return photo_with_gps() + archive.getvalue()


def import_files(
    station: Station, drop: Drop, tmp_path: Path, files: dict[str, bytes]
) -> dict[str, str]:
    """Send ``files`` in one report, import the export bundle; their uuids by name."""
    source_reports(drop, "Files attached.", files=[(data, name) for name, data in files.items()])
    importing.import_bundle(station.ws, ADMIN, export(drop, tmp_path))
    with station.ws.sessions() as db:
        subs = db.scalars(select(Submission).where(Submission.kind == "file")).all()
        return {s.filename: s.uuid for s in subs}


def stored_metadata(ws: Workstation, uuid: str) -> str:
    with ws.sessions() as db:
        sub = db.scalar(select(Submission).where(Submission.uuid == uuid))
        assert sub is not None
        return sub.metadata_json


def test_metadata_is_read_on_first_view_and_stored(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    ws = station.ws
    uuids = import_files(station, drop, tmp_path, {"house.jpg": photo_with_gps(),
                                                "blob.bin": b"\x00\xff" * 5000})  # fmt: skip
    assert stored_metadata(ws, uuids["house.jpg"]) == ""  # import parses nothing
    photo = viewing.view_file(ws, uuids["house.jpg"])
    assert (photo.kind, photo.pages, photo.problem, photo.clean) == ("image", 1, None, "png")
    assert photo.metadata["camera make"] == "Canon"
    assert photo.metadata["gps"] == "52.52000, 13.40000"
    assert json.loads(stored_metadata(ws, uuids["house.jpg"])) == photo.metadata
    blob = viewing.view_file(ws, uuids["blob.bin"])
    assert (blob.kind, blob.pages, blob.clean) == ("other", 0, "")
    assert json.loads(stored_metadata(ws, uuids["blob.bin"]))["type"] == "unknown"
    # A second view reads the cache, not the file: even with the sandbox gone it shows.
    ws.sandbox = Sandbox(bwrap=str(tmp_path / "gone"))
    assert viewing.view_file(ws, uuids["house.jpg"]) == photo
    with Image.open(viewing.preview_page(ws, uuids["house.jpg"], 1)) as page:
        assert page.size == (40, 30)


def test_clean_copies_carry_no_metadata(station: Station, drop: Drop, tmp_path: Path) -> None:
    ws = station.ws
    uuids = import_files(station, drop, tmp_path, {"house.jpg": photo_with_gps(),
                                                "doc.pdf": hostile_pdf()})  # fmt: skip
    path, suffix = viewing.clean_copy(ws, ADMIN, uuids["house.jpg"])
    data = path.read_bytes()
    assert suffix == "png" and b"Canon" not in data and b"Exif" not in data
    with Image.open(path) as clean:
        assert not clean.getexif() and clean.size == (40, 30)
        assert clean.convert("RGB").getpixel((20, 15))[0] > 150  # the picture is there
    view = viewing.view_file(ws, uuids["doc.pdf"])
    assert view.metadata["author"] == AUTHOR and view.metadata["creator"] == "SecretTool 1.0"
    assert view.metadata["scripts"] == view.metadata["embedded files"] == "yes"
    path, suffix = viewing.clean_copy(ws, ADMIN, uuids["doc.pdf"])
    data = path.read_bytes()
    assert suffix == "pdf" and data.startswith(b"%PDF-")
    for hidden in (AUTHOR.encode(), b"Secret-Author", b"SecretTool", b"JavaScript", b"owned",
                   b"EmbeddedFile", b"evil", b"xmpmeta"):  # fmt: skip
        assert hidden not in data, hidden
    # The clean PDF is itself drawn: one page, blue square (read in the sandbox again).
    rendered = viewing.render(ws.sandbox, path)
    assert rendered.kind == "pdf" and len(rendered.pages) == 1 and "author" not in rendered.metadata


def test_a_hostile_corpus_is_contained(station: Station, drop: Drop, tmp_path: Path) -> None:
    ws = station.ws
    corpus = {
        "bomb.png": png_declaring(12_000, 12_000, 12_000),  # 144 Mpixels from ~150 kB
        "huge.png": png_declaring(65_535, 65_535, 1),
        "truncated.png": png_declaring(6_000, 6_000, 6_000)[:300],  # cut in its data
        "broken.pdf": b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\n" * 3,
        "script.pdf": hostile_pdf(),
        "polyglot.jpg": polyglot(),
        "page.html": b"<script>alert(1)</script><img src=x onerror=alert(2)> \xd8\xa7",
    }
    uuids = import_files(station, drop, tmp_path, corpus)
    started = time.monotonic()
    views = viewing.view_files(ws, [uuids[name] for name in corpus])
    assert time.monotonic() - started < 30
    by_name = {name: views[uuids[name]] for name in corpus}
    for name in ("bomb.png", "huge.png"):
        assert (by_name[name].problem, by_name[name].pages, by_name[name].clean) == (
            "too large",
            0,
            "",
        ), name
    for name in ("truncated.png", "broken.pdf"):
        assert (by_name[name].problem, by_name[name].pages) == ("unreadable", 0), name
    assert by_name["script.pdf"].problem is None and by_name["script.pdf"].pages == 1
    poly = by_name["polyglot.jpg"]
    assert (poly.kind, poly.pages, poly.clean) == ("image", 1, "png")
    clean, _ = viewing.clean_copy(ws, ADMIN, uuids["polyglot.jpg"])
    assert b"PK\x03\x04" not in clean.read_bytes() and b"payload" not in clean.read_bytes()
    text = by_name["page.html"]
    assert text.kind == "text" and text.text is not None and "<script>" in text.text  # raw,
    # for the page to escape (tests/journalist_ui/test_viewing_pages.py checks it does).
    with pytest.raises(cases.CaseNotFoundError):
        viewing.preview_page(ws, uuids["bomb.png"], 1)
    # The workstation is still up: its database answers, a good file still renders.
    assert len(cases.list_cases(ws, cases.CaseFilter())) == 1


def test_without_the_sandbox_nothing_is_parsed(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    ws = station.ws
    uuids = import_files(station, drop, tmp_path, {"house.jpg": photo_with_gps()})
    ws.sandbox = Sandbox(bwrap=str(tmp_path / "no-bwrap"))  # a real fault: no bubblewrap
    view = viewing.view_file(ws, uuids["house.jpg"])
    assert (view.problem, view.pages, view.metadata, view.clean) == ("unavailable", 0, {}, "")
    assert "bubblewrap is not installed" in view.detail
    assert stored_metadata(ws, uuids["house.jpg"]) == ""
    assert not (ws.settings.files_dir / "previews").exists()
    with pytest.raises(cases.CaseNotFoundError):
        viewing.clean_copy(ws, ADMIN, uuids["house.jpg"])


def test_the_renderers_output_is_checked_strictly() -> None:
    from securedrop_wm.workstation import render_worker

    def output(header: object, *pages: tuple[int, int, bytes]) -> bytes:
        blob = json.dumps(header).encode()
        body = b"".join(struct.pack(">HH", w, h) + rgb for w, h, rgb in pages)
        return render_worker.MAGIC + struct.pack(">I", len(blob)) + blob + body

    good = {"kind": "image", "metadata": {"type": "image (PNG)"}, "error": ""}
    assert viewing.parse_render(output(good, (2, 1, b"\x00" * 6)), 1 << 20).pages
    lies = [
        output(good, (2, 1, b"\x00" * 5)),  # fewer bytes than the size says
        output(good, (2, 1, b"\x00" * 6), (2, 1, b"\x00" * 6)),  # two pages for an image
        output(good, (2001, 1, b"\x00" * 6003)),  # wider than allowed
        output(good),  # no page and no error
        output({**good, "kind": "exe"}),
        output({**good, "metadata": {"k": "v" * 201}}),
        output({**good, "metadata": {"k": 1}}),
        output(good, (2, 1, b"\x00" * 6)) + b"x",  # trailing bytes
        b"GIF89a" + output(good, (2, 1, b"\x00" * 6)),
        render_worker.MAGIC + struct.pack(">I", 1 << 30),
    ]
    for lie in lies:
        with pytest.raises(viewing.RenderOutputError):
            viewing.parse_render(lie, 1 << 20)
    with pytest.raises(viewing.RenderOutputError):  # more than the output limit
        viewing.parse_render(output(good, (2, 1, b"\x00" * 6)), 10)


def test_purge_removes_previews_and_clean_copies(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    ws = station.ws
    uuids = import_files(station, drop, tmp_path, {"house.jpg": photo_with_gps()})
    viewing.view_file(ws, uuids["house.jpg"])
    previews = ws.settings.files_dir / "previews"
    assert [p.name for p in previews.iterdir()]  # page and clean copy are cached
    case_id = cases.list_cases(ws, cases.CaseFilter())[0].case.id
    cases.set_status(ws, ADMIN, case_id, "closed")
    replies.export_reply_bundle(ws, ADMIN)  # acknowledgements leave: nothing holds it
    station.clock.advance(days=ws.settings.retention_days + 1)
    assert len(retention.purge_due(ws, ADMIN)) == 1
    assert list(previews.iterdir()) == []


def test_a_render_that_takes_too_long_is_stopped_and_remembered(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    ws = station.ws
    uuids = import_files(station, drop, tmp_path, {"doc.pdf": hostile_pdf()})
    ws.sandbox = Sandbox(limits=Limits(wall_seconds=0.05))  # no renderer starts that fast
    started = time.monotonic()
    view = viewing.view_file(ws, uuids["doc.pdf"])
    assert time.monotonic() - started < 5
    assert (view.problem, view.pages, view.clean) == ("timeout", 0, "")
    ws.sandbox = Sandbox()  # remembered: not tried again on every view
    assert viewing.view_file(ws, uuids["doc.pdf"]).problem == "timeout"
