"""Decrypting an export bundle's new items for the importer (importing.py): a few gpg
processes at a time, each item bounded in what it may decrypt to, each plaintext hashed
as gpg streams it out (for the chain of custody), each message checked to be what the
source UI writes. Nothing here touches the case database.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..bundles.archive import VerifiedExport
from ..bundles.manifest import ExportItem
from ..errors import DecryptionError, OutputTooLargeError
from .errors import ImportRefusedError, SecretKeyLockedError
from .services import Workstation

_TEMP_PREFIX = ".import-"
# Text fields of a report's message; the last three are absent from messages written
# before the source UI asked for them (read as "").
_SHORT_FIELDS = (
    "category",
    "urgency",
    "reply_language",
    "wiki",
    "links",
    "what_happened",
    "place",
    "project",
    "region",
)
# A report's fields are capped by the source UI at well under 2 MiB of JSON, even with
# every character escaped; this leaves room and bounds the memory one message takes.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# gpg processes decrypting at a time: a workstation has two cores or more.
DECRYPT_WORKERS = 2


@dataclass
class Decrypted:
    """Decrypted items of one bundle before they are recorded."""

    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Item id to its temporary file, named before gpg starts so a failure removes it.
    files: dict[str, Path] = field(default_factory=dict)
    plaintext_sha256: dict[str, str] = field(default_factory=dict)


def decrypt_all(
    ws: Workstation,
    verified: VerifiedExport,
    new: list[ExportItem],
    out: Decrypted,
    passphrase: str | None,
    workers: int,
) -> None:
    """Decrypt every new item into ``out``, ``workers`` gpg processes at a time.

    On a failure, the error of the first failing item (in the manifest's order) is
    raised once no gpg runs any more, so that the caller's clean-up removes every file.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    for item in new:
        if item.kind != "message":
            out.files[item.id] = ws.settings.files_dir / f"{_TEMP_PREFIX}{secrets.token_hex(16)}"
    ws.gpg.launch_agent()
    again: list[ExportItem] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import-gpg") as pool:
        futures = [
            pool.submit(_decrypt, ws, verified, item, out.files.get(item.id), passphrase)
            for item in new
        ]
        try:
            for item, future in zip(new, futures, strict=True):
                try:
                    _keep(out, item, *future.result())
                except SecretKeyLockedError:
                    if workers == 1:
                        raise
                    again.append(item)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    # Under load, a gpg run beside another is now and then told "no secret key" by the
    # agent they share (seen about once per full test run): such an item is decrypted
    # again alone, once. A key that is really locked fails the same way again.
    for item in again:
        _keep(out, item, *_decrypt(ws, verified, item, out.files.get(item.id), passphrase))


def _keep(out: Decrypted, item: ExportItem, message: dict[str, Any] | None, digest: str) -> None:
    """Record one decrypted item: its message's fields, and its plaintext's SHA-256."""
    if message is not None:
        out.messages[item.id] = message
    out.plaintext_sha256[item.id] = digest


def _decrypt(
    ws: Workstation,
    verified: VerifiedExport,
    item: ExportItem,
    temp: Path | None,
    passphrase: str | None,
) -> tuple[dict[str, Any] | None, str]:
    """Decrypt one item: a message into memory, a file into ``temp``.

    :returns: the message's fields (None for a file) and the plaintext's SHA-256.
    """
    source = verified.item_path(item.id)
    # max(.., 1): gpg takes a limit of 0 for none (an empty item cannot decrypt anyway).
    limit = max(1, item.size)
    if item.kind == "message":
        limit = min(limit, MAX_MESSAGE_BYTES)
    try:
        if item.kind == "message":
            data = ws.gpg.decrypt_file(source, passphrase, max_output=limit)
            return _parse_message(item.id, data), hashlib.sha256(data).hexdigest()
        assert temp is not None
        digest = hashlib.sha256()
        ws.gpg.decrypt_to_file(source, temp, passphrase, max_output=limit, digest=digest)
        return None, digest.hexdigest()
    except OutputTooLargeError:
        raise ImportRefusedError(
            f"bundle refused: item {item.id} decrypts to more than {limit} bytes, more than "
            "its ciphertext or a message can hold (compressed data the drop never writes)"
        ) from None
    except DecryptionError as e:
        raise _decryption_error(item.id, str(e), passphrase) from None


def _decryption_error(item_id: str, reason: str, passphrase: str | None) -> Exception:
    """Say why gpg could not decrypt. The team's secret key was found beforehand, so
    "no secret key" without a passphrase means gpg could not unlock it (batch mode has no
    pinentry to ask)."""
    lowered = reason.lower()
    if "bad passphrase" in lowered or (passphrase is not None and "passphrase" in lowered):
        return SecretKeyLockedError("the team key's passphrase is wrong: type it again")
    if "no secret key" in lowered or "no_seckey" in lowered:
        if passphrase is None:
            return SecretKeyLockedError(
                "the team's secret key is locked: type its passphrase and import again"
            )
        return SecretKeyLockedError(
            "the team's secret key could not be unlocked: the passphrase is wrong "
            f"(or item {item_id} is not encrypted to the team key)"
        )
    return ImportRefusedError(f"bundle refused: item {item_id} could not be decrypted ({reason})")


def _parse_message(item_id: str, data: bytes) -> dict[str, Any]:
    """The report's form fields, checked to be what the source UI writes."""
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ImportRefusedError(f"bundle refused: message {item_id} is not JSON") from None
    if not isinstance(body, dict) or body.get("schema") != 1:
        raise ImportRefusedError(f"bundle refused: message {item_id} has an unknown schema")
    for name in _SHORT_FIELDS:
        if not isinstance(body.get(name, ""), str):
            raise ImportRefusedError(f"bundle refused: message {item_id}: '{name}' is not text")
    files = body.get("files", [])
    if not isinstance(files, list) or not all(
        isinstance(f, dict)
        and isinstance(f.get("submission"), str)
        and isinstance(f.get("name"), str)
        for f in files
    ):
        raise ImportRefusedError(f"bundle refused: message {item_id}: malformed file list")
    return body
