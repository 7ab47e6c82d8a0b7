"""The kept export bundle of each desk: what ``latest_export`` hands the transfer
machine again while nothing changed, and what goes as soon as it no longer matches what
the desk waits for (a purge, or an acknowledgement by that desk)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..desks import BUILTIN_ID, Desk, desk_by_id
from ..drop import Drop
from ..files import fsync_dir
from ..store import shred
from .errors import BundleError
from .manifest import EXPORT_SCHEMA_VERSION, AuditHead, ExportManifest, ReceivedReplies


def _last_names(desk: Desk) -> tuple[str, str]:
    """The kept export bundle of ``desk`` and its facts: it holds copies of what is
    pending for the desk, no more than the routing rows say, and goes when the desk
    acknowledges anything (docs/threat-model.md)."""
    stem = "last" if desk.id == BUILTIN_ID else f"last-{desk.id}"
    return f"{stem}.tar", f"{stem}.json"


def forget_last_export(drop: Drop, desk: str | None = None) -> None:
    """Remove the kept export bundle of ``desk`` (None: of every desk): its ciphertexts
    are being purged from the store, or the desk acknowledged some of them."""
    folder = _exports_dir(drop)
    desks = drop.settings.desks if desk is None else (desk_by_id(drop.settings, desk),)
    with _exports_lock(folder):
        for one in desks:
            last_name, meta_name = _last_names(one)
            (folder / meta_name).unlink(missing_ok=True)
            if shred(folder / last_name):
                fsync_dir(folder)


def _exports_dir(drop: Drop) -> Path:
    folder = drop.settings.data_dir / "exports"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
    except OSError as e:
        raise BundleError(f"cannot make the exports folder: {e.strerror}") from e
    return folder


@contextlib.contextmanager
def _exports_lock(folder: Path) -> Iterator[None]:
    """One export written at a time (workers and threads alike), the others then reuse it."""
    with (folder / ".lock").open("a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _pending_key(
    server_id: str,
    rows: Sequence[Any],
    heads: Sequence[AuditHead],
    received: Sequence[ReceivedReplies],
) -> str:
    """A digest of everything an export bundle of ``rows``, ``heads`` and ``received``
    says, but its sequence and day."""
    facts = [
        [
            sub.uuid,
            sub.kind,
            sub.store_name,
            report.uuid,
            report.created_day.isoformat(),
            report.urgency,
            source.uuid,
            source.designation,
            source.key_fingerprint,
            source.created_day.isoformat(),
        ]
        for sub, report, source in rows
    ]
    shown = [[h.sequence, h.day.isoformat(), h.head] for h in heads]
    listed = [[r.sequence, r.day.isoformat(), list(r.reply_ids)] for r in received]
    data = json.dumps(
        [EXPORT_SCHEMA_VERSION, server_id, facts, shown, listed], separators=(",", ":")
    )
    return hashlib.sha256(data.encode()).hexdigest()


def _read_meta(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _write_meta(path: Path, key: str, manifest: ExportManifest) -> None:
    temp = path.with_name(f".meta-{secrets.token_hex(8)}")
    temp.write_text(
        json.dumps({"key": key, "sequence": manifest.sequence, "items": len(manifest.items)})
    )
    os.replace(temp, path)
    fsync_dir(path.parent)
