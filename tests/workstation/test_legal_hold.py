"""Legal hold and scheduled retention: a held case is never purged (by an admin, the CLI
or the schedule), release is an admin's and audited; the ``serve`` process purges what
is due by itself; the Retention page says what each date means and a purge asks twice;
the systemd timer in docs/workstation.md passes ``systemd-analyze verify``."""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from securedrop_wm.drop import Drop
from securedrop_wm.workstation import accounts, audit, cases, importing, replies, retention
from securedrop_wm.workstation.cli import workstation as ws_cli
from securedrop_wm.workstation.errors import CaseError, PermissionDeniedError
from securedrop_wm.workstation.models import Account, AuditEvent, Case
from tests.conftest import csrf_token
from tests.live import free_port
from tests.workstation.fixtures import ADMIN, Station, export, login, source_reports

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs/workstation.md"


def _closed_case(station: Station, drop: Drop, folder: Path, text: str = "close me") -> int:
    """Import one report with a file, close its case, and let its acknowledgements leave
    (so only retention and a hold decide its fate); returns its id."""
    ws = station.ws
    source_reports(drop, text, files=[(b"evidence file", "f.txt")])
    importing.import_bundle(ws, ADMIN, export(drop, folder, f"{text.replace(' ', '-')}.tar"))
    case_id = max(r.case.id for r in cases.list_cases(ws, cases.CaseFilter()))
    cases.set_status(ws, ADMIN, case_id, "closed")
    replies.export_reply_bundle(ws, ADMIN)
    return case_id


def _account(station: Station, name: str = ADMIN) -> Account:
    with station.ws.sessions() as db:
        found = db.scalar(select(Account).where(Account.username == name))
    assert found is not None
    return found


def _exists(station: Station, case_id: int) -> bool:
    with station.ws.sessions() as db:
        return db.get(Case, case_id) is not None


def test_a_held_case_survives_purges_and_goes_after_release(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    ws = station.ws
    case_id = _closed_case(station, drop, tmp_path)
    accounts.add_account(ws, ADMIN, "rita", "another long passphrase here", admin=False)
    rita, admin = _account(station, "rita"), _account(station)
    with pytest.raises(CaseError, match="reason"):
        retention.place_hold(ws, rita, case_id, "   ")
    with pytest.raises(CaseError, match="too long"):
        retention.place_hold(ws, rita, case_id, "x" * (retention.MAX_HOLD_REASON_CHARS + 1))
    # Any responder may place a hold.
    retention.place_hold(ws, rita, case_id, "Subpoena 2026-17: keep everything")
    with pytest.raises(CaseError, match="already"):
        retention.place_hold(ws, admin, case_id, "again")
    station.clock.advance(days=ws.settings.retention_days + 1)
    (due,) = retention.retention_schedule(ws)
    assert due.legal_hold and not due.due and due.overdue
    assert due.hold_reason == "Subpoena 2026-17: keep everything"
    files = sorted(ws.settings.files_dir.iterdir())
    assert files
    # Neither an admin's purge nor the schedule's takes it, nor the CLI's.
    assert retention.purge_due(ws, ADMIN) == []
    assert retention.PurgeSchedule(ws).run_once() == []
    result = CliRunner().invoke(ws_cli, ["purge", "--config", str(ws.settings.config_path)])
    assert result.exit_code == 0 and "purged 0 case(s)" in result.output
    assert _exists(station, case_id) and sorted(ws.settings.files_dir.iterdir()) == files
    # Only an admin releases it, with a reason.
    with pytest.raises(PermissionDeniedError):
        retention.release_hold(ws, rita, case_id, "done")
    with pytest.raises(CaseError, match="reason"):
        retention.release_hold(ws, admin, case_id, "")
    retention.release_hold(ws, admin, case_id, "Case 2026-17 settled")
    with pytest.raises(CaseError, match="not on legal hold"):
        retention.release_hold(ws, admin, case_id, "twice")
    (due,) = retention.retention_schedule(ws)
    assert due.due and not due.legal_hold
    assert retention.purge_due(ws, ADMIN) == [due.designation]
    assert not _exists(station, case_id) and list(ws.settings.files_dir.iterdir()) == []
    # The log has both, with their reasons, and still verifies (also from the CLI).
    with ws.sessions() as db:
        events = db.scalars(select(AuditEvent).where(AuditEvent.case_id == case_id)).all()
        assert audit.verify_log(db) > 0
    held = [(e.actor, e.action, e.detail) for e in events if e.action.startswith("case.")]
    assert ("rita", "case.hold", "reason: Subpoena 2026-17: keep everything") in held
    (release,) = [e for e in events if e.action == "case.release"]
    assert release.actor == ADMIN and "reason: Case 2026-17 settled" in release.detail
    assert "held by rita" in release.detail
    assert [e.action for e in events].index("case.release") < [e.action for e in events].index(
        "case.purge"
    )
    verified = CliRunner().invoke(
        ws_cli, ["verify-audit", "--config", str(ws.settings.config_path)]
    )
    assert verified.exit_code == 0 and "audit log intact" in verified.output


def test_a_hold_placed_after_the_schedule_was_read_still_wins(
    station: Station, drop: Drop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """purge_due checks each case again in the transaction that deletes it. The race (a
    hold placed between reading the schedule and deleting) cannot be timed for real: the
    schedule purge_due reads is replaced by one read before the hold, and the test says so."""
    ws = station.ws
    case_id = _closed_case(station, drop, tmp_path)
    station.clock.advance(days=ws.settings.retention_days + 1)
    read_early = retention.retention_schedule(ws, horizon_days=0)
    assert read_early[0].due
    retention.place_hold(ws, _account(station), case_id, "late hold")
    monkeypatch.setattr(retention, "retention_schedule", lambda ws, horizon_days=14: read_early)
    assert retention.purge_due(ws, ADMIN) == []
    assert _exists(station, case_id)


def _post(client: FlaskClient, url: str, page: str, **data: str) -> str:
    response = client.post(url, data={"csrf_token": csrf_token(page), **data})
    assert response.status_code == 302, response.status_code
    return client.get(response.headers["Location"]).text


def test_the_pages_show_the_hold_dates_that_mean_what_they_say_and_ask_twice(
    station: Station, drop: Drop, tmp_path: Path, ws_client: FlaskClient
) -> None:
    ws = station.ws
    days = ws.settings.retention_days
    held = _closed_case(station, drop, tmp_path, "held case")
    station.clock.advance(days=days - 3)
    soon = _closed_case(station, drop, tmp_path, "soon")
    station.clock.advance(days=2)
    later = _closed_case(station, drop, tmp_path, "later")
    station.clock.advance(days=days - 1)  # held and soon: period over; later: one day to go
    login(ws_client, station)
    page = ws_client.get(f"/cases/{held}").text
    assert "Not on legal hold" in page
    page = _post(ws_client, f"/cases/{held}/hold", page, reason="Court order <b>42</b>")
    assert "Legal hold placed." in page and "ON LEGAL HOLD" in page
    assert "Court order &lt;b&gt;42&lt;/b&gt;" in page  # said in text (escaped), not colour
    rows = _rows(ws_client.get("/retention").text)
    name = {c: _designation(station, c) for c in (held, soon, later)}
    assert "not purged: on legal hold" in rows[name[held]]
    assert "ON LEGAL HOLD" in rows[name[held]] and "Court order" in rows[name[held]]
    assert "overdue: purged at the next run" in rows[name[soon]]
    with ws.sessions() as db:
        closed = db.get(Case, later)
        assert closed is not None and closed.closed_at is not None
        purge_on = (closed.closed_at + dt.timedelta(days=days)).strftime("%Y-%m-%d")
    assert f"will be purged on {purge_on}" in rows[name[later]]
    assert "overdue" not in rows[name[later]] and "held" not in rows[name[later]]
    # A purge asks first: the second page lists what goes, and needs the box ticked.
    confirm = ws_client.get("/retention/purge").text
    assert 'type="checkbox" name="confirm"' in confirm
    going = re.search(r'<ul id="going">(.*?)</ul>', confirm, re.DOTALL)
    assert going is not None and name[soon] in going.group(1)
    assert name[held] not in going.group(1) and name[later] not in going.group(1)
    refused = _post(ws_client, "/retention/purge", confirm)
    assert "Nothing was purged" in refused and _exists(station, soon)
    done = _post(ws_client, "/retention/purge", confirm, confirm="yes")
    assert "1 closed case(s) purged." in done
    assert not _exists(station, soon) and _exists(station, held) and _exists(station, later)
    # A responder who is not an admin may place a hold but not release one, nor purge.
    made = accounts.add_account(ws, ADMIN, "rita", "another long passphrase here", admin=False)
    ws_client.post("/logout", data={"csrf_token": csrf_token(done)})
    login(
        ws_client, station, "rita", password="another long passphrase here", secret=made.totp_secret
    )
    page = ws_client.get(f"/cases/{held}").text
    assert "Only an admin may release a legal hold." in page
    page = _post(ws_client, f"/cases/{held}/hold/release", page, reason="me")
    refusal = re.search(r'class="flash error" role="status">([^<]*)<', page)
    assert refusal and "Only an admin may release a legal hold." in refusal.group(1)
    assert "ON LEGAL HOLD" in page
    assert ws_client.get("/retention/purge").status_code == 403


def _designation(station: Station, case_id: int) -> str:
    with station.ws.sessions() as db:
        case = db.get(Case, case_id)
        assert case is not None
        return case.designation


def _rows(page: str) -> dict[str, str]:
    """The retention table's rows as text, by designation (the first cell)."""
    body = re.search(r'<table id="schedule">.*?</table>', page, re.DOTALL)
    assert body is not None
    out = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body.group(0), re.DOTALL):
        cells = [
            " ".join(re.sub(r"<[^>]+>", " ", c).split())
            for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)
        ]
        if cells:
            out[html.unescape(cells[0])] = " | ".join(cells)
    return out


# -- the schedule, in a real `serve` process -------------------------------------------


@contextmanager
def _serving(station: Station, log: Path, **settings: str) -> Iterator[subprocess.Popen[bytes]]:
    """``securedrop-wm workstation serve`` on a free port, with ``SDWM_WS_*`` settings."""
    env = {**os.environ, **{f"SDWM_WS_{k.upper()}": v for k, v in settings.items()}}
    config = station.ws.settings.config_path
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "securedrop_wm.workstation", "serve"]
            + ["--config", str(config), "--port", str(free_port())],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        os.killpg(os.getpgid(process.pid), signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(os.getpgid(process.pid), signal.SIGKILL)
            process.wait(timeout=10)


def _wait_until_gone(
    station: Station, process: subprocess.Popen[bytes], case_id: int, seconds: float, log: Path
) -> None:
    deadline = time.monotonic() + seconds
    while _exists(station, case_id):
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"not purged in {seconds} s: {log.read_text()}"
        time.sleep(0.2)


def _purged_by_scheduler(station: Station, case_id: int) -> bool:
    with station.ws.sessions() as db:
        return (
            db.scalar(
                select(AuditEvent).where(
                    AuditEvent.case_id == case_id,
                    AuditEvent.action == "case.purge",
                    AuditEvent.actor == retention.SCHEDULER,
                )
            )
            is not None
        )


def test_serve_purges_what_is_due_at_start_without_any_request(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    # Closed two days ago in real time (the server has the real clock), kept one day.
    station.clock.advance(days=-2)
    due = _closed_case(station, drop, tmp_path, "due")
    held = _closed_case(station, drop, tmp_path, "held")
    retention.place_hold(station.ws, _account(station), held, "litigation")
    log = tmp_path / "serve.out"
    with _serving(station, log, retention_days="1") as process:
        _wait_until_gone(station, process, due, 30, log)
    assert _purged_by_scheduler(station, due)
    assert _exists(station, held)
    with station.ws.sessions() as db:
        assert audit.verify_log(db) > 0


@pytest.mark.slow
def test_serve_purges_again_every_interval(station: Station, drop: Drop, tmp_path: Path) -> None:
    """A case that falls due while the workstation runs goes at the next run (1 minute)."""
    station.clock.advance(days=-2)
    case_id = _closed_case(station, drop, tmp_path, "falls due")
    cases.set_status(station.ws, ADMIN, case_id, "in_progress")  # open while serve starts
    log = tmp_path / "serve.out"
    with _serving(station, log, retention_days="1", purge_interval_minutes="1") as process:
        time.sleep(3)  # the start-up run has passed
        assert _exists(station, case_id)
        cases.set_status(station.ws, ADMIN, case_id, "closed")  # closed two days ago
        _wait_until_gone(station, process, case_id, 90, log)
    assert _purged_by_scheduler(station, case_id)


def test_no_schedule_runs_when_the_interval_is_zero(station: Station) -> None:
    schedule = retention.PurgeSchedule(station.ws)
    schedule.interval = 0
    schedule.start()
    assert schedule.runs == 0 and schedule._thread is None


# -- the systemd timer in the doc -----------------------------------------------------


def _doc_units() -> dict[str, str]:
    """The unit files the "Scheduled retention" section gives, by the name it gives."""
    text = DOC.read_text()
    section = re.search(r"^## Scheduled retention\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert section, "docs/workstation.md has no 'Scheduled retention' section"
    found = re.findall(
        r"`/etc/systemd/system/([\w.-]+)`:\n\n```ini\n(.*?)```", section.group(1), re.DOTALL
    )
    return dict(found)


def test_the_timer_in_the_doc_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze (Debian's systemd) is needed to check the units")
    units = _doc_units()
    assert set(units) == {"securedrop-wm-purge.service", "securedrop-wm-purge.timer"}
    service = units["securedrop-wm-purge.service"]
    (exec_start,) = re.findall(r"^ExecStart=(\S+) (.*)$", service, re.MULTILINE)
    assert exec_start[0] == "/usr/local/bin/securedrop-wm"
    assert exec_start[1].startswith("workstation purge")
    # Only the program's path changes, to an executable that exists here.
    binary = tmp_path / "bin" / "securedrop-wm"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    (tmp_path / "securedrop-wm-purge.service").write_text(
        service.replace(exec_start[0], str(binary))
    )
    (tmp_path / "securedrop-wm-purge.timer").write_text(units["securedrop-wm-purge.timer"])

    def verify(*names: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["systemd-analyze", "verify", *(str(tmp_path / n) for n in names)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
        )

    checked = verify("securedrop-wm-purge.service", "securedrop-wm-purge.timer")
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stderr
    # verify is not silent on a mistake in such a unit.
    timer = tmp_path / "securedrop-wm-purge.timer"
    timer.write_text(
        units["securedrop-wm-purge.timer"].replace("OnUnitActiveSec=", "OnUnitActivSec=")
    )
    assert (
        "OnUnitActivSec"
        in verify("securedrop-wm-purge.service", "securedrop-wm-purge.timer").stderr
    )
