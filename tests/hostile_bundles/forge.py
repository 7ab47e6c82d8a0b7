"""Making hostile bundles byte by byte, as an attacker would: tar headers that lie about
sizes or names, PAX and GNU extensions, links and devices, compressed archives, swapped
or stripped signatures, and manifests re-signed with a stolen server key."""

from __future__ import annotations

import copy
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bundles.helpers import read_members, sign_as

Members = list[tuple[tarfile.TarInfo, bytes]]
BLOCK = tarfile.BLOCKSIZE


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **pax: str) -> Any:
    """A member of any type, with optional PAX records (``path``, ``size``, ...)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.linkname = "/etc/passwd"
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 5  # /dev/zero
    info.pax_headers = dict(pax)
    return info, data


def tar_bytes(members: Members, fmt: int = tarfile.PAX_FORMAT, end: bool = True) -> bytes:
    """Members written with their headers as given (types, names, PAX records) by tarfile;
    without the end-of-archive blocks when ``end`` is false (to append raw headers)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for info, data in members:
            regular = info.type in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
            info = copy.copy(info)
            info.size = len(data) if regular else 0
            tar.addfile(info, io.BytesIO(data) if regular and data else None)
        last = tar.offset
    return out.getvalue() if end else out.getvalue()[:last]


def raw_header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    """One ustar header block that claims ``size`` bytes follow (base-256 when huge)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    return info.tobuf(format=tarfile.GNU_FORMAT)


@dataclass
class Genuine:
    """A real bundle and what an attacker can do with it."""

    path: Path
    members: Members = field(init=False)

    def __post_init__(self) -> None:
        self.members = read_members(self.path)

    @property
    def manifest(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.members[0][1])
        return value

    def with_manifest(self, data: bytes, signature: bytes | None) -> Members:
        """The same members under another manifest and signature (None: no signature)."""
        head = [(self.members[0][0], data)]
        if signature is not None:
            head.append((self.members[1][0], signature))
        return [*head, *self.members[2:]]

    def resigned(
        self, home: Path, fingerprint: str, change: Callable[[dict[str, Any]], object]
    ) -> Members:
        """The manifest changed by ``change`` (in place), signed again by ``fingerprint``."""
        return resign(self.members, home, fingerprint, change)


def resign(
    members: Members, home: Path, fingerprint: str, change: Callable[[dict[str, Any]], object]
) -> Members:
    """``members`` under their manifest changed by ``change``, signed by ``fingerprint``."""
    manifest = json.loads(members[0][1])
    change(manifest)
    data = json.dumps(manifest).encode()
    return [(members[0][0], data), (members[1][0], sign_as(home, fingerprint, data)), *members[2:]]
