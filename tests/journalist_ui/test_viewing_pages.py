"""The case page shows sources' files safely: pictures drawn from the sandbox's pixels,
text escaped, metadata explained in plain words, a clean copy and a warned original; and
when the sandbox cannot be set up, it says so and nothing is read."""

from __future__ import annotations

import io
import re
from pathlib import Path

from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from securedrop_wm.drop import Drop
from securedrop_wm.workstation.models import AuditEvent, Submission
from securedrop_wm.workstation.sandbox import Sandbox
from tests.workstation.fixtures import Station, export, import_through_ui, login, source_reports
from tests.workstation.test_viewing import hostile_pdf, photo_with_gps

TEXT = b"<script>alert(1)</script>\n\xd8\xb4\xd9\x83\xd8\xb1\xd8\xa7 \xff " + b"text " * 30


def _open_case(
    client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> tuple[str, dict]:
    source_reports(
        drop,
        "See the files.",
        files=[
            (photo_with_gps(), "house.jpg"),
            (TEXT, "note.txt"),
            (hostile_pdf(), "doc.pdf"),
            (b"\x00\x01" * 100, "blob.bin"),
        ],  # fmt: skip
    )
    assert login(client, station).status_code == 302
    import_through_ui(client, export(drop, tmp_path))
    case_url = re.search(r'href="(/cases/\d+)"', client.get("/").text)
    assert case_url
    with station.ws.sessions() as db:
        uuids = {s.filename: s.uuid for s in db.scalars(select(Submission)) if s.kind == "file"}
    return case_url.group(1), uuids


def test_the_case_page_shows_files_safely(
    ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    case_url, uuids = _open_case(ws_client, station, drop, tmp_path)
    page = ws_client.get(case_url)
    assert page.status_code == 200
    html = page.text
    assert "img-src 'self';" in page.headers["Content-Security-Policy"]
    # The photo: a picture this app drew, with alt text, and what its metadata reveals.
    photo = uuids["house.jpg"]
    img = re.search(rf'<img class="preview" src="/files/{photo}/page/1.png"[^>]*>', html)
    assert img and 'alt="Picture of house.jpg"' in img.group(0)
    assert "This photo contains GPS coordinates (52.52000, 13.40000)" in html
    assert "It names the device it was made with: Canon EOS 5D." in html
    picture = ws_client.get(f"/files/{photo}/page/1.png")
    assert picture.mimetype == "image/png"
    with Image.open(io.BytesIO(picture.get_data())) as drawn:
        assert drawn.size == (40, 30) and not drawn.getexif()
    # Its clean copy downloads with no EXIF, and the download is audited.
    clean = ws_client.get(f"/files/{photo}/clean")
    assert clean.headers["Content-Disposition"] == f"attachment; filename=clean-copy-{photo}.png"
    assert b"Canon" not in clean.get_data() and b"Exif" not in clean.get_data()
    with station.ws.sessions() as db:
        details = db.scalars(select(AuditEvent.detail).where(AuditEvent.action == "file.download"))
        assert f"{photo} clean" in list(details)
    # The text: escaped, in a <pre dir="auto">, never markup.
    assert '<pre class="message file-text" dir="auto">&lt;script&gt;alert(1)&lt;/script&gt;' in html
    assert "<script>" not in html and "\ufffd" in html
    # The PDF: pages as pictures; what it hides is said in words.
    doc = uuids["doc.pdf"]
    assert f'src="/files/{doc}/page/1.png"' in html
    assert "It names a person: Jane Secret-Author." in html
    assert "It contains scripts. They were not run here" in html
    assert "It contains files inside it." in html
    clean_pdf = ws_client.get(f"/files/{doc}/clean")
    assert clean_pdf.mimetype == "application/pdf" and b"Secret-Author" not in clean_pdf.get_data()
    # Anything else: a download only. Every original: a neutral name and a warning.
    blob = uuids["blob.bin"]
    assert "This kind of file is not shown here: it can only be downloaded." in html
    assert f'href="/files/{blob}/clean"' not in html
    assert html.count("The original may contain hidden data") == 4
    original = ws_client.get(f"/files/{photo}")
    assert original.headers["Content-Disposition"] == f"attachment; filename=attachment-{photo}.bin"
    assert original.get_data() == photo_with_gps()
    for response in (picture, clean, clean_pdf, original):
        response.close()
    # No page of a file that has none, no file that does not exist, nothing logged out.
    assert ws_client.get(f"/files/{photo}/page/2.png").status_code == 404
    assert ws_client.get(f"/files/{blob}/page/1.png").status_code == 404
    assert ws_client.get(f"/files/{blob}/clean").status_code == 404
    assert ws_client.get("/files/no-such-file/clean").status_code == 404
    ws_client.post("/logout", data={"csrf_token": _csrf(ws_client, case_url)})
    assert ws_client.get(f"/files/{photo}/page/1.png").status_code == 302


def _csrf(client: FlaskClient, url: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).text)
    assert found
    return found.group(1)


def test_without_the_sandbox_the_page_says_why_and_reads_nothing(
    ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    station.ws.sandbox = Sandbox(bwrap=str(tmp_path / "missing-bwrap"))  # a real fault
    case_url, uuids = _open_case(ws_client, station, drop, tmp_path)
    html = ws_client.get(case_url).text
    assert html.count("the sandbox that opens files safely cannot be set up") == 3
    assert "bubblewrap is not installed" in html
    assert "<img" not in html and "GPS" not in html and "Download a copy without" not in html
    assert ws_client.get(f"/files/{uuids['house.jpg']}/page/1.png").status_code == 404
    with station.ws.sessions() as db:
        assert db.scalar(select(Submission.metadata_json).where(
            Submission.uuid == uuids["house.jpg"])) == ""  # fmt: skip
    # Text needs no parser: it is still shown, escaped.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
