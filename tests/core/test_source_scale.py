"""A new source, and a report, cost the same whatever the number of sources: each touches
a bounded number of files in the GnuPG home and the store (issue: every new source used
to rewrite the keybox and re-date every key file of the home, three per source)."""

from __future__ import annotations

import os
from pathlib import Path

from securedrop_wm import sources
from securedrop_wm.codenames import generate_codename
from securedrop_wm.drop import Drop
from securedrop_wm.settings import Settings
from tests.load.bulk import add_sources

_DAY_NS = 86_400 * 10**9


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``roots``: its modification and change times."""
    out = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in (*dirs, *files):
                path = os.path.join(folder, name)
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue
                out[path] = (st.st_mtime_ns, st.st_ctime_ns)
    return out


def _touched(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> set[str]:
    """Files made, removed, or whose times changed (a utime changes the change time).

    Revocation certificates are left out: gpg skips one now and then, when the agent
    fails to sign it under load (``_KEY_ATTEMPTS`` in gpg_support.py), which would make
    the counts differ by one for a reason that has nothing to do with scale."""
    return {
        p
        for p in before.keys() | after.keys()
        if before.get(p) != after.get(p) and not p.endswith(".rev")
    }


def _report(drop: Drop, login: sources.SourceLogin) -> None:
    fields = sources.ReportFields(category="doxxing", what_happened="a report")
    sources.submit_report(drop, login, fields, [])


def _touches(drop: Drop, settings: Settings, existing: int) -> tuple[set[str], set[str]]:
    add_sources(drop, existing)
    _report(drop, sources.create_source(drop, generate_codename()))  # agent up, folders made
    roots = (settings.gpg_home, settings.store_dir)
    before = _snapshot(*roots)
    login = sources.create_source(drop, generate_codename())
    created = _snapshot(*roots)
    _report(drop, login)
    reported = _snapshot(*roots)
    return _touched(before, created), _touched(created, reported)


def test_a_new_source_and_a_report_touch_as_many_files_with_5_or_300_sources(
    drop: Drop, settings: Settings
) -> None:
    new_few, report_few = _touches(drop, settings, 5)
    new_many, report_many = _touches(drop, settings, 295)  # 300 and more now
    # Creating a source: its keybox and the keygrips beside it, two secret key files, a
    # revocation certificate, their folders, and the home's own dozen files (gpg.conf,
    # pubring.kbx, locks: re-dated, a gpg run having read them); nothing else, however
    # many sources there are.
    assert len(new_few) == len(new_many), (sorted(new_few), sorted(new_many))
    assert len(new_many) <= 20, sorted(new_many)
    assert len(report_few) == len(report_many), (sorted(report_few), sorted(report_many))
    # A report: its ciphertexts in the store, and (for its receipt, encrypted to the
    # source's own key, receipts.py) that source's keybox and key files and the home's
    # locks, re-dated to the day: the same files whatever the number of sources.
    assert len(report_many) <= 12, sorted(report_many)
    # And what was touched is dated to the day.
    for path in new_many | report_many:
        if os.path.exists(path):
            assert os.stat(path).st_mtime_ns % _DAY_NS == 0, path
