"""Many sources, quickly: a drop with thousands of sources for scale tests and bench/.

Making a real key costs some 40 ms (a throwaway gpg home and agent), too slow for
10,000 sources. :func:`add_sources` makes one real source key with the production
code (``GnuPG.create_key(..., own_keybox=True)``) and copies its files once per bulk
source, each under names of its own (a random fingerprint for the keybox and the
revocation certificate, random keygrips for the two secret key files): the GnuPG home
then holds as many files, in the same folders, as with that many real sources, which is
what the cost of adding one more could depend on. The database rows are inserted in one
transaction. The copies are not usable keys (their keybox holds the template's key):
only the sources made by :func:`real_source` are.
"""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
import subprocess
import uuid
from pathlib import Path

from sqlalchemy import insert

from securedrop_wm import source_keys
from securedrop_wm.drop import Drop
from securedrop_wm.models import Source
from securedrop_wm.store import coarsen_times


def add_sources(
    drop: Drop, count: int, day: dt.date | None = None, last_report_day: dt.date | None = None
) -> list[str]:
    """Add ``count`` sources created on ``day`` (today), with copied key files.

    :returns: their key fingerprints.
    """
    home = drop.gpg.home
    template = drop.gpg.create_key("bulk template", "passphrase", own_keybox=True)
    kbx = source_keys.keybox(home, template)
    grips = keygrips(home, template)
    keys = home / "private-keys-v1.d"
    rev = home / "openpgp-revocs.d" / f"{template}.rev"
    fingerprints = []
    for _ in range(count):
        fpr = secrets.token_hex(20).upper()
        fingerprints.append(fpr)
        _copy(kbx, source_keys.keybox(home, fpr))
        if rev.exists():  # gpg skips it when the agent fails to sign it (gpg_support.py)
            _copy(rev, home / "openpgp-revocs.d" / f"{fpr}.rev")
        copies = [secrets.token_hex(20).upper() for _ in grips]
        for grip, copy in zip(grips, copies, strict=True):
            _copy(keys / f"{grip}.key", keys / f"{copy}.key")
        sidecar = source_keys.keybox(home, fpr).with_suffix(".grips")
        sidecar.write_text("".join(f"{c}\n" for c in copies))
        coarsen_times(sidecar)
    drop.gpg.remove_source_keys([template])
    for folder in (home, home / "sources", home / "private-keys-v1.d", home / "openpgp-revocs.d"):
        coarsen_times(folder)
    created = day or drop.today()
    with drop.sessions.begin() as db:
        db.execute(
            insert(Source),
            [
                {
                    "uuid": str(uuid.uuid4()),
                    "lookup_id": secrets.token_hex(32),
                    "designation": f"bulk {secrets.token_hex(8)}",
                    "key_fingerprint": fpr,
                    "created_day": created,
                    "last_report_day": last_report_day,
                }
                for fpr in fingerprints
            ],
        )
    return fingerprints


def keygrips(home: Path, fingerprint: str) -> list[str]:
    """The keygrips of a key's (sub)keys, in its own keybox or the home's."""
    argv = ["gpg", "--homedir", str(home), "--batch", "--with-colons", "--with-keygrip"]
    argv += source_keys.keyring_args(home, [fingerprint]) + ["--list-keys", fingerprint]
    out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    return [line.split(":")[9] for line in out.splitlines() if line.startswith("grp:")]


def _copy(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    dst.chmod(0o600)
    coarsen_times(dst)
