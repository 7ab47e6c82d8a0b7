"""The Python that runs the drop carries the fixes its threat model relies on."""

from __future__ import annotations

import io
import tarfile

import pytest


def test_tarfile_refuses_a_header_that_would_backtrack_for_ever() -> None:
    # CVE-2024-6232: a pax header of digits made tarfile's header regex backtrack
    # quadratically (20,000 digits take about 0.7 s, 200,000 over a minute) before the
    # bundle's signature is checked. Debian's python3.11 has the fix and refuses the
    # header at once; an unfixed Python reads it. scripts/*.sh build on /usr/bin/python3.
    digits = b"1" * 20_000
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        header = tarfile.TarInfo("pax")
        header.type = tarfile.XHDTYPE
        header.size = len(digits)
        tar.addfile(header, io.BytesIO(digits))
        member = tarfile.TarInfo("item")
        member.size = 1
        tar.addfile(member, io.BytesIO(b"x"))
    raw.seek(0)
    # An unfixed Python reads the archive without complaint, and this fails.
    with pytest.raises(tarfile.ReadError, match="invalid header"), tarfile.open(fileobj=raw) as tar:
        tar.getmembers()
