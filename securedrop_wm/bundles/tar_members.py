"""Reading a bundle's tar members without trusting the tar (archive.py's reader): a
compressed file refused by its magic bytes, extended headers bounded before tarfile
reads them, each member checked for its name, type and size, copied in bounded chunks,
and nothing accepted after the end-of-archive."""

from __future__ import annotations

import contextlib
import hashlib
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import (
    BundleError,
    BundleFormatError,
    MemberTooLargeError,
    PathEscapeError,
    SpecialMemberError,
    TooManyMembersError,
    TruncatedBundleError,
)
from .manifest import Limits

_CHUNK = 1 << 20
_BLOCK = tarfile.BLOCKSIZE

# A bundle's own extended headers (PAX records, GNU long names) hold a name or a size:
# a few hundred bytes. tarfile reads one whole into memory, before any check of ours.
MAX_EXTENDED_HEADER_BYTES = 64 * 1024
_EXTENDED_TYPES = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)

_COMPRESSED_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
}


def refuse_compressed(f: IO[bytes]) -> None:
    """Refuse a compressed file by its magic bytes, before tarfile sees it: now and then
    compressed bytes happen to pass for a tar header, and a bundle is never compressed."""
    head = f.read(8)
    f.seek(0)
    for magic, kind in _COMPRESSED_MAGIC.items():
        if head.startswith(magic):
            raise BundleFormatError(f"not a bundle: the file is not a tar archive ({kind} data)")


class BoundedTarInfo(tarfile.TarInfo):
    """A tar header that refuses, before tarfile reads it, an extended header larger than
    :data:`MAX_EXTENDED_HEADER_BYTES` (unbounded, it would be read whole into memory,
    up to the bundle's size, before the signature is checked), and any GNU sparse member
    (whose extension blocks tarfile reads in a loop)."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED_TYPES and self.size > MAX_EXTENDED_HEADER_BYTES:
            raise MemberTooLargeError(
                f"the bundle has an extended tar header of {self.size} bytes, more than the "
                f"limit of {MAX_EXTENDED_HEADER_BYTES}"
            )
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise SpecialMemberError(
                f"the member {self.name!r} is not a regular file (sparse); only regular files"
                " are allowed"
            )
        return super()._proc_member(tarfile_)  # type: ignore[misc,no-any-return]


def members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            info = tar.next()
        except tarfile.ReadError as e:
            if "unexpected end of data" in str(e):
                raise TruncatedBundleError("the bundle file ends early, between two members") from e
            raise BundleFormatError(f"the bundle is damaged: {e}") from e
        if info is None:
            return
        yield info


def check_member(info: tarfile.TarInfo, count: int, limits: Limits) -> str:
    name = info.name
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name):
        raise PathEscapeError(f"the member {name!r} would be written outside the bundle folder")
    if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        what = (
            "a link"
            if info.issym() or info.islnk()
            else "a folder"
            if info.isdir()
            else "a device or fifo"
            if info.isdev()
            else "not a regular file"
        )
        raise SpecialMemberError(f"the member {name!r} is {what}; only regular files are allowed")
    if count > limits.max_members + 2:
        raise TooManyMembersError(f"the bundle holds more than {limits.max_members} members")
    return name


def read_all(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    reader = tar.extractfile(info)
    assert reader is not None  # a regular file always has a reader
    try:
        data = reader.read()
    except (tarfile.ReadError, OSError) as e:
        raise TruncatedBundleError(f"the bundle ends in the middle of {info.name}") from e
    if len(data) != info.size:
        raise TruncatedBundleError(f"the bundle ends in the middle of {info.name}")
    return data


def copy_member(tar: tarfile.TarFile, info: tarfile.TarInfo, folder: Path | None) -> str:
    """Hash a member while copying it into ``folder``; return its SHA-256."""
    reader = tar.extractfile(info)
    assert reader is not None
    digest = hashlib.sha256()
    try:
        with contextlib.ExitStack() as stack:
            out: IO[bytes] | None = None
            if folder is not None:
                target = folder / info.name
                target.parent.mkdir(mode=0o700, exist_ok=True)
                out = stack.enter_context(target.open("xb"))
            remaining = info.size
            while remaining > 0:
                try:
                    chunk = reader.read(min(_CHUNK, remaining))
                except (tarfile.ReadError, OSError):
                    chunk = b""
                if not chunk:
                    raise TruncatedBundleError(f"the bundle ends in the middle of {info.name}")
                digest.update(chunk)
                if out is not None:
                    out.write(chunk)
                remaining -= len(chunk)
    except OSError as e:
        # Writing the verified copy failed: the disk of the importer, not the bundle.
        raise BundleError(f"cannot keep {info.name} in the work folder: {e.strerror}") from e
    return digest.hexdigest()


def check_end(f: IO[bytes], tar: tarfile.TarFile, total: int, missing: list[str]) -> None:
    """Require a proper end-of-archive: two zero blocks, and only zeros after them."""
    f.seek(tar.offset)
    tail = f.read(2 * _BLOCK)
    if len(tail) < 2 * _BLOCK or tail.strip(b"\0"):
        where = f"before {missing[0]}" if missing else "before its end-of-archive mark"
        raise TruncatedBundleError(f"the bundle file ends early or is damaged ({where})")
    while chunk := f.read(_CHUNK):
        if chunk.strip(b"\0"):
            raise BundleFormatError("the bundle has data after its end-of-archive mark")
