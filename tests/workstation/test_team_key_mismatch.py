"""A workstation whose team key is not the one the drop encrypts to is told so, by name,
before anything is decrypted: not "the team's secret key is locked" for a key that has
no passphrase (what it said before)."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop
from securedrop_wm.workstation import importing
from securedrop_wm.workstation.errors import ImportRefusedError
from tests.bundles.helpers import reply_bundle
from tests.conftest import Responders, csrf_token
from tests.workstation.fixtures import ADMIN, Station, export, login, source_reports


def _another_team_key(station: Station) -> str:
    """Make the workstation's team key a new key, as a setup left empty once did."""
    other = station.ws.gpg.create_key("another team", None)
    station.ws.settings = dataclasses.replace(station.ws.settings, team_fingerprint=other)
    return other


def test_import_names_the_key_it_expected(station: Station, drop: Drop, tmp_path: Path) -> None:
    source_reports(drop, "for the real team")
    bundle = export(drop, tmp_path)
    other = _another_team_key(station)
    preview = importing.preview_bundle(station.ws, bundle)
    assert preview.key_mismatch is not None and other in preview.key_mismatch
    with pytest.raises(ImportRefusedError) as refused:
        importing.import_bundle(station.ws, ADMIN, bundle)
    message = str(refused.value)
    assert other in message and "not to this workstation's team key" in message
    assert "locked" not in message and "passphrase" not in message
    # The team key the drop uses still imports it (nothing was half-written before).
    station.ws.settings = dataclasses.replace(
        station.ws.settings, team_fingerprint=drop.settings.team_fingerprint
    )
    assert importing.preview_bundle(station.ws, bundle).key_mismatch is None
    assert importing.import_bundle(station.ws, ADMIN, bundle).reports == 1


def test_the_preview_page_warns_before_the_import(
    station: Station, drop: Drop, ws_client: FlaskClient, tmp_path: Path
) -> None:
    source_reports(drop, "for the real team")
    bundle = export(drop, tmp_path)
    other = _another_team_key(station)
    login(ws_client, station)
    page = ws_client.get("/import")
    upload = {
        "csrf_token": csrf_token(page.text),
        "bundle": (io.BytesIO(bundle.read_bytes()), "b.tar"),
    }
    preview = ws_client.post("/import", data=upload)
    assert preview.status_code == 200
    warning = re.search(r'<p[^>]*id="key-mismatch"[^>]*>(.*?)</p>', preview.text, re.S)
    assert warning and other in warning.group(1)


def test_a_reply_bundle_given_to_the_import_is_named_as_such(
    station: Station, drop: Drop, signer_gpg: GnuPG, responders: Responders, tmp_path: Path
) -> None:
    # The workstation's own reply bundle, carried back to its import by mistake: said in
    # words, not only as "signed by key <number>".
    bundle = reply_bundle(signer_gpg, responders, drop, tmp_path / "replies.tar")
    with pytest.raises(ImportRefusedError, match="this is a reply bundle") as refused:
        importing.preview_bundle(station.ws, bundle)
    assert "not an export bundle" in str(refused.value)
