"""Issue 3, end to end: a source reports through source_ui, the server exports, the
workstation imports, a responder logs in with password and TOTP, triages, assigns, notes
and replies, exports the reply bundle, the server imports it, the source reads the reply,
and the acknowledged ciphertext is gone from the server."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner
from flask.testing import FlaskClient

from securedrop_wm.cli import main as cli
from securedrop_wm.drop import Drop
from tests.conftest import csrf_token, new_source, store_files
from tests.workstation.fixtures import Station, import_through_ui, login, report


def test_report_reply_and_acknowledgement_round_trip(
    client: FlaskClient,
    ws_client: FlaskClient,
    station: Station,
    drop: Drop,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    # Given a source who reports through the source UI, with a file
    codename = new_source(client)
    report(client, what_happened="An admin threatens to out me.", files=[(b"evidence", "e.txt")])
    reported = store_files(data_dir)
    assert len(reported) == 2
    # When the server exports (the real command) and the responder imports
    bundle = tmp_path / "export.tar"
    result = CliRunner().invoke(
        cli, ["--config", str(data_dir / "config.toml"), "export", "--output", str(bundle)]
    )
    assert result.exit_code == 0, result.output
    assert login(ws_client, station).status_code == 302
    import_through_ui(ws_client, bundle)
    case_url = re.search(r'href="(/cases/\d+)"', ws_client.get("/").text)
    assert case_url
    page = ws_client.get(case_url.group(1))
    assert "An admin threatens to out me." in page.text
    # and triages, assigns, notes and replies
    token = csrf_token(page.text)
    for path, data in (
        ("/status", {"status": "in_progress"}),
        ("/assign", {"assignee": "1"}),
        ("/note", {"text": "Checked the diff."}),
        ("/reply", {"text": "We are on it. Use a different browser next time."}),
    ):
        assert ws_client.post(case_url.group(1) + path, data={"csrf_token": token, **data})
    outbox = ws_client.get("/outbox")
    ws_client.post("/outbox", data={"csrf_token": csrf_token(outbox.text)})
    reply_bundle = station.ws.settings.outbox_dir / "replies-000001.tar"
    assert reply_bundle.is_file()
    # and the server imports the reply bundle (the real command)
    result = CliRunner().invoke(
        cli, ["--config", str(data_dir / "config.toml"), "import-replies", str(reply_bundle)]
    )
    assert result.exit_code == 0, result.output
    # Then the source, logging in again, reads the reply
    logout = client.get("/replies")
    client.post("/logout", data={"csrf_token": csrf_token(logout.text)})
    login_page = client.get("/login")
    client.post("/login", data={"csrf_token": csrf_token(login_page.text), "codename": codename})
    replies = client.get("/replies")
    assert "We are on it. Use a different browser next time." in replies.text
    # and the acknowledged submissions' ciphertext is gone from the server
    assert not reported & store_files(data_dir)
