"""What a bundle's manifest says: the limits, the dataclasses, and the JSON both ways.

Parsing trusts nothing: every field is checked for its type, its form and its range
before a dataclass is made of it. docs/bundles.md is the specification.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import (
    BundleFormatError,
    DuplicateIdError,
    TooManyMembersError,
    UnknownSchemaError,
    WrongServerError,
)

EXPORT_FORMAT = "sdwm-export"
REPLIES_FORMAT = "sdwm-replies"
# What this version writes, and what it reads, per format. Export schema 2 added
# ``replies_received``; reply manifests are still schema 1.
EXPORT_SCHEMA_VERSION = 2
REPLY_SCHEMA_VERSION = 1
SUPPORTED_SCHEMAS = {EXPORT_FORMAT: (1, 2), REPLIES_FORMAT: (1,)}

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_FPR = re.compile(r"^[0-9A-F]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KINDS = ("message", "file")
# At most this many audit heads in an export manifest (the server sends the latest few).
MAX_AUDIT_HEADS = 32
# At most this many reply bundles in ``replies_received`` (the server lists fewer).
MAX_RECEIVED_BUNDLES = 1000


# -- limits and manifests -------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Caps checked while a bundle is read, before any member is kept."""

    max_members: int
    max_member_bytes: int
    max_total_bytes: int
    max_manifest_bytes: int = 32 * 1024 * 1024
    max_signature_bytes: int = 64 * 1024


EXPORT_LIMITS = Limits(max_members=100_000, max_member_bytes=4 << 30, max_total_bytes=256 << 30)
REPLY_LIMITS = Limits(
    max_members=20_000,
    max_member_bytes=64 << 20,
    max_total_bytes=2 << 30,
    max_manifest_bytes=8 << 20,
)


@dataclass(frozen=True)
class SourceEntry:
    """A source in an export bundle: its public key travels as ``keys/<id>.asc``."""

    id: str
    designation: str
    key_fingerprint: str
    created_day: dt.date
    size: int
    sha256: str

    @property
    def member(self) -> str:
        return f"keys/{self.id}.asc"


@dataclass(frozen=True)
class ExportItem:
    """One submission ciphertext in an export bundle: ``submissions/<id>.gpg``."""

    id: str
    kind: str
    report_id: str
    source_id: str
    created_day: dt.date
    urgent: bool
    size: int
    sha256: str

    @property
    def member(self) -> str:
        return f"submissions/{self.id}.gpg"


@dataclass(frozen=True)
class AuditHead:
    """A head of the workstation's audit chain the server received in reply bundle
    ``sequence`` on ``day``, shown back to the workstation in export bundles."""

    sequence: int
    day: dt.date
    head: str


@dataclass(frozen=True)
class ReceivedReplies:
    """A reply bundle the server imported: its sequence, the server's day of the import,
    and the ids of the replies it carried (``ReplyEntry.id``)."""

    sequence: int
    day: dt.date
    reply_ids: tuple[str, ...]


@dataclass(frozen=True)
class ExportManifest:
    """What the server signed: the pending submissions and their sources' keys."""

    schema: int
    server_id: str
    sequence: int
    created_day: dt.date
    sources: tuple[SourceEntry, ...]
    items: tuple[ExportItem, ...]
    # Optional in schema 1: absent in bundles of servers that do not keep them.
    audit_heads: tuple[AuditHead, ...] = ()
    # Schema 2 (always present there, maybe empty); () when read from schema 1.
    replies_received: tuple[ReceivedReplies, ...] = ()


@dataclass(frozen=True)
class ReplyEntry:
    """One reply ciphertext in a reply bundle: ``replies/<id>.gpg``."""

    id: str
    source_id: str
    size: int
    sha256: str

    @property
    def member(self) -> str:
        return f"replies/{self.id}.gpg"


@dataclass(frozen=True)
class ReplyManifest:
    """What the workstation signed: replies, and the submissions it has imported."""

    schema: int
    workstation_id: str
    server_id: str
    sequence: int
    created_day: dt.date
    replies: tuple[ReplyEntry, ...]
    acknowledged: tuple[str, ...]
    # Optional in schema 1: the hash of the newest event of the workstation's audit log
    # when the bundle was written; absent in bundles of older workstations.
    audit_head: str | None = None


@dataclass(frozen=True)
class ReplyFile:
    """A reply ciphertext the workstation puts into a reply bundle."""

    id: str
    source_id: str
    ciphertext: Path


# -- manifests ------------------------------------------------------------------------


def _load_json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # bad UTF-8 or JSON, huge numbers, deep nesting
        raise BundleFormatError(f"the manifest is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise BundleFormatError("the manifest is not a JSON object")
    return value


def _check_header(raw: dict[str, Any], expected_format: str) -> int:
    fmt = raw.get("format")
    if fmt != expected_format:
        raise BundleFormatError(
            f"this is not a {expected_format} bundle (its manifest says format {fmt!r})"
        )
    schema = raw.get("schema")
    supported = SUPPORTED_SCHEMAS[expected_format]
    if not isinstance(schema, int) or isinstance(schema, bool) or schema not in supported:
        raise UnknownSchemaError(
            f"unknown manifest schema version {schema!r}; this version reads "
            f"{', '.join(map(str, supported))} (upgrade securedrop-wm?)"
        )
    return schema


def _export_members(
    raw: dict[str, Any], signer: str, limits: Limits
) -> tuple[ExportManifest, dict[str, tuple[int, str]]]:
    schema = _check_header(raw, EXPORT_FORMAT)
    server_id = _fpr(_get(raw, "server_id", str), "server_id")
    if server_id != signer:
        raise WrongServerError(f"the manifest names server {server_id} but {signer} signed it")
    sources_raw = _get(raw, "sources", list)
    items_raw = _get(raw, "items", list)
    if len(sources_raw) + len(items_raw) > limits.max_members:
        raise TooManyMembersError(f"the manifest lists more than {limits.max_members} members")
    sources = tuple(
        SourceEntry(
            id=_uuid(_get(s, "id", str), "source id"),
            designation=_text(_get(s, "designation", str), "designation", 80),
            key_fingerprint=_fpr(_get(s, "key_fingerprint", str), "key_fingerprint"),
            created_day=_day(_get(s, "created_day", str)),
            size=_size(_get(s, "size", int)),
            sha256=_sha(_get(s, "sha256", str)),
        )
        for s in (_obj(x, "source") for x in sources_raw)
    )
    items = tuple(
        ExportItem(
            id=_uuid(_get(i, "id", str), "item id"),
            kind=_kind(_get(i, "kind", str)),
            report_id=_uuid(_get(i, "report_id", str), "report id"),
            source_id=_uuid(_get(i, "source_id", str), "source id"),
            created_day=_day(_get(i, "created_day", str)),
            urgent=_get(i, "urgent", bool),
            size=_size(_get(i, "size", int)),
            sha256=_sha(_get(i, "sha256", str)),
        )
        for i in (_obj(x, "item") for x in items_raw)
    )
    _check_unique((s.id for s in sources), "source id")
    _check_unique((i.id for i in items), "item id")
    known = {s.id for s in sources}
    for item in items:
        if item.source_id not in known:
            raise BundleFormatError(f"item {item.id} refers to a source not in the bundle")
    manifest = ExportManifest(
        schema=schema,
        server_id=server_id,
        sequence=_positive(_get(raw, "sequence", int), "sequence"),
        created_day=_day(_get(raw, "created_day", str)),
        sources=sources,
        items=items,
        audit_heads=_audit_heads(raw),
        replies_received=_replies_received(raw) if schema >= 2 else (),
    )
    members = {s.member: (s.size, s.sha256) for s in sources}
    members.update({i.member: (i.size, i.sha256) for i in items})
    return manifest, members


def _reply_members(
    raw: dict[str, Any], signer: str, limits: Limits
) -> tuple[ReplyManifest, dict[str, tuple[int, str]]]:
    schema = _check_header(raw, REPLIES_FORMAT)
    workstation_id = _fpr(_get(raw, "workstation_id", str), "workstation_id")
    if workstation_id != signer:
        raise WrongServerError(
            f"the manifest names workstation {workstation_id} but {signer} signed it"
        )
    replies_raw = _get(raw, "replies", list)
    acks_raw = _get(raw, "acknowledged", list)
    if len(replies_raw) > limits.max_members or len(acks_raw) > 10 * limits.max_members:
        raise TooManyMembersError(f"the manifest lists more than {limits.max_members} replies")
    replies = tuple(
        ReplyEntry(
            id=_uuid(_get(r, "id", str), "reply id"),
            source_id=_uuid(_get(r, "source_id", str), "source id"),
            size=_size(_get(r, "size", int)),
            sha256=_sha(_get(r, "sha256", str)),
        )
        for r in (_obj(x, "reply") for x in replies_raw)
    )
    acknowledged = tuple(
        _uuid(a if isinstance(a, str) else "", "acknowledged id") for a in acks_raw
    )
    _check_unique((r.id for r in replies), "reply id")
    _check_unique(acknowledged, "acknowledged id")
    manifest = ReplyManifest(
        schema=schema,
        workstation_id=workstation_id,
        server_id=_fpr(_get(raw, "server_id", str), "server_id"),
        sequence=_positive(_get(raw, "sequence", int), "sequence"),
        created_day=_day(_get(raw, "created_day", str)),
        replies=replies,
        acknowledged=acknowledged,
        audit_head=_audit_head(raw["audit_head"]) if "audit_head" in raw else None,
    )
    return manifest, {r.member: (r.size, r.sha256) for r in replies}


def _export_json(m: ExportManifest) -> bytes:
    heads = {
        "audit_heads": [
            {"sequence": h.sequence, "day": h.day.isoformat(), "head": h.head}
            for h in m.audit_heads
        ]
    }
    return _dump(
        {
            "format": EXPORT_FORMAT,
            "schema": m.schema,
            "server_id": m.server_id,
            "sequence": m.sequence,
            "created_day": m.created_day.isoformat(),
            "sources": [
                {
                    "id": s.id,
                    "designation": s.designation,
                    "key_fingerprint": s.key_fingerprint,
                    "created_day": s.created_day.isoformat(),
                    "size": s.size,
                    "sha256": s.sha256,
                }
                for s in m.sources
            ],
            "items": [
                {
                    "id": i.id,
                    "kind": i.kind,
                    "report_id": i.report_id,
                    "source_id": i.source_id,
                    "created_day": i.created_day.isoformat(),
                    "urgent": i.urgent,
                    "size": i.size,
                    "sha256": i.sha256,
                }
                for i in m.items
            ],
            **(heads if m.audit_heads else {}),
            **({"replies_received": _received_json(m)} if m.schema >= 2 else {}),
        }
    )


def _received_json(m: ExportManifest) -> list[dict[str, Any]]:
    return [
        {"sequence": r.sequence, "day": r.day.isoformat(), "replies": list(r.reply_ids)}
        for r in m.replies_received
    ]


def _reply_json(m: ReplyManifest) -> bytes:
    return _dump(
        {
            "format": REPLIES_FORMAT,
            "schema": m.schema,
            "workstation_id": m.workstation_id,
            "server_id": m.server_id,
            "sequence": m.sequence,
            "created_day": m.created_day.isoformat(),
            "replies": [
                {"id": r.id, "source_id": r.source_id, "size": r.size, "sha256": r.sha256}
                for r in m.replies
            ],
            "acknowledged": list(m.acknowledged),
            **({"audit_head": m.audit_head} if m.audit_head is not None else {}),
        }
    )


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1).encode("utf-8")


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BundleFormatError(f"the manifest has a {what} that is not a JSON object")
    return value


def _get(obj: dict[str, Any], name: str, typ: type[Any]) -> Any:
    value = obj.get(name)
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise BundleFormatError(f"the manifest field {name!r} is missing or not a {typ.__name__}")
    return value


def _uuid(value: str, what: str) -> str:
    if not _UUID.match(value):
        raise BundleFormatError(f"{what} {value!r} is not a lowercase UUID")
    return value


def _fpr(value: str, what: str) -> str:
    fpr = value.replace(" ", "").upper()
    if not _FPR.match(fpr):
        raise BundleFormatError(f"{what} {value!r} is not a 40-hex-digit fingerprint")
    return fpr


def _sha(value: str) -> str:
    if not _SHA256.match(value):
        raise BundleFormatError(f"{value!r} is not a lowercase hex SHA-256")
    return value


def _audit_head(value: Any) -> str:
    if not isinstance(value, str) or not _SHA256.match(value):
        raise BundleFormatError(
            f"the manifest field 'audit_head' {str(value)[:80]!r} is not an audit chain "
            "head (64 lowercase hex digits)"
        )
    return value


def _audit_heads(raw: dict[str, Any]) -> tuple[AuditHead, ...]:
    if "audit_heads" not in raw:
        return ()
    heads_raw = _get(raw, "audit_heads", list)
    if len(heads_raw) > MAX_AUDIT_HEADS:
        raise TooManyMembersError(f"the manifest lists more than {MAX_AUDIT_HEADS} audit heads")
    heads = tuple(
        AuditHead(
            sequence=_positive(_get(h, "sequence", int), "audit head sequence"),
            day=_day(_get(h, "day", str)),
            head=_audit_head(h.get("head")),
        )
        for h in (_obj(x, "audit head") for x in heads_raw)
    )
    _check_unique((str(h.sequence) for h in heads), "audit head sequence")
    return heads


def _replies_received(raw: dict[str, Any]) -> tuple[ReceivedReplies, ...]:
    entries_raw = _get(raw, "replies_received", list)
    if len(entries_raw) > MAX_RECEIVED_BUNDLES:
        raise TooManyMembersError(
            f"the manifest lists more than {MAX_RECEIVED_BUNDLES} reply bundles received"
        )
    entries = []
    for e in (_obj(x, "reply bundle received") for x in entries_raw):
        ids_raw = _get(e, "replies", list)
        if len(ids_raw) > REPLY_LIMITS.max_members:
            raise TooManyMembersError(
                f"the manifest lists more than {REPLY_LIMITS.max_members} replies received "
                "in one reply bundle"
            )
        ids = tuple(_uuid(i if isinstance(i, str) else "", "received reply id") for i in ids_raw)
        _check_unique(ids, "received reply id")
        entries.append(
            ReceivedReplies(
                sequence=_positive(_get(e, "sequence", int), "received reply bundle sequence"),
                day=_day(_get(e, "day", str)),
                reply_ids=ids,
            )
        )
    _check_unique((str(e.sequence) for e in entries), "received reply bundle sequence")
    return tuple(entries)


def _size(value: int) -> int:
    if value < 0:
        raise BundleFormatError(f"a member size of {value} bytes is impossible")
    return value


def _positive(value: int, what: str) -> int:
    if not 0 < value < 2**62:
        raise BundleFormatError(f"{what} must be a positive integer, not {value}")
    return value


def _day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BundleFormatError(f"{value!r} is not a day (YYYY-MM-DD)") from None


def _kind(value: str) -> str:
    if value not in _KINDS:
        raise BundleFormatError(f"unknown item kind {value!r} (message or file)")
    return value


def _text(value: str, what: str, limit: int) -> str:
    if not value or len(value) > limit or any(ord(c) < 32 for c in value):
        raise BundleFormatError(f"the {what} {value[:limit]!r} is empty, too long or unprintable")
    return value


def _check_unique(values: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise DuplicateIdError(f"the {what} {value} appears twice in the manifest")
        seen.add(value)
