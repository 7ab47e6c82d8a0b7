"""Retention on the drop server (securedrop_wm/retention.py, ``securedrop-wm maintain``):
sources that never reported and sources with nothing left are removed with their keys,
a removed source's codename is told so, expired replies and report rows go, and
removing thousands of sources costs time linear in their number."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from securedrop_wm import retention, source_keys, sources
from securedrop_wm.cli import main as cli
from securedrop_wm.codenames import generate_codename
from securedrop_wm.drop import Drop
from securedrop_wm.errors import SettingsError, SourceNotFoundError, SourceRemovedError
from securedrop_wm.models import Reply, Report, Source, SourceTombstone, Submission
from securedrop_wm.settings import load_settings
from tests.load.bulk import add_sources, keygrips


def _days_later(drop: Drop, start: dt.date, days: int) -> None:
    drop.today = lambda: start + dt.timedelta(days=days)


def _fingerprint(drop: Drop, login: sources.SourceLogin) -> str:
    with drop.sessions() as db:
        fpr = db.scalar(select(Source.key_fingerprint).where(Source.lookup_id == login.source_id))
    assert fpr is not None
    return fpr


def _key_files(drop: Drop, fingerprint: str) -> list[Path]:
    """The keybox, secret key files and revocation certificate of a key, as they exist."""
    home = drop.gpg.home
    files = [home / "openpgp-revocs.d" / f"{fingerprint}.rev"]
    files.append(source_keys.keybox(home, fingerprint))
    files += [home / "private-keys-v1.d" / f"{g}.key" for g in keygrips(home, fingerprint)]
    return [f for f in files if f.exists()]


def _report(drop: Drop, login: sources.SourceLogin) -> None:
    fields = sources.ReportFields(category="doxxing", what_happened="a report")
    sources.submit_report(drop, login, fields, [])


def test_a_source_that_never_reported_is_removed_after_the_grace_period_with_its_key(
    drop: Drop,
) -> None:
    day = drop.today()
    codename = generate_codename()
    login = sources.create_source(drop, codename)
    fpr = _fingerprint(drop, login)
    reporter = sources.create_source(drop, generate_codename())
    _report(drop, reporter)
    key_files = _key_files(drop, fpr)
    assert source_keys.keybox(drop.gpg.home, fpr) in key_files
    assert any(f.parent.name == "private-keys-v1.d" for f in key_files)
    # Not before unused_source_days (7)...
    _days_later(drop, day, 6)
    assert retention.maintain(drop).unused_sources == 0
    assert sources.login_source(drop, codename) == login
    # ...then removed, with every file of its key, and without its passphrase
    _days_later(drop, day, 7)
    result = retention.maintain(drop)
    assert (result.unused_sources, result.emptied_sources) == (1, 0)
    assert [f for f in key_files if f.exists()] == []
    assert not sources.source_exists(drop, login.source_id)
    # A source that reported stays
    assert sources.source_exists(drop, reporter.source_id)
    # Its codename is told it was removed; an unknown codename is not
    with pytest.raises(SourceRemovedError):
        sources.login_source(drop, codename)
    with pytest.raises(SourceNotFoundError) as unknown:
        sources.login_source(drop, generate_codename())
    assert not isinstance(unknown.value, SourceRemovedError)
    # The tombstone expires after tombstone_days
    _days_later(drop, day, 7 + drop.settings.tombstone_days)
    assert retention.maintain(drop).tombstones == 1
    with pytest.raises(SourceNotFoundError) as forgotten:
        sources.login_source(drop, codename)
    assert not isinstance(forgotten.value, SourceRemovedError)


def test_a_source_with_nothing_left_is_removed_after_retention_not_before(drop: Drop) -> None:
    day = drop.today()
    codename = generate_codename()
    login = sources.create_source(drop, codename)
    _report(drop, login)
    reply = sources.add_reply(drop, _designation(drop, login), "we read your report")
    pending = sources.create_source(drop, generate_codename())
    _report(drop, pending)  # never acknowledged: kept for ever
    # The workstation acknowledges the first report; the source deletes the reply.
    with drop.sessions.begin() as db:
        report_ids = select(Report.id).join(Source).where(Source.lookup_id == login.source_id)
        db.execute(
            update(Submission)
            .where(Submission.report_id.in_(report_ids))
            .values(acknowledged_day=day)
        )
    assert [r.uuid for r in sources.list_replies(drop, login)] == [reply]
    assert sources.delete_reply(drop, login, reply)
    assert retention.maintain(drop).purged_ciphertexts == 1
    fpr = _fingerprint(drop, login)
    # The report row goes after report_retention_days, the source stays
    _days_later(drop, day, drop.settings.report_retention_days)
    result = retention.maintain(drop)
    assert (result.reports, result.emptied_sources) == (1, 0)
    assert sources.login_source(drop, codename) == login
    # until source_retention_days after its last report
    _days_later(drop, day, drop.settings.source_retention_days - 1)
    assert retention.maintain(drop).emptied_sources == 0
    _days_later(drop, day, drop.settings.source_retention_days)
    assert retention.maintain(drop).emptied_sources == 1
    assert not source_keys.keybox(drop.gpg.home, fpr).exists()
    with pytest.raises(SourceRemovedError):
        sources.login_source(drop, codename)
    # A source whose report waits for the workstation is kept, however old
    _days_later(drop, day, 3 * 365)
    retention.maintain(drop)
    assert sources.source_exists(drop, pending.source_id)


def test_unread_replies_expire(drop: Drop) -> None:
    day = drop.today()
    login = sources.create_source(drop, generate_codename())
    _report(drop, login)
    sources.add_reply(drop, _designation(drop, login), "a reply never read")
    _days_later(drop, day, drop.settings.reply_retention_days - 1)
    assert retention.maintain(drop).replies == 0
    _days_later(drop, day, drop.settings.reply_retention_days)
    assert retention.maintain(drop).replies == 1
    with drop.sessions() as db:
        assert db.scalar(select(func.count(Reply.id))) == 0
    assert list(drop.store.root.glob("*.gpg")) == [
        drop.store.path(n) for n in _submission_names(drop)
    ]


def test_a_source_key_in_the_homes_keybox_still_works_and_is_removed(drop: Drop) -> None:
    """A home made by an earlier release keeps its source keys in pubring.kbx."""
    codename = generate_codename()
    login = sources.create_source(drop, codename)
    old = drop.gpg.create_key("securedrop-wm source", login.passphrase)  # the old layout
    assert not source_keys.keybox(drop.gpg.home, old).exists()
    with drop.sessions.begin() as db:
        db.execute(
            update(Source).where(Source.lookup_id == login.source_id).values(key_fingerprint=old)
        )
    sources.add_reply(drop, _designation(drop, login), "to the old key")
    assert [r.text for r in sources.list_replies(drop, login)] == ["to the old key"]
    assert "PUBLIC KEY" in drop.gpg.export_public_key(old)
    files = _key_files(drop, old)
    assert len([f for f in files if f.parent.name == "private-keys-v1.d"]) == 2
    assert drop.gpg.remove_source_keys([old]) == 1
    assert [f for f in files if f.exists()] == []
    assert drop.gpg._gpg.list_keys(keys=[old]) == []  # noqa: SLF001


def test_removing_2000_sources_takes_time_linear_in_their_number(drop: Drop) -> None:
    day = drop.today()
    timings = {}
    for count in (500, 2000):
        add_sources(drop, count, day=day - dt.timedelta(days=30))
        start = time.perf_counter()
        unused, _ = retention.prune_sources(drop)
        timings[count] = time.perf_counter() - start
        assert unused == count
    with drop.sessions() as db:
        assert db.scalar(select(func.count(Source.id))) == 0
        assert db.scalar(select(func.count(SourceTombstone.id))) == 2500
    assert list((drop.gpg.home / "sources").iterdir()) == []
    # Linear: about 4 times as long for 4 times as many; quadratic would be 16.
    assert timings[2000] / timings[500] < 8, timings


def test_maintain_command_prints_what_it_removed(data_dir: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--config", str(data_dir / "config.toml"), "maintain"], env={"SDWM_CONFIG": ""}
    )
    assert result.exit_code == 0, result.output
    assert "source(s) that never reported" in result.output


def test_unused_source_days_is_at_least_two(data_dir: Path) -> None:
    # Sources are dated to the day: 1 could remove a source made a minute ago.
    config = data_dir / "config.toml"
    with pytest.raises(SettingsError, match="unused_source_days"):
        load_settings(config, environ={"SDWM_UNUSED_SOURCE_DAYS": "1"})
    assert load_settings(config, environ={"SDWM_UNUSED_SOURCE_DAYS": "2"}).unused_source_days == 2


def _designation(drop: Drop, login: sources.SourceLogin) -> str:
    with drop.sessions() as db:
        found = db.scalar(select(Source.designation).where(Source.lookup_id == login.source_id))
    assert found is not None
    return found


def _submission_names(drop: Drop) -> list[str]:
    with drop.sessions() as db:
        return sorted(db.scalars(select(Submission.store_name)))
