"""The drop server's retention: what ``securedrop-wm maintain`` removes, once a day.

- a source that never filed a report, ``unused_source_days`` after its creation day
  (SecureDrop removes such sources daily: an attacker creating sources by the thousand
  must not leave them for ever);
- a source whose submissions and replies are all gone, ``source_retention_days`` after
  its last report;
- with a removed source go its rows and its key (keybox, secret key files, revocation
  certificate: :meth:`.crypto.GnuPG.remove_source_keys`, no passphrase needed); what
  stays is a tombstone (its Argon2id-derived lookup id and the day), so that logging in
  with its codename says the data was removed (:class:`.errors.SourceRemovedError`),
  for ``tombstone_days``;
- report rows whose ciphertexts are all purged, ``report_retention_days`` after their
  day; replies the source did not delete, ``reply_retention_days`` after they arrived;
- acknowledged ciphertext whose ``purge_acknowledged_after_days`` ran out (otherwise
  only purged at the next import of a reply bundle).

Everything is done in batches: a few queries per thousand rows, one pass over the keys
and one day-coarsening of the GnuPG home, however many sources go.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from .bundles.server import purge_acknowledged
from .drop import Drop
from .models import Reply, Report, Source, SourceTombstone, Submission

_BATCH = 500
_T = TypeVar("_T")


@dataclass(frozen=True)
class MaintenanceResult:
    """What one run removed."""

    purged_ciphertexts: int
    replies: int
    reports: int
    unused_sources: int
    emptied_sources: int
    tombstones: int

    def lines(self) -> list[str]:
        """One line per kind of thing removed, for the command line."""
        return [
            f"purged {self.purged_ciphertexts} acknowledged ciphertext(s)",
            f"removed {self.replies} expired reply(ies)",
            f"removed {self.reports} emptied report row(s)",
            f"removed {self.unused_sources} source(s) that never reported",
            f"removed {self.emptied_sources} source(s) with nothing left",
            f"removed {self.tombstones} expired tombstone(s)",
        ]


def maintain(drop: Drop) -> MaintenanceResult:
    """Run every removal that is due (see the module doc)."""
    purged = purge_acknowledged(drop)
    replies = prune_replies(drop)
    reports = prune_reports(drop)
    unused, emptied = prune_sources(drop)
    tombstones = prune_tombstones(drop)
    return MaintenanceResult(purged, replies, reports, unused, emptied, tombstones)


def prune_replies(drop: Drop) -> int:
    """Remove replies older than ``reply_retention_days``: rows, then files."""
    cutoff = drop.today() - dt.timedelta(days=drop.settings.reply_retention_days)
    with drop.sessions.begin() as db:
        rows = db.execute(
            select(Reply.id, Reply.store_name).where(Reply.created_day <= cutoff)
        ).all()
        for chunk in _chunks([r.id for r in rows]):
            db.execute(delete(Reply).where(Reply.id.in_(chunk)))
    for row in rows:  # a crash here leaves files no row names: clean-orphans takes them
        drop.store.delete(row.store_name)
    return len(rows)


def prune_reports(drop: Drop) -> int:
    """Remove report rows with no ciphertext left, ``report_retention_days`` after their day."""
    cutoff = drop.today() - dt.timedelta(days=drop.settings.report_retention_days)
    with drop.sessions.begin() as db:
        ids = db.scalars(
            select(Report.id).where(
                Report.created_day <= cutoff,
                ~exists().where(Submission.report_id == Report.id),
            )
        ).all()
        for chunk in _chunks(ids):
            db.execute(delete(Report).where(Report.id.in_(chunk)))
    return len(ids)


def prune_sources(drop: Drop) -> tuple[int, int]:
    """Remove sources that never reported within ``unused_source_days`` and sources with
    nothing left ``source_retention_days`` after their last report, with their keys.

    :returns: how many of each were removed.
    """
    s = drop.settings
    today = drop.today()
    unused_cutoff = today - dt.timedelta(days=s.unused_source_days)
    emptied_cutoff = today - dt.timedelta(days=s.source_retention_days)
    no_submission = ~exists().where(
        Submission.report_id == Report.id, Report.source_id == Source.id
    )
    no_reply = ~exists().where(Reply.source_id == Source.id)
    nothing_left = select(Source.id, Source.lookup_id, Source.key_fingerprint).where(
        no_reply, no_submission
    )
    with drop.sessions.begin() as db:
        unused = db.execute(
            nothing_left.where(
                Source.last_report_day.is_(None), Source.created_day <= unused_cutoff
            )
        ).all()
        emptied = db.execute(
            nothing_left.where(
                Source.last_report_day.is_not(None), Source.last_report_day <= emptied_cutoff
            )
        ).all()
        # Rows go first, in the same transaction as the check: a source that reports
        # meanwhile is either still seen here or already gone for its report.
        _remove_rows(db, [*unused, *emptied], today)
    # A crash before the keys are gone leaves keys no row names: harmless (their
    # passphrases need the codename, whose source is gone), but kept.
    drop.gpg.remove_source_keys([r.key_fingerprint for r in (*unused, *emptied)])
    return len(unused), len(emptied)


def prune_tombstones(drop: Drop) -> int:
    """Forget removed sources ``tombstone_days`` after their removal."""
    cutoff = drop.today() - dt.timedelta(days=drop.settings.tombstone_days)
    with drop.sessions.begin() as db:
        result = db.execute(delete(SourceTombstone).where(SourceTombstone.removed_day <= cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


def _remove_rows(db: Session, rows: Sequence[Any], today: dt.date) -> None:
    ids = [r.id for r in rows]
    for chunk in _chunks(ids):
        db.execute(delete(Report).where(Report.source_id.in_(chunk)))
        db.execute(delete(Source).where(Source.id.in_(chunk)))
    lookup_ids = [r.lookup_id for r in rows]
    for chunk in _chunks(lookup_ids):
        known = set(
            db.scalars(
                select(SourceTombstone.lookup_id).where(SourceTombstone.lookup_id.in_(chunk))
            )
        )
        db.add_all(
            SourceTombstone(lookup_id=lid, removed_day=today) for lid in chunk if lid not in known
        )


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]
