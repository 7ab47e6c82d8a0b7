"""The audit log's anchor: each reply bundle carries the head of the workstation's audit
chain, the drop server keeps the heads it received and shows the latest back in its
export bundles, and the workstation's import checks them against its own log. A log cut
off or rewritten after a head left is then "not intact" (verify-audit, the audit page),
which the chain alone could not tell (docs/threat-model.md, "Hiding what they did")."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import tarfile
from collections.abc import Iterator
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from securedrop_wm import bundles
from securedrop_wm.bundles.archive import write_reply_bundle
from securedrop_wm.cli import main as cli
from securedrop_wm.drop import Drop
from securedrop_wm.workstation import audit, replies
from securedrop_wm.workstation.cli import workstation as ws_cli
from securedrop_wm.workstation.importing import import_bundle
from securedrop_wm.workstation.models import AuditEvent, ServerAuditHead, Submission
from securedrop_wm.workstation.services import Workstation
from tests.workstation.fixtures import ADMIN, Station, export, source_reports


def _db_path(ws: Workstation) -> str:
    return ws.settings.database_url.removeprefix("sqlite:///")


def _verify(ws: Workstation) -> tuple[int, str]:
    result = CliRunner().invoke(ws_cli, ["verify-audit", "--config", str(ws.settings.config_path)])
    return result.exit_code, result.output


def _server(data_dir: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(data_dir / "config.toml"), *args])
    assert result.exit_code == 0, result.output
    return result.output


def _reply_bundle(ws: Workstation, drop: Drop, tmp_path: Path) -> tuple[Path, str]:
    """A report reaches the workstation, which writes a reply bundle; return it and the
    head it carries (the newest event then: the export of this very bundle)."""
    source_reports(drop)
    import_bundle(ws, ADMIN, export(drop, tmp_path, "first.tar"))
    made = replies.export_reply_bundle(ws, ADMIN)
    with ws.sessions() as db:
        head = audit.head(db)
        newest = db.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
    assert head is not None and newest is not None and newest.action == "replies.export"
    manifest = json.loads(_member(made.path, "manifest.json"))
    assert manifest["audit_head"] == head
    return made.path, head


def _member(path: Path, name: str) -> bytes:
    with tarfile.open(path, "r:") as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


def _round_trip(ws: Workstation, drop: Drop, data_dir: Path, reply: Path, head: str) -> None:
    """The server takes the reply bundle (the real command) and exports again; the
    workstation imports that export, which shows the head back."""
    output = _server(data_dir, "import-replies", str(reply))
    assert f"workstation audit head kept for reply bundle 1: {head}" in output
    listed = _server(data_dir, "audit-heads")
    assert head in listed and drop.settings.workstation_fingerprint in listed
    source_reports(drop, what_happened="It happened again.")
    second = export(drop, reply.parent, "second.tar")
    manifest = json.loads(_member(second, "manifest.json"))
    assert [h["head"] for h in manifest["audit_heads"]] == [head]
    assert [h["sequence"] for h in manifest["audit_heads"]] == [1]
    result = import_bundle(ws, ADMIN, second)
    assert not result.already_imported and result.reports == 1  # the import proceeds


@contextlib.contextmanager
def _behind_the_triggers_back(ws: Workstation, operation: str) -> Iterator[None]:
    """Drop the trigger refusing ``operation``, then put it back exactly as it was; after
    that, the chain and the triggers verify (as long as the chain is consistent)."""
    name = f"audit_events_no_{operation.lower()}"
    with sqlite3.connect(_db_path(ws)) as conn:
        conn.execute(f"DROP TRIGGER {name}")
    yield
    with sqlite3.connect(_db_path(ws)) as conn:
        conn.execute(
            f"CREATE TRIGGER {name} BEFORE {operation} ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
        )
    code, output = _verify(ws)
    assert code == 0 and "audit log intact" in output  # the chain alone cannot tell


def test_a_truncated_log_is_not_intact_once_the_server_shows_its_head_back(
    station: Station, drop: Drop, data_dir: Path, tmp_path: Path
) -> None:
    ws = station.ws
    reply, head = _reply_bundle(ws, drop, tmp_path)
    # Someone with the database file cuts off the newest event (the reply bundle's
    # export) and puts the trigger back: the chain and the triggers verify.
    with _behind_the_triggers_back(ws, "DELETE"), sqlite3.connect(_db_path(ws)) as conn:
        conn.execute("DELETE FROM audit_events WHERE hash = ?", (head,))
    # The bundle that carried the head had already left; it comes back from the server.
    _round_trip(ws, drop, data_dir, reply, head)
    code, output = _verify(ws)
    assert code != 0, output
    assert f"not intact: the drop server holds head {head}" in output
    assert "this log does not contain (truncated or rewritten)" in output
    page = audit.read_log(ws)
    assert not page.intact and page.chained and page.guarded and head in page.problem
    with ws.sessions() as db:
        kept = db.scalars(select(ServerAuditHead)).all()
        assert [(h.head, h.sequence, h.found) for h in kept] == [(head, 1, False)]
        actions = [e.action for e in audit.list_events(db)]
    assert "audit.anchor_missing" in actions


def test_an_untouched_log_stays_intact(
    station: Station, drop: Drop, data_dir: Path, tmp_path: Path
) -> None:
    ws = station.ws
    reply, head = _reply_bundle(ws, drop, tmp_path)
    _round_trip(ws, drop, data_dir, reply, head)
    code, output = _verify(ws)
    assert code == 0 and "audit log intact" in output, output
    assert audit.read_log(ws).intact
    with ws.sessions() as db:
        assert audit.check_anchors(db) == 1
        assert db.scalars(select(ServerAuditHead.found)).all() == [True]


def test_a_log_rewritten_whole_and_consistently_is_not_intact(
    station: Station, drop: Drop, data_dir: Path, tmp_path: Path
) -> None:
    ws = station.ws
    reply, head = _reply_bundle(ws, drop, tmp_path)
    # Someone with the file rewrites history from the first event on and recomputes every
    # hash, then puts the trigger back: the chain verifies, but no event keeps its hash.
    with _behind_the_triggers_back(ws, "UPDATE"), ws.write() as db:
        prev = audit.GENESIS
        for event in db.scalars(select(AuditEvent).order_by(AuditEvent.id)):
            if event.id == 1:
                event.actor = "someone-else"
            event.prev_hash = prev
            event.hash = audit._digest(prev, event)
            prev = event.hash
            db.flush()
    _round_trip(ws, drop, data_dir, reply, head)
    code, output = _verify(ws)
    assert code != 0 and f"the drop server holds head {head}" in output, output
    assert not audit.read_log(ws).intact


def test_a_reply_bundle_without_an_audit_head_still_imports(
    station: Station, drop: Drop, data_dir: Path, tmp_path: Path
) -> None:
    ws = station.ws
    source_reports(drop)
    import_bundle(ws, ADMIN, export(drop, tmp_path, "first.tar"))
    with ws.sessions() as db:
        acks = [s.uuid for s in db.scalars(select(Submission))]
    # As a workstation of an older version writes it: no audit_head in the manifest.
    old = tmp_path / "old-replies.tar"
    manifest = write_reply_bundle(
        ws.gpg, ws.signing_fingerprint(), ws.server_fingerprint(), 1, [], acks, old
    )
    assert manifest.audit_head is None
    assert "audit_head" not in json.loads(_member(old, "manifest.json"))
    output = _server(data_dir, "import-replies", str(old))
    assert f"{len(acks)} submission(s) acknowledged" in output
    assert "the bundle carried no audit head" in output
    assert "no audit head received yet" in _server(data_dir, "audit-heads")
    # and the next export shows no head back; the workstation imports it, still intact
    source_reports(drop, what_happened="It happened again.")
    second = export(drop, tmp_path, "second.tar")
    assert "audit_heads" not in json.loads(_member(second, "manifest.json"))
    assert import_bundle(ws, ADMIN, second).reports == 1
    assert _verify(ws)[0] == 0
    assert bundles.REPLY_SCHEMA_VERSION == 1
