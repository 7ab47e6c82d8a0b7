"""Import: verified against the pinned server key, decrypted with the team key, all or
nothing, idempotent; attachments not parsed at import."""

from __future__ import annotations

import errno
import io
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from PIL.ExifTags import IFD
from sqlalchemy import func, select

from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop
from securedrop_wm.errors import KeyMissingError
from securedrop_wm.models import Source
from securedrop_wm.workstation import importing
from securedrop_wm.workstation.errors import (
    ImportRefusedError,
    SecretKeyLockedError,
    SecretKeyMissingError,
)
from securedrop_wm.workstation.models import Case, Report, Submission
from securedrop_wm.workstation.services import Workstation
from tests.conftest import short_tempdir
from tests.workstation.fixtures import ADMIN, Station, export, source_reports


def _counts(ws: Workstation) -> tuple[int, int, int, list[str]]:
    with ws.sessions() as db:
        counts = tuple(
            int(db.scalar(select(func.count()).select_from(t)) or 0)
            for t in (Case, Report, Submission)
        )
    files = sorted(p.name for p in ws.settings.files_dir.iterdir())
    return (*counts, files)  # type: ignore[return-value]


def _photo_with_gps() -> bytes:
    image = Image.new("RGB", (4, 3))
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif.get_ifd(IFD.GPSInfo).update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_import_decrypts_exactly_and_parses_no_attachment(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    photo = _photo_with_gps()
    source_reports(
        drop,
        "Someone photographed my house.",
        files=[(photo, "house.jpg"), (b"\x00\xff" * 5000, "blob.bin")],
        category="doxxing",
        urgency="urgent",
        reply_language="de",
        wiki="de.wikipedia.org",
    )
    bundle = export(drop, tmp_path)
    preview = importing.preview_bundle(station.ws, bundle)
    assert (preview.items, preview.new_items, preview.files, preview.urgent) == (3, 3, 2, 1)
    assert _counts(station.ws)[:3] == (0, 0, 0)  # previewing imports nothing
    result = importing.import_bundle(station.ws, ADMIN, bundle)
    assert (result.new_cases, result.reports, result.files) == (1, 1, 2)
    with station.ws.sessions() as db:
        case = db.scalars(select(Case)).one()
        assert (case.category, case.urgency, case.reply_language) == ("doxxing", "urgent", "de")
        report = case.reports[0]
        assert report.text == "Someone photographed my house." and report.wiki == "de.wikipedia.org"
        files = {s.filename: s for s in report.submissions if s.kind == "file"}
    saved = {n: (station.ws.settings.files_dir / s.uuid).read_bytes() for n, s in files.items()}
    assert saved == {"house.jpg": photo, "blob.bin": b"\x00\xff" * 5000}
    # Attachments are not parsed at import: their metadata is read on first view.
    assert {s.metadata_json for s in files.values()} == {""}


def test_the_same_bundle_twice_changes_nothing_and_a_superset_adds_only_news(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    login = source_reports(drop, "first")
    first = export(drop, tmp_path, "1.tar")
    importing.import_bundle(station.ws, ADMIN, first)
    before = _counts(station.ws)
    assert importing.import_bundle(station.ws, ADMIN, first).already_imported
    assert _counts(station.ws) == before
    # The server exports everything not yet acknowledged: the first report comes again.
    source_reports(drop, "second", login=login)
    second = importing.import_bundle(station.ws, ADMIN, export(drop, tmp_path, "2.tar"))
    assert (second.skipped, second.reports, second.new_cases) == (1, 1, 0)
    with station.ws.sessions() as db:
        texts = [r.text for r in db.scalars(select(Report).order_by(Report.id))]
    assert texts == ["first", "second"]


def test_a_tampered_bundle_is_refused_and_nothing_is_imported(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    source_reports(drop, "x", files=[(b"payload" * 100, "p.bin")])
    bundle = export(drop, tmp_path)
    data = bytearray(bundle.read_bytes())
    index = data.rindex(b"\x00" * 1024) - 2048  # inside the last member's data
    data[index] ^= 0xFF
    bundle.write_bytes(bytes(data))
    before = _counts(station.ws)
    with pytest.raises(ImportRefusedError, match="bundle refused"):
        importing.import_bundle(station.ws, ADMIN, bundle)
    assert _counts(station.ws) == before


def test_a_failure_in_the_last_step_takes_back_the_source_keys(
    station: Station, drop: Drop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a bundle from a new source, whose key the workstation does not have yet
    source_reports(drop, "They know where I live.", files=[(b"proof" * 100, "p.bin")])
    bundle = export(drop, tmp_path)
    with drop.sessions() as db:
        key = db.scalars(select(Source.key_fingerprint)).one()
    before = _counts(station.ws)

    # When the disk fails while the decrypted files are moved into place, after the key
    # was imported (a fake: an I/O error at that moment cannot be caused on demand)
    def failing_disk(ws: Workstation, decrypted: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(importing, "_place_files", failing_disk)
    with pytest.raises(OSError, match="Input/output error"):
        importing.import_bundle(station.ws, ADMIN, bundle)
    # Then the keyring lacks the key again, and the database and files are as they were
    with pytest.raises(KeyMissingError):
        station.ws.gpg.key_info(key)
    assert _counts(station.ws) == before
    # And once the disk works again, the same bundle imports whole, key included
    monkeypatch.undo()
    assert importing.import_bundle(station.ws, ADMIN, bundle).reports == 1
    assert station.ws.gpg.key_info(key).can_encrypt


def test_a_bundle_from_another_server_is_refused(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    source_reports(drop, "x")
    bundle = export(drop, tmp_path)
    # An impostor server: its key is known to the workstation, but it is not the pinned one.
    home = short_tempdir("sdwm-impostor-")
    try:
        impostor = GnuPG(home)
        fpr = impostor.create_key("impostor", None)
        station.ws.gpg.import_keys(impostor.export_public_key(fpr))
        impostor.close()
        station.ws.settings = station.ws.settings.__class__(
            **{**station.ws.settings.__dict__, "server_fingerprint": fpr}
        )
        with pytest.raises(ImportRefusedError, match="bundle refused"):
            importing.import_bundle(station.ws, ADMIN, bundle)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert _counts(station.ws)[:3] == (0, 0, 0)


def _delete_secret_key(ws: Workstation, fingerprint: str) -> None:
    subprocess.run(
        ["gpg", "--homedir", str(ws.settings.gpg_home), "--batch", "--yes"]
        + ["--delete-secret-keys", fingerprint],
        check=True,
        capture_output=True,
    )


def test_a_missing_team_secret_key_is_said_clearly(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    source_reports(drop, "x")
    bundle = export(drop, tmp_path)
    _delete_secret_key(station.ws, station.ws.team_fingerprint())
    with pytest.raises(SecretKeyMissingError, match="secret part of the team key"):
        importing.import_bundle(station.ws, ADMIN, bundle)
    assert _counts(station.ws)[:3] == (0, 0, 0)


def test_a_locked_team_key_asks_for_its_passphrase(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    source_reports(drop, "locked away", files=[(b"abc", "a.txt")])
    bundle = export(drop, tmp_path)
    home = str(station.ws.settings.gpg_home)
    fpr = station.ws.team_fingerprint()
    # Give the team key a passphrase, as a careful team would.
    _protect(home, fpr, "team passphrase")
    with pytest.raises(SecretKeyLockedError, match="passphrase"):
        importing.import_bundle(station.ws, ADMIN, bundle)
    with pytest.raises(SecretKeyLockedError):
        importing.import_bundle(station.ws, ADMIN, bundle, passphrase="wrong one")
    assert _counts(station.ws)[:3] == (0, 0, 0)
    result = importing.import_bundle(station.ws, ADMIN, bundle, passphrase="team passphrase")
    assert (result.reports, result.files) == (1, 1)


def _protect(home: str, fingerprint: str, passphrase: str) -> None:
    """Set a passphrase on an unprotected secret key (loopback: gpg asks only the new one)."""
    subprocess.run(
        ["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback"]
        + ["--passphrase", passphrase, "--passwd", fingerprint],
        check=True,
        capture_output=True,
    )
