"""The server's Alembic migrations build exactly the schema the models describe, and
every revision can be undone and redone."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from securedrop_wm.db import alembic_config, make_engine
from securedrop_wm.models import Base


def _differences(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_migrations_and_models_agree_on_a_fresh_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    command.upgrade(alembic_config(url), "head")
    assert _differences(url) == []
    assert _tables(url) == set(Base.metadata.tables)


def test_every_revision_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'trip.sqlite'}"
    config = alembic_config(url)
    revisions = [r.revision for r in ScriptDirectory.from_config(config).walk_revisions()]
    assert len(revisions) >= 2
    for revision in reversed(revisions):  # oldest first
        command.upgrade(config, revision)
        command.downgrade(config, "-1")
        command.upgrade(config, revision)
    command.downgrade(config, "base")
    assert _tables(url) == set()
    command.upgrade(config, "head")
    assert _differences(url) == []


def test_existing_sources_and_replies_survive_the_bundle_migration(tmp_path: Path) -> None:
    # Given a database made by the first release, with two sources and a reply
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    config = alembic_config(url)
    command.upgrade(config, "0001")
    engine = make_engine(url)
    day = dt.date(2026, 1, 2)
    with engine.begin() as conn:
        for n in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO sources (id, lookup_id, designation, key_fingerprint, "
                    "created_day) VALUES (:id, :lookup, :designation, :fpr, :day)"
                ),
                {"id": n, "lookup": f"l{n}", "designation": f"d{n}", "fpr": "A" * 40, "day": day},
            )
        conn.execute(
            text(
                "INSERT INTO replies (uuid, source_id, store_name, size, created_day) "
                "VALUES (:uuid, 1, :name, 10, :day)"
            ),
            {"uuid": str(uuid.uuid4()), "name": "a" * 40 + ".gpg", "day": day},
        )
        conn.execute(
            text(
                "INSERT INTO reports (uuid, source_id, created_day, urgent, acknowledged) "
                "VALUES (:uuid, 2, :day, 1, 0)"
            ),
            {"uuid": str(uuid.uuid4()), "day": day},
        )
    engine.dispose()
    # When it is migrated
    command.upgrade(config, "head")
    # Then each source has its own uuid and the reply is marked as added by an admin
    engine = make_engine(url)
    with engine.connect() as conn:
        uuids = [r[0] for r in conn.execute(text("SELECT uuid FROM sources"))]
        origins = [r[0] for r in conn.execute(text("SELECT origin FROM replies"))]
        reports = conn.execute(text("SELECT source_id, urgency FROM reports")).all()
    engine.dispose()
    assert len(set(uuids)) == 2 and all(uuid.UUID(u).version == 4 for u in uuids)
    assert origins == ["cli"]
    # And no row was lost when SQLite rebuilt the parent table
    assert [tuple(r) for r in reports] == [(2, "urgent")]
    assert _differences(url) == []


def test_urgency_levels_arrivals_and_token_scopes_migrate_from_the_old_flag(
    tmp_path: Path,
) -> None:
    # Given a database at 0004: pending reports urgent and not, acknowledged ones, a token
    url = f"sqlite:///{tmp_path / 'flag.sqlite'}"
    config = alembic_config(url)
    command.upgrade(config, "0004")
    engine = make_engine(url)
    day = dt.date(2026, 1, 2)
    rows = {"pending-urgent": (1, 0), "pending-routine": (0, 0), "acked-urgent": (1, 1)}
    rows["acked-routine"] = (0, 1)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sources (id, uuid, lookup_id, designation, key_fingerprint, "
                "created_day) VALUES (1, :uuid, 'l', 'd', :fpr, :day)"
            ),
            {"uuid": str(uuid.uuid4()), "fpr": "A" * 40, "day": day},
        )
        for name, (urgent, acked) in rows.items():
            conn.execute(
                text(
                    "INSERT INTO reports (uuid, source_id, created_day, urgent, acknowledged) "
                    "VALUES (:uuid, 1, :day, :urgent, :acked)"
                ),
                {"uuid": name, "day": day, "urgent": urgent, "acked": acked},
            )
        conn.execute(
            text(
                "INSERT INTO transfer_tokens (name, token_sha256, created_day) "
                "VALUES ('laptop', :sha, :day)"
            ),
            {"sha": "0" * 64, "day": day},
        )
    engine.dispose()
    # When it is migrated
    command.upgrade(config, "0005")
    engine = make_engine(url)
    with engine.connect() as conn:
        levels = dict(conn.execute(text("SELECT uuid, urgency FROM reports")).all())
        arrivals = dict(conn.execute(text("SELECT level, count FROM arrival_counts")).all())
        scopes = conn.execute(text("SELECT name, scope FROM transfer_tokens")).all()
    engine.dispose()
    # Then pending reports keep their level (danger cannot be told from urgent), the
    # acknowledged ones keep none, the arrivals count the rows there, tokens are full
    assert levels == {
        "pending-urgent": "urgent",
        "pending-routine": "routine",
        "acked-urgent": None,
        "acked-routine": None,
    }
    assert arrivals == {"routine": 2, "urgent": 2, "danger": 0}
    assert [tuple(r) for r in scopes] == [("laptop", "full")]
    # And going back turns the levels into the flag again (an acknowledged report's is
    # gone for good)
    command.downgrade(config, "0004")
    engine = make_engine(url)
    with engine.connect() as conn:
        flags = dict(conn.execute(text("SELECT uuid, urgent FROM reports")).all())
    engine.dispose()
    assert flags == {
        "pending-urgent": 1,
        "pending-routine": 0,
        "acked-urgent": 0,
        "acked-routine": 0,
    }


def test_an_existing_drops_rows_become_the_default_desks(tmp_path: Path) -> None:
    # Given a database at 0006: a report with a pending and an acknowledged submission,
    # arrivals, a token and an export in the bundle log
    url = f"sqlite:///{tmp_path / 'desks.sqlite'}"
    config = alembic_config(url)
    command.upgrade(config, "0006")
    engine = make_engine(url)
    day = dt.date(2026, 1, 2)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sources (id, uuid, lookup_id, designation, key_fingerprint, "
                "created_day) VALUES (1, :uuid, 'l', 'd', :fpr, :day)"
            ),
            {"uuid": str(uuid.uuid4()), "fpr": "A" * 40, "day": day},
        )
        conn.execute(
            text(
                "INSERT INTO reports (id, uuid, source_id, created_day, urgency, acknowledged) "
                "VALUES (1, 'r', 1, :day, 'urgent', 0)"
            ),
            {"day": day},
        )
        for n, acked in ((1, None), (2, day)):
            conn.execute(
                text(
                    "INSERT INTO submissions (id, uuid, report_id, kind, store_name, size, "
                    "acknowledged_day) VALUES (:n, :uuid, 1, 'file', :name, 1, :acked)"
                ),
                {"n": n, "uuid": f"s{n}", "name": f"n{n}", "acked": acked},
            )
        conn.execute(text("UPDATE arrival_counts SET count = 3 WHERE level = 'urgent'"))
        conn.execute(
            text(
                "INSERT INTO transfer_tokens (name, token_sha256, created_day, scope) "
                "VALUES ('laptop', :sha, :day, 'full')"
            ),
            {"sha": "0" * 64, "day": day},
        )
        conn.execute(
            text(
                "INSERT INTO bundle_log (direction, peer, sequence, day) "
                "VALUES ('export', :peer, 4, :day)"
            ),
            {"peer": "B" * 40, "day": day},
        )
    engine.dispose()
    # When it is migrated
    command.upgrade(config, "0007")
    engine = make_engine(url)
    with engine.connect() as conn:
        routed = conn.execute(text("SELECT submission_id, desk FROM submission_desks")).all()
        arrivals = conn.execute(text("SELECT desk, level, count FROM arrival_counts")).all()
        tokens = conn.execute(text("SELECT name, desk FROM transfer_tokens")).all()
        log = conn.execute(text("SELECT sequence, desk FROM bundle_log")).all()
    engine.dispose()
    # Then everything is the default desk's, and only the pending submission is routed
    assert [tuple(r) for r in routed] == [(1, "default")]
    assert {tuple(r) for r in arrivals} == {
        ("default", "routine", 0),
        ("default", "urgent", 3),
        ("default", "danger", 0),
    }
    assert [tuple(r) for r in tokens] == [("laptop", "default")]
    assert [tuple(r) for r in log] == [(4, "default")]
    # And going back keeps the counts
    command.downgrade(config, "0006")
    engine = make_engine(url)
    with engine.connect() as conn:
        arrivals = conn.execute(text("SELECT level, count FROM arrival_counts")).all()
    engine.dispose()
    assert {tuple(r) for r in arrivals} == {("routine", 0), ("urgent", 3), ("danger", 0)}
