"""Tar extension headers that tarfile would read whole into memory before any check of
ours, and so before the signature: a PAX record or a GNU long name of 100 MiB. Anyone
who can hand the transfer API or the workstation a file can send one; it must cost
nothing but a refusal."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from .forge import raw_header

MIB = 1024 * 1024

# Run in a child so that its peak RSS measures this read alone.
_CHILD = """
import resource, sys
from pathlib import Path
from securedrop_wm.bundles.archive import verify_export_bundle, verify_reply_bundle
from securedrop_wm.bundles.errors import BundleError

before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
verify = verify_export_bundle if sys.argv[2] == "export" else verify_reply_bundle
args = (Path(sys.argv[1]), None, "A" * 40) + ((None,) if sys.argv[2] == "reply" else ())
try:
    verify(*args, None)
except BundleError as e:
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) // 1024, type(e).__name__, e, sep="\\n")
else:
    print("accepted")
"""


@pytest.mark.parametrize("kind", [tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME])
@pytest.mark.parametrize("bundle", ["export", "reply"])
def test_a_huge_extended_header_is_refused_before_it_is_read(
    tmp_path: Path, kind: bytes, bundle: str
) -> None:
    # Given a bundle whose first member is a 100 MiB extended header (sparse on disk)
    path = tmp_path / "bundle.tar"
    with path.open("wb") as f:
        f.write(raw_header("././@PaxHeader", 100 * MIB, kind))
        f.truncate(f.tell() + 100 * MIB + 2 * tarfile.BLOCKSIZE)
    # When it is verified
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), bundle],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.splitlines()
    # Then it is refused with a clear error, and the header was never read
    assert out[0] != "accepted"
    grown_mib, error, message = int(out[0]), out[1], out[2]
    assert error == "MemberTooLargeError"
    assert "extended tar header" in message
    assert grown_mib < 32, f"the read took {grown_mib} MiB"
