"""Export manifest schema 2: the server lists back the reply bundles it imported
(``replies_received``: sequence, day, reply ids) for 90 days, so the workstation can tell
which replies reached it; schema 1 bundles, without the list, are still read."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from securedrop_wm.bundles import (
    EXPORT_SCHEMA_VERSION,
    ExportManifest,
    ReceivedReplies,
    ReplyFile,
    export_bundle,
    import_reply_bundle,
    verify_export_bundle,
)
from securedrop_wm.bundles.archive import _write_bundle
from securedrop_wm.bundles.kept import RECEIVED_REPLIES_DAYS
from securedrop_wm.bundles.manifest import _export_json
from securedrop_wm.bundles.server import latest_export
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop
from securedrop_wm.models import BundleRecord
from tests.conftest import Responders

from .helpers import new_id, read_members, reply_bundle, source_uuid, submit


def _exported(drop: Drop, gpg: GnuPG, workdir: Path, path: Path) -> ExportManifest:
    export_bundle(drop, path)
    with verify_export_bundle(path, gpg, drop.settings.signing_fingerprint, workdir) as v:
        return v.manifest


def _replies(drop: Drop, tmp_path: Path, source_id: str, n: int) -> list[ReplyFile]:
    files = []
    for _ in range(n):
        reply_id = new_id()
        ciphertext = tmp_path / f"{reply_id}.gpg"
        ciphertext.write_bytes(b"\x85" + bytes(40))  # the server stores it as it is
        files.append(ReplyFile(reply_id, source_id, ciphertext))
    return files


def test_the_export_lists_the_reply_bundles_received_with_their_reply_ids(
    drop: Drop,
    workstation_gpg: GnuPG,
    signer_gpg: GnuPG,
    responders: Responders,
    workdir: Path,
    tmp_path: Path,
) -> None:
    # Given nothing received yet: schema 2, an empty list
    sent = submit(drop)
    first = _exported(drop, workstation_gpg, workdir, tmp_path / "e1.tar")
    assert EXPORT_SCHEMA_VERSION == 2
    assert (first.schema, first.replies_received) == (2, ())
    manifest_json = json.loads(read_members(tmp_path / "e1.tar")[0][1])
    assert manifest_json["replies_received"] == []
    # When two reply bundles arrive, one with two replies, one acknowledging only
    replies = _replies(drop, tmp_path, source_uuid(drop, sent.login), 2)
    one = reply_bundle(signer_gpg, responders, drop, tmp_path / "r1.tar", replies=replies)
    two = reply_bundle(signer_gpg, responders, drop, tmp_path / "r2.tar", sequence=2)
    assert import_reply_bundle(drop, one).replies_stored == 2
    import_reply_bundle(drop, two)
    # Then the next export lists both, oldest first, with the ids the workstation gave
    day = drop.today()
    ids = tuple(r.id for r in replies)
    listed = _exported(drop, workstation_gpg, workdir, tmp_path / "e2.tar").replies_received
    assert listed == (ReceivedReplies(1, day, ids), ReceivedReplies(2, day, ()))
    manifest_json = json.loads(read_members(tmp_path / "e2.tar")[0][1])
    assert manifest_json["replies_received"] == [
        {"sequence": 1, "day": day.isoformat(), "replies": list(ids)},
        {"sequence": 2, "day": day.isoformat(), "replies": []},
    ]


def test_the_transfer_api_writes_a_new_export_when_a_reply_bundle_arrived(
    drop: Drop, signer_gpg: GnuPG, responders: Responders, tmp_path: Path
) -> None:
    # Given a kept export, reused while nothing changes
    submit(drop)
    latest_export(drop).file.close()
    again = latest_export(drop)
    again.file.close()
    assert again.reused
    # When a reply bundle that acknowledges nothing and has no audit head arrives
    import_reply_bundle(drop, reply_bundle(signer_gpg, responders, drop, tmp_path / "r.tar"))
    # Then the next pull gets a new bundle, which lists it
    newer = latest_export(drop)
    newer.file.close()
    assert not newer.reused and newer.sequence == again.sequence + 1


def test_reply_ids_are_listed_for_90_days_then_forgotten(
    drop: Drop,
    workstation_gpg: GnuPG,
    signer_gpg: GnuPG,
    responders: Responders,
    workdir: Path,
    tmp_path: Path,
) -> None:
    # Given a reply bundle received on day 0
    sent = submit(drop)
    start = drop.today()
    replies = _replies(drop, tmp_path, source_uuid(drop, sent.login), 1)
    import_reply_bundle(
        drop, reply_bundle(signer_gpg, responders, drop, tmp_path / "r1.tar", replies=replies)
    )
    # Then it is listed on day 90
    drop.today = lambda: start + dt.timedelta(days=RECEIVED_REPLIES_DAYS)
    listed = _exported(drop, workstation_gpg, workdir, tmp_path / "e1.tar").replies_received
    assert [r.sequence for r in listed] == [1]
    # And not on day 91, when the ids are forgotten at the next import
    drop.today = lambda: start + dt.timedelta(days=RECEIVED_REPLIES_DAYS + 1)
    import_reply_bundle(
        drop, reply_bundle(signer_gpg, responders, drop, tmp_path / "r2.tar", sequence=2)
    )
    listed = _exported(drop, workstation_gpg, workdir, tmp_path / "e2.tar").replies_received
    assert [r.sequence for r in listed] == [2]
    with drop.sessions() as db:
        kept = {
            r.sequence: r.reply_ids
            for r in db.query(BundleRecord).filter(BundleRecord.direction == "import")
        }
    assert kept == {1: None, 2: ""}


def test_a_schema_1_export_without_the_list_is_still_read(
    drop: Drop, workstation_gpg: GnuPG, workdir: Path, tmp_path: Path
) -> None:
    # Given an export bundle as a server of the previous version signed it
    server = drop.settings.signing_fingerprint
    old = ExportManifest(1, server, 1, drop.today(), (), ())
    data = _export_json(old)
    assert "replies_received" not in json.loads(data)
    path = tmp_path / "old.tar"
    _write_bundle(drop.signing_gpg(), server, None, data, [], path, None)
    # Then the workstation reads it, with nothing received
    with verify_export_bundle(path, workstation_gpg, server, workdir) as v:
        assert (v.manifest.schema, v.manifest.replies_received) == (1, ())
