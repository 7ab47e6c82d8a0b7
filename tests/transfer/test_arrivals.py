"""The arrival counters behind ``GET /status``: one per urgency level, counted with the
report, never going down: not when the workstation acknowledges, not when ciphertext is
purged, not when retention removes the report rows and their sources."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from securedrop_wm import retention, sources
from securedrop_wm.bundles import import_reply_bundle
from securedrop_wm.codenames import generate_codename
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop
from securedrop_wm.errors import EmptyReportError
from securedrop_wm.models import Report, Source, Submission
from securedrop_wm.transfer import transfer_status
from tests.bundles.helpers import reply_bundle, submit
from tests.conftest import Responders

from .conftest import levels


def test_arrivals_outlive_acknowledgement_purge_and_removal_of_the_sources(
    drop: Drop, signer_gpg: GnuPG, responders: Responders, tmp_path: Path
) -> None:
    # Given reports of every level, two of them in danger
    for urgency in ("routine", "urgent", "danger", "danger"):
        submit(drop, urgency=urgency)
    assert transfer_status(drop).to_json() == levels(routine=(1, 1), urgent=(1, 1), danger=(2, 2))
    # When the workstation acknowledges them all (the ciphertext is purged at once)
    with drop.sessions() as db:
        items = list(db.scalars(select(Submission.uuid)))
    bundle = reply_bundle(signer_gpg, responders, drop, tmp_path / "r.tar", acknowledged=items)
    assert import_reply_bundle(drop, bundle).purged == len(items)
    # Then nothing is pending and every arrival is still counted
    after = levels(routine=(0, 1), urgent=(0, 1), danger=(0, 2))
    assert transfer_status(drop).to_json() == after
    # And when retention, a year later, removes the report rows and the sources
    start = drop.today()
    drop.today = lambda: start + dt.timedelta(days=400)
    result = retention.maintain(drop)
    assert result.reports + result.emptied_sources > 0
    with drop.sessions() as db:
        assert db.scalar(select(func.count(Report.id))) == 0
        assert db.scalar(select(func.count(Source.id))) == 0
    # the counters stay as they were
    assert transfer_status(drop).to_json() == after


def test_a_refused_report_is_not_counted(drop: Drop) -> None:
    login = sources.create_source(drop, generate_codename())  # type: ignore[arg-type]
    fields = sources.ReportFields(category="doxxing", what_happened="  ", urgency="danger")
    with pytest.raises(EmptyReportError):
        sources.submit_report(drop, login, fields, [])
    assert transfer_status(drop).to_json() == levels()
