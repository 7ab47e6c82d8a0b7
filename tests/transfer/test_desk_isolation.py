"""Desks (issue 17) on the drop server, with real gpg keys and the real transfer API: a
report to one desk is encrypted to that desk's keys only; a desk's token sees, pulls and
acknowledges that desk's items only; an item sent to two desks is purged once both
acknowledged; a follow-up goes to the desks of the report it follows; which desk an item
is for is kept only while it is pending, never in the store's file names."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import func, select

from securedrop_wm import sources
from securedrop_wm.bundles import write_reply_bundle
from securedrop_wm.cli import main as cli
from securedrop_wm.codenames import generate_codename
from securedrop_wm.conversation import follow_up_desks, send_follow_up
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop, open_drop
from securedrop_wm.errors import UnknownDeskError
from securedrop_wm.models import Report, Source, Submission, SubmissionDesk
from securedrop_wm.settings import load_settings
from securedrop_wm.transfer import create_token
from tests.conftest import Responders, short_tempdir
from transfer_api import create_app

from .conftest import bearer, levels

PERSIAN = "persian"
RUSSIAN = "russian"
CENTRAL = "default"  # the drop's one team, made a desk by the first `desk add`


@dataclass
class DeskKeys:
    """One desk's side: a GnuPG home with its team key and workstation key, and a home
    that holds one responder's key alone."""

    home: Path
    team: str
    team_public: Path
    workstation: str
    workstation_public: Path
    responder_home: Path
    responder: str
    responder_public: Path


def _make_desk(name: str) -> DeskKeys:
    home = short_tempdir(f"sdwm-{name}-")
    alone = short_tempdir(f"sdwm-{name}-r-")
    gpg, other = GnuPG(home), GnuPG(alone)
    team = gpg.create_key(f"{name} team", None)
    station = gpg.create_key(f"{name} workstation", None)
    responder = other.create_key(f"{name} responder", None)
    paths = {}
    for label, g, fpr in (("team", gpg, team), ("ws", gpg, station), ("r", other, responder)):
        paths[label] = home / f"{label}.asc"
        paths[label].write_text(g.export_public_key(fpr))
    gpg.close()
    other.close()
    return DeskKeys(home, team, paths["team"], station, paths["ws"], alone, responder, paths["r"])


@pytest.fixture(scope="module")
def desk_keys() -> Iterator[dict[str, DeskKeys]]:
    made = {PERSIAN: _make_desk("fa"), RUSSIAN: _make_desk("ru")}
    yield made
    for keys in made.values():
        for home in (keys.home, keys.responder_home):
            subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def desks_drop(data_dir: Path, desk_keys: dict[str, DeskKeys]) -> Iterator[Drop]:
    """The test's drop, given two desks with the real `securedrop-wm desk add`."""
    config = data_dir / "config.toml"
    for desk_id, name in ((PERSIAN, "Persian community desk"), (RUSSIAN, "Russian desk")):
        keys = desk_keys[desk_id]
        result = CliRunner().invoke(
            cli,
            [
                "--config", str(config), "desk", "add", desk_id,
                "--name", f"en={name}",
                "--serves", "en=Persian speakers, anywhere",
                "--team-key", str(keys.team_public),
                "--responder-key", str(keys.responder_public),
                "--workstation-key", str(keys.workstation_public),
            ],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    drop = open_drop(load_settings(config, environ={}))
    yield drop
    drop.close()


def decrypts(home: Path, path: Path) -> bool:
    """Whether plain gpg with the keys of ``home`` alone decrypts ``path``."""
    run = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--quiet", "--decrypt", str(path)],
        capture_output=True,
        check=False,
    )
    return run.returncode == 0


def report(drop: Drop, desks: tuple[str, ...], urgency: str = "routine") -> sources.SourceLogin:
    """A new source's report with one file, to ``desks``."""
    login = sources.create_source(drop, generate_codename())  # type: ignore[arg-type]
    f = sources.start_file(drop, "evidence.txt", desks)
    f.writer.write(b"a screenshot, as text")
    fields = sources.ReportFields(
        category="threats", what_happened="They found me.", urgency=urgency
    )
    sources.submit_report(drop, login, fields, [f], desks=desks)
    return login


def items_of(drop: Drop, login: sources.SourceLogin | None = None) -> list[str]:
    with drop.sessions() as db:
        query = select(Submission.uuid).join(Report)
        if login is not None:
            query = query.join(Report.source).where(Report.source.has(lookup_id=login.source_id))
        return list(db.scalars(query.order_by(Submission.id)))


def store_paths(drop: Drop) -> list[Path]:
    return sorted(p for p in drop.store.root.iterdir() if p.is_file())


def reply_bundle(
    drop: Drop, home: Path, workstation: str, out: Path, acknowledged: list[str], sequence: int = 1
) -> bytes:
    """A reply bundle signed by the workstation key ``workstation`` (held in ``home``)."""
    write_reply_bundle(
        GnuPG(home), workstation, drop.settings.signing_fingerprint, sequence, [], acknowledged, out
    )
    return out.read_bytes()


def api(drop: Drop) -> FlaskClient:
    return create_app(drop.settings, drop).test_client()


def export_headers(client: FlaskClient, token: str) -> dict[str, str]:
    """What ``GET /export`` says of the bundle it streams (closed at once)."""
    response = client.get("/export", headers=bearer(token))
    assert response.status_code == 200
    response.close()
    return dict(response.headers)


def test_a_report_to_one_desk_is_read_by_its_keys_only(
    desks_drop: Drop, desk_keys: dict[str, DeskKeys], responders: Responders
) -> None:
    # Given a report (a message and a file) to the Persian desk alone
    report(desks_drop, (PERSIAN,))
    files = store_paths(desks_drop)
    assert len(files) == 2
    fa, ru = desk_keys[PERSIAN], desk_keys[RUSSIAN]
    for path in files:
        # Then the Persian team key decrypts it, and so does its other responder's key alone
        assert decrypts(fa.home, path)
        assert decrypts(fa.responder_home, path)
        # And neither the Russian desk's keys nor the central desk's do
        assert not decrypts(ru.home, path)
        assert not decrypts(ru.responder_home, path)
        assert not decrypts(responders.home, path)


def test_a_desks_token_neither_sees_pulls_nor_acknowledges_another_desks_items(
    desks_drop: Drop, desk_keys: dict[str, DeskKeys], tmp_path: Path
) -> None:
    # Given an urgent report to the Russian desk, and a token for each desk
    report(desks_drop, (RUSSIAN,), urgency="urgent")
    ru_items = items_of(desks_drop)
    fa_token = create_token(desks_drop, "fa-laptop", desk=PERSIAN)
    ru_token = create_token(desks_drop, "ru-laptop", desk=RUSSIAN)
    client = api(desks_drop)
    # Then the Persian token's status shows nothing, the Russian one's the report
    fa_status = client.get("/status", headers=bearer(fa_token))
    assert fa_status.json == levels()
    assert client.get("/status", headers=bearer(ru_token)).json == levels(urgent=(1, 1))
    # And the Persian export holds none of it, the Russian one all of it
    fa_export = export_headers(client, fa_token)
    ru_export = export_headers(client, ru_token)
    assert fa_export["X-SDWM-Items"] == "0"
    assert ru_export["X-SDWM-Items"] == str(len(ru_items))
    # Each desk has its own bundle sequence
    assert fa_export["X-SDWM-Sequence"] == ru_export["X-SDWM-Sequence"] == "1"
    # When the Persian workstation acknowledges the Russian items' ids
    fa = desk_keys[PERSIAN]
    body = reply_bundle(desks_drop, fa.home, fa.workstation, tmp_path / "fa.tar", ru_items)
    answer = client.post("/replies", data=body, headers=bearer(fa_token))
    # Then they count as unknown, as ids of nothing would, and stay pending for Russia
    assert answer.status_code == 200
    assert (answer.json["acknowledged"], answer.json["acknowledged_unknown"]) == (0, len(ru_items))
    assert client.get("/status", headers=bearer(ru_token)).json == levels(urgent=(1, 1))
    with desks_drop.sessions() as db:
        assert db.scalar(select(func.count(SubmissionDesk.id))) == len(ru_items)
    # And a bundle signed by the Persian workstation is refused on the Russian token
    body = reply_bundle(desks_drop, fa.home, fa.workstation, tmp_path / "fa2.tar", ru_items, 2)
    refused = client.post("/replies", data=body, headers=bearer(ru_token))
    assert refused.status_code == 422 and refused.json["error"] == "UnknownSignerError"
    assert client.get("/status", headers=bearer(ru_token)).json == levels(urgent=(1, 1))


def test_an_item_sent_to_a_desk_and_the_central_desk_is_purged_once_both_acknowledged(
    desks_drop: Drop, desk_keys: dict[str, DeskKeys], responders: Responders, tmp_path: Path
) -> None:
    # Given a report to the Persian desk and, as the source asked, the central desk
    report(desks_drop, (CENTRAL, PERSIAN))
    items = items_of(desks_drop)
    files = store_paths(desks_drop)
    assert all(decrypts(responders.home, p) and decrypts(desk_keys[PERSIAN].home, p) for p in files)
    fa_token = create_token(desks_drop, "fa-laptop", desk=PERSIAN)
    central_token = create_token(desks_drop, "central-laptop", desk=CENTRAL)
    client = api(desks_drop)
    # (the Persian desk's export is kept, holding copies of what it waits for)
    assert export_headers(client, fa_token)["X-SDWM-Items"] == str(len(items))
    kept = desks_drop.settings.data_dir / "exports" / f"last-{PERSIAN}.tar"
    assert kept.exists()
    # When the Persian workstation acknowledges it
    fa = desk_keys[PERSIAN]
    body = reply_bundle(desks_drop, fa.home, fa.workstation, tmp_path / "fa.tar", items)
    answer = client.post("/replies", data=body, headers=bearer(fa_token))
    assert (answer.json["acknowledged"], answer.json["purged"]) == (len(items), 0)
    # Then that kept export is gone at once (shredded), not left until the next pull
    assert not kept.exists()
    # Then it is gone from the Persian desk's export and counts, kept for the central one
    assert export_headers(client, fa_token)["X-SDWM-Items"] == "0"
    assert client.get("/status", headers=bearer(fa_token)).json == levels(routine=(0, 1))
    assert client.get("/status", headers=bearer(central_token)).json == levels(routine=(1, 1))
    assert store_paths(desks_drop) == files
    # When the central workstation acknowledges it too
    body = reply_bundle(
        desks_drop, responders.home, responders.workstation_fingerprint, tmp_path / "c.tar", items
    )
    answer = client.post("/replies", data=body, headers=bearer(central_token))
    # Then the ciphertext is purged, and no row says which desks it was for
    assert (answer.json["acknowledged"], answer.json["purged"]) == (len(items), len(items))
    assert store_paths(desks_drop) == []
    with desks_drop.sessions() as db:
        assert db.scalar(select(func.count(SubmissionDesk.id))) == 0


def test_a_follow_up_goes_to_the_desks_of_the_report_it_follows(
    desks_drop: Drop, desk_keys: dict[str, DeskKeys], tmp_path: Path
) -> None:
    # Given a source who reported to the Russian desk, which has since acknowledged it
    # (so the server's database no longer says which desk it went to)
    login = report(desks_drop, (RUSSIAN,))
    ru = desk_keys[RUSSIAN]
    ru_token = create_token(desks_drop, "ru-laptop", desk=RUSSIAN)
    body = reply_bundle(
        desks_drop, ru.home, ru.workstation, tmp_path / "ru.tar", items_of(desks_drop)
    )
    assert api(desks_drop).post("/replies", data=body, headers=bearer(ru_token)).status_code == 200
    with desks_drop.sessions() as db:
        assert db.scalar(select(func.count(SubmissionDesk.id))) == 0
    # When they send a follow-up with a file, naming no desk
    desks = follow_up_desks(desks_drop, login)
    assert desks == (RUSSIAN,)
    f = sources.start_file(desks_drop, "more.txt", desks)
    f.writer.write(b"more")
    send_follow_up(desks_drop, login, "They came back.", files=[f])
    # Then it goes to the Russian desk (read from the source's own receipt), not another
    with desks_drop.sessions() as db:
        routed = set(db.scalars(select(SubmissionDesk.desk)))
    assert routed == {RUSSIAN}
    for path in store_paths(desks_drop):
        assert decrypts(ru.home, path) and not decrypts(desk_keys[PERSIAN].home, path)
    # And files streamed to other desks than the follow-up's are refused
    other = sources.start_file(desks_drop, "wrong.txt", (PERSIAN,))
    with pytest.raises(UnknownDeskError):
        send_follow_up(desks_drop, login, "", files=[other])


def test_desks_are_in_no_store_name_and_an_unknown_desk_is_refused(desks_drop: Drop) -> None:
    # Given reports to each desk
    report(desks_drop, (PERSIAN,))
    report(desks_drop, (CENTRAL, RUSSIAN))
    # Then no file of the store names a desk
    names = [p.name for p in desks_drop.store.root.rglob("*")]
    assert names and not any(d in n for n in names for d in (PERSIAN, RUSSIAN, CENTRAL))
    # And a desk that is not configured, or none on a drop with several, is refused
    with pytest.raises(UnknownDeskError):
        sources.start_file(desks_drop, "x.txt", ("nowhere",))
    with pytest.raises(UnknownDeskError):
        sources.start_file(desks_drop, "x.txt")
    login = sources.create_source(desks_drop, generate_codename())  # type: ignore[arg-type]
    fields = sources.ReportFields(category="threats", what_happened="Hello")
    with pytest.raises(UnknownDeskError):
        sources.submit_report(desks_drop, login, fields, [], desks=("nowhere",))
    with pytest.raises(UnknownDeskError):
        sources.submit_report(desks_drop, login, fields, [])


def test_a_reply_is_encrypted_to_the_source_and_the_replying_desk_only(
    desks_drop: Drop, desk_keys: dict[str, DeskKeys]
) -> None:
    report(desks_drop, (RUSSIAN,))
    with desks_drop.sessions() as db:
        designation = db.scalar(select(Source.designation))
    before = set(store_paths(desks_drop))
    assert designation is not None
    sources.add_reply(desks_drop, designation, "We read you.", desk=RUSSIAN)
    (reply,) = set(store_paths(desks_drop)) - before
    assert decrypts(desk_keys[RUSSIAN].home, reply)
    assert not decrypts(desk_keys[PERSIAN].home, reply)
    with pytest.raises(UnknownDeskError):
        sources.add_reply(desks_drop, designation, "Who is this?")
