"""What a source sent, as a small receipt encrypted to the source's own key.

The server keeps no plaintext of a report: its fields go to the responders encrypted to
the team keys. So that a returning source can still see what they sent (the day, the
category, the names and sizes of the files), each report also carries a receipt
encrypted to the source's key only, kept in its database row and decrypted only while
the source is logged in (their passphrase is in their session). The report's text is not
in it: a receipt says what was sent, not what was written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from .drop import Drop
from .errors import DecryptionError, OutputTooLargeError
from .models import Report, Source

RECEIPT_SCHEMA = 1
#: The largest receipt plaintext accepted when decrypting: 150 file names of 255
#: characters, in 4-byte UTF-8, JSON-escaped, with room to spare.
MAX_RECEIPT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class SentFile:
    """One file of a report, as its receipt names it."""

    name: str
    size: int


@dataclass(frozen=True)
class Receipt:
    """What the source sent in one report (no text: only what kind of report it was)."""

    day: str
    category: str
    urgency: str
    follow_up: bool
    has_text: bool
    files: tuple[SentFile, ...]
    # The desks the report went to (desks.py): a follow-up goes to the same. Empty in
    # receipts written before desks existed.
    desks: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        """The receipt's plaintext, as encrypted to the source."""
        body = {
            "schema": RECEIPT_SCHEMA,
            "day": self.day,
            "category": self.category,
            "urgency": self.urgency,
            "follow_up": self.follow_up,
            "has_text": self.has_text,
            "files": [{"name": f.name, "size": f.size} for f in self.files],
            "desks": list(self.desks),
        }
        return json.dumps(body, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Receipt | None:
        """A receipt from its plaintext, or None when it is not one this code wrote."""
        try:
            body: Any = json.loads(data.decode("utf-8"))
            files = tuple(SentFile(str(f["name"]), int(f["size"])) for f in body["files"])
            desks = tuple(str(d) for d in body.get("desks", ()))
            if body.get("schema") != RECEIPT_SCHEMA:
                return None
            return cls(
                day=str(body["day"]),
                category=str(body["category"]),
                urgency=str(body["urgency"]),
                follow_up=bool(body.get("follow_up", False)),
                has_text=bool(body.get("has_text", False)),
                files=files,
                desks=desks,
            )
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            return None


def seal_receipt(drop: Drop, source_fingerprint: str, receipt: Receipt) -> bytes:
    """Encrypt ``receipt`` to the source's key only; the ciphertext, for the database.

    gpg writes into a temporary file of the store (no plaintext ever reaches the disk),
    read back and removed at once.
    """
    temp = drop.store.new_temp_path()
    try:
        drop.gpg.encrypt_bytes(receipt.to_bytes(), [source_fingerprint], temp)
        return temp.read_bytes()
    finally:
        temp.unlink(missing_ok=True)


def open_receipt(
    drop: Drop, source_fingerprint: str, passphrase: str, sealed: bytes
) -> Receipt | None:
    """Decrypt a sealed receipt with the source's key; None when it cannot be read
    (damaged, or sealed to another key)."""
    temp = drop.store.new_temp_path()
    try:
        temp.write_bytes(sealed)
        data = drop.gpg.decrypt_file(
            temp, passphrase, max_output=MAX_RECEIPT_BYTES, keys=[source_fingerprint]
        )
    except (DecryptionError, OutputTooLargeError):
        return None
    finally:
        temp.unlink(missing_ok=True)
    return Receipt.from_bytes(data)


__all__ = ["MAX_RECEIPT_BYTES", "Receipt", "SentFile", "open_receipt", "seal_receipt"]


def newest_sealed(drop: Drop, source_lookup_id: str, limit: int) -> list[tuple[bytes, str]]:
    """The source's newest ``limit`` sealed receipts, newest first, each with the key
    fingerprint that opens it (reports filed before receipts existed have none)."""
    with drop.sessions() as db:
        rows = db.execute(
            select(Report.receipt, Source.key_fingerprint)
            .join(Source)
            .where(Source.lookup_id == source_lookup_id, Report.receipt.is_not(None))
            .order_by(Report.id.desc())
            .limit(limit)
        ).all()
    return [(sealed or b"", fingerprint) for sealed, fingerprint in rows]
