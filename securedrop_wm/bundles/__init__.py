"""Signed transfer bundles between the drop server and the air-gapped workstation.

A bundle is one uncompressed tar file: ``manifest.json`` first, its detached signature
``manifest.json.sig`` second, then the members the manifest pins by size and SHA-256.
Export bundles carry submissions and source keys out; reply bundles carry replies and
acknowledgements back. docs/bundles.md is the specification.

The modules, along the seams of docs/bundles.md: :mod:`.errors` (the refusals),
:mod:`.manifest` (limits, manifest dataclasses, JSON both ways), :mod:`.archive` (tar
reading and writing, verification, the replay rule), :mod:`.signature` (what gpg's
verdict on the manifest's signature means) and :mod:`.server` (export, reply import and
purge in the drop server's database). The workstation imports only the first four;
the names of :mod:`.server` are loaded here on first use, so that importing this package
never pulls in the server's ``Drop`` and models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .archive import (
    MANIFEST,
    SIGNATURE,
    Progress,
    VerifiedExport,
    VerifiedReplies,
    check_replay,
    verify_export_bundle,
    verify_reply_bundle,
    write_reply_bundle,
)
from .errors import (
    BadSignatureError,
    BundleError,
    BundleFormatError,
    BundleLimitError,
    DuplicateIdError,
    HashMismatchError,
    MemberTooLargeError,
    MissingMemberError,
    PathEscapeError,
    ReplayError,
    SignatureError,
    SpecialMemberError,
    TooManyMembersError,
    TruncatedBundleError,
    UnknownSchemaError,
    UnknownSignerError,
    UnlistedMemberError,
    UnsafeMemberError,
    WrongServerError,
)
from .manifest import (
    EXPORT_FORMAT,
    EXPORT_LIMITS,
    EXPORT_SCHEMA_VERSION,
    MAX_AUDIT_HEADS,
    MAX_RECEIVED_BUNDLES,
    REPLIES_FORMAT,
    REPLY_LIMITS,
    REPLY_SCHEMA_VERSION,
    SUPPORTED_SCHEMAS,
    AuditHead,
    ExportItem,
    ExportManifest,
    Limits,
    ReceivedReplies,
    ReplyEntry,
    ReplyFile,
    ReplyManifest,
    SourceEntry,
)

if TYPE_CHECKING:
    from .server import (
        EXPORT,
        IMPORT,
        ReplyImport,
        export_bundle,
        import_reply_bundle,
        purge_acknowledged,
    )

_SERVER_NAMES = frozenset(
    {
        "EXPORT",
        "IMPORT",
        "ReplyImport",
        "export_bundle",
        "import_reply_bundle",
        "purge_acknowledged",
    }
)

__all__ = [
    "EXPORT",
    "EXPORT_FORMAT",
    "EXPORT_LIMITS",
    "EXPORT_SCHEMA_VERSION",
    "IMPORT",
    "MANIFEST",
    "MAX_AUDIT_HEADS",
    "MAX_RECEIVED_BUNDLES",
    "REPLIES_FORMAT",
    "REPLY_LIMITS",
    "REPLY_SCHEMA_VERSION",
    "SIGNATURE",
    "SUPPORTED_SCHEMAS",
    "AuditHead",
    "BadSignatureError",
    "BundleError",
    "BundleFormatError",
    "BundleLimitError",
    "DuplicateIdError",
    "ExportItem",
    "ExportManifest",
    "HashMismatchError",
    "Limits",
    "MemberTooLargeError",
    "MissingMemberError",
    "PathEscapeError",
    "Progress",
    "ReceivedReplies",
    "ReplayError",
    "ReplyEntry",
    "ReplyFile",
    "ReplyImport",
    "ReplyManifest",
    "SignatureError",
    "SourceEntry",
    "SpecialMemberError",
    "TooManyMembersError",
    "TruncatedBundleError",
    "UnknownSchemaError",
    "UnknownSignerError",
    "UnlistedMemberError",
    "UnsafeMemberError",
    "VerifiedExport",
    "VerifiedReplies",
    "WrongServerError",
    "check_replay",
    "export_bundle",
    "import_reply_bundle",
    "purge_acknowledged",
    "verify_export_bundle",
    "verify_reply_bundle",
    "write_reply_bundle",
]


def __getattr__(name: str) -> Any:
    """Load the server's names (and with them ``Drop`` and the models) on first use."""
    if name in _SERVER_NAMES:
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
