"""Chain of custody: each imported item records its ciphertext's SHA-256 (as the signed
manifest states it), its plaintext's and its bundle (manifest hash, sequence, who and
when); the case page shows them; a refused or failed import records none of it.

Every hash is computed here independently, from the bundle file and the decrypted data."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from securedrop_wm.drop import Drop
from securedrop_wm.workstation import importing
from securedrop_wm.workstation.errors import ImportRefusedError
from securedrop_wm.workstation.models import Case, ImportedBundle, Report, Submission
from securedrop_wm.workstation.services import Workstation
from tests.bundles.helpers import read_members, write_members
from tests.conftest import Responders
from tests.hostile_bundles.forge import resign, tar_bytes
from tests.workstation.fixtures import ADMIN, Station, export, login, source_reports


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _bundle_hashes(bundle: Path) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The manifest's SHA-256, each item's ciphertext SHA-256 and the manifest, read from
    the bundle file itself."""
    members = {info.name: data for info, data in read_members(bundle)}
    manifest = members["manifest.json"]
    ciphertexts = {
        name.removeprefix("submissions/").removesuffix(".gpg"): _sha(data)
        for name, data in members.items()
        if name.startswith("submissions/")
    }
    return _sha(manifest), ciphertexts, json.loads(manifest)


def _plain_decrypt(ws: Workstation, ciphertext: bytes) -> bytes:
    """The plaintext, decrypted by plain gpg with the workstation's keyring."""
    return subprocess.run(
        ["gpg", "--homedir", str(ws.settings.gpg_home), "--batch", "--quiet", "--decrypt"],
        input=ciphertext,
        capture_output=True,
        check=True,
    ).stdout


def _submissions(ws: Workstation) -> dict[str, Submission]:
    with ws.sessions() as db:
        rows = db.scalars(select(Submission)).all()
        for row in rows:
            _ = row.imported_bundle  # loaded while the session is open
        return {s.uuid: s for s in rows}


def test_every_item_records_its_ciphertext_plaintext_and_bundle(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    # Given a report with a message, an image and a binary file, exported by the server
    png, blob = _png(), b"\x00\xff" * 3000
    source_reports(drop, "They posted my address.", files=[(png, "a.png"), (blob, "b.bin")])
    bundle = export(drop, tmp_path)
    manifest_sha, ciphertexts, manifest = _bundle_hashes(bundle)
    # When it is imported
    before = station.clock()
    importing.import_bundle(station.ws, ADMIN, bundle)
    # Then each item records its ciphertext's hash, equal to the bundle's member's
    rows = _submissions(station.ws)
    assert {u: s.ciphertext_sha256 for u, s in rows.items()} == ciphertexts
    # And its plaintext's: the file on disk, the message as plain gpg decrypts it
    members = {info.name: data for info, data in read_members(bundle)}
    kinds = {s.kind for s in rows.values()}
    assert kinds == {"message", "file"}
    for uuid, row in rows.items():
        if row.kind == "file":
            plaintext = (station.ws.settings.files_dir / uuid).read_bytes()
            assert plaintext in (png, blob)
        else:
            plaintext = _plain_decrypt(station.ws, members[f"submissions/{uuid}.gpg"])
            assert json.loads(plaintext)["what_happened"] == "They posted my address."
        assert row.plaintext_sha256 == _sha(plaintext)
        # And the bundle it came in: manifest hash, sequence, who and when
        bundle_row = row.imported_bundle
        assert bundle_row is not None
        assert bundle_row.manifest_sha256 == manifest_sha == bundle_row.sha256
        assert bundle_row.sequence == manifest["sequence"]
        assert bundle_row.imported_by == ADMIN
        assert before <= bundle_row.imported_at <= station.clock()
    # And attachments were not parsed at import
    assert {s.metadata_json for s in rows.values() if s.kind == "file"} == {""}


def _unwrapped(html: str) -> str:
    """The page's text with the <wbr> break hints taken out of the hashes."""
    return html.replace("<wbr>", "")


def test_the_case_page_shows_the_custody_and_says_what_was_not_recorded(
    station: Station, drop: Drop, ws_client: FlaskClient, tmp_path: Path
) -> None:
    source_reports(drop, "first", files=[(_png(), "photo.png")])
    bundle = export(drop, tmp_path)
    manifest_sha, ciphertexts, _ = _bundle_hashes(bundle)
    importing.import_bundle(station.ws, ADMIN, bundle)
    rows = _submissions(station.ws)
    with station.ws.sessions() as db:
        case_id = db.scalars(select(Case.id)).one()
    login(ws_client, station)
    page = ws_client.get(f"/cases/{case_id}")
    assert page.status_code == 200
    text = _unwrapped(page.text)
    assert "Chain of custody" in text and "photo.png" in text
    for uuid, row in rows.items():
        assert f'<code class="sha256">{ciphertexts[uuid]}</code>' in text
        assert f'<code class="sha256">{row.plaintext_sha256}</code>' in text
    assert f'<code class="sha256">{manifest_sha}</code>' in text
    # Hashes can wrap: a break hint every 16 digits, none of the 64 on one unbreakable line
    assert re.search(r"<code class=\"sha256\">([0-9a-f]{16}<wbr>){3}[0-9a-f]{16}</code>", page.text)

    # Given an item imported before custody was recorded (as migration 0004 leaves it)
    with station.ws.write() as db:
        for row in db.scalars(select(Submission)):
            row.ciphertext_sha256 = row.plaintext_sha256 = None
            row.imported_bundle_id = None
    page = ws_client.get(f"/cases/{case_id}")
    assert page.status_code == 200
    custody = page.text[page.text.index('id="custody"') :]
    assert custody.count('class="not-recorded"') == 3 * len(rows)  # two hashes, the bundle
    assert manifest_sha not in _unwrapped(custody)


def _state(ws: Workstation) -> tuple[list[Any], list[str]]:
    with ws.sessions() as db:
        rows = [db.scalars(select(t)).all() for t in (Case, Report, Submission, ImportedBundle)]
    return rows, sorted(p.name for p in ws.settings.files_dir.iterdir())


def test_a_tampered_ciphertext_is_refused_and_no_custody_is_written(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    source_reports(drop, "x", files=[(b"evidence" * 200, "e.bin")])
    bundle = export(drop, tmp_path)
    members = read_members(bundle)
    for n, (info, data) in enumerate(members):
        if info.name.startswith("submissions/"):
            members[n] = (info, data[:-1] + bytes([data[-1] ^ 1]))  # one bit, same size
            break
    write_members(bundle, members)
    before = _state(station.ws)
    with pytest.raises(ImportRefusedError, match="does not match its SHA-256"):
        importing.import_bundle(station.ws, ADMIN, bundle)
    assert _state(station.ws) == before == ([[], [], [], []], [])


def test_an_item_failing_while_others_decrypt_in_parallel_leaves_nothing(
    station: Station, drop: Drop, responders: Responders, tmp_path: Path
) -> None:
    # Given a bundle, signed by the server, in which one file of several decrypts to far
    # more than its ciphertext (compressed, as a compromised server could), between
    # files that decrypt well
    zeros = tmp_path / "zeros"
    zeros.write_bytes(b"\0" * (4 << 20))
    bomb = subprocess.run(
        ["gpg", "--homedir", str(responders.home), "--batch", "--trust-model", "always"]
        + ["--compress-algo", "zlib", "-r", responders.team_fingerprint]
        + ["-o", "-", "-e", str(zeros)],
        capture_output=True,
        check=True,
    ).stdout
    files = [(bytes([n]) * 40_000, f"f{n}.bin") for n in range(6)]
    source_reports(drop, "several files", files=files)
    genuine = export(drop, tmp_path)
    members = read_members(genuine)
    manifest = json.loads(members[0][1])
    victim = [i for i in manifest["items"] if i["kind"] == "file"][3]["id"]
    name = f"submissions/{victim}.gpg"
    swapped = [(info, bomb if info.name == name else data) for info, data in members]

    def swap(m: dict[str, Any]) -> None:
        for item in m["items"]:
            if item["id"] == victim:
                item["size"], item["sha256"] = len(bomb), _sha(bomb)

    path = tmp_path / "forged.tar"
    server = drop.settings
    path.write_bytes(
        tar_bytes(resign(swapped, server.signing_gpg_home, server.signing_fingerprint, swap))
    )
    keys_before = _public_keys(station.ws)
    before = _state(station.ws)
    # When it is imported with two gpg processes at a time
    with pytest.raises(ImportRefusedError, match=f"item {victim} decrypts to more than"):
        importing.import_bundle(station.ws, ADMIN, path, workers=2)
    # Then no row, no file (not even a temporary one) and no key is left
    assert _state(station.ws) == before == ([[], [], [], []], [])
    assert _public_keys(station.ws) == keys_before
    # And the genuine bundle still imports whole afterwards
    result = importing.import_bundle(station.ws, ADMIN, genuine, workers=2)
    assert (result.reports, result.files) == (1, 6)
    stored = {s.filename: s for s in _submissions(station.ws).values() if s.kind == "file"}
    for data, filename in files:
        assert stored[filename].plaintext_sha256 == _sha(data)


def _public_keys(ws: Workstation) -> list[str]:
    return sorted(
        line.split(":")[4]
        for line in subprocess.run(
            ["gpg", "--homedir", str(ws.settings.gpg_home), "--batch", "--with-colons"]
            + ["--list-keys"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        if line.startswith("pub:")
    )
