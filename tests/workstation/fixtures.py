"""Workstation helpers: a real ``securedrop-wm workstation init`` data dir holding the
team's secret key and the workstation key of the ``responders`` fixture, pinned to the
signing key of the ``drop`` fixture's server, with a first admin; logging in, reporting
and exporting. The fixtures built on them (``station``, ``ws``, ``ws_app``, ``ws_client``)
are in tests/fixtures/workstation.py.

The only stand-in is the clock (:class:`Clock`): retention periods, lockouts and session
expiry are minutes to months long, so tests move time forward instead of waiting.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pyotp
from click.testing import CliRunner
from flask.testing import FlaskClient

from securedrop_wm import bundles
from securedrop_wm.codenames import generate_codename
from securedrop_wm.drop import Drop
from securedrop_wm.sources import (
    ReportFields,
    SourceLogin,
    create_source,
    start_file,
    submit_report,
)
from securedrop_wm.workstation.cli import workstation as ws_cli
from securedrop_wm.workstation.services import Workstation
from tests.conftest import Responders, csrf_token, post_multipart

ADMIN = "admin"
ADMIN_PASSWORD = "correct horse battery staple"


@dataclass
class Clock:
    """Real UTC time plus an offset a test may move forward."""

    offset: dt.timedelta = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += dt.timedelta(**delta)


@dataclass
class Station:
    """A set-up workstation and what a test needs to act on it."""

    ws: Workstation
    path: Path
    clock: Clock
    admin_totp: str

    def code(self, secret: str | None = None, step_offset: int = 0) -> str:
        """The TOTP code of ``secret`` (the admin's by default) at the station's time."""
        totp = pyotp.TOTP(secret or self.admin_totp)
        return totp.generate_otp(totp.timecode(self.clock()) + step_offset)


def export_secret_key(responders: Responders, fingerprint: str) -> str:
    """The armored secret key from the responders' home (as an admin would carry it)."""
    out = subprocess.run(
        ["gpg", "--homedir", str(responders.home), "--batch", "--armor"]
        + ["--export-secret-keys", fingerprint],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def init_workstation(base: Path, responders: Responders, drop: Drop) -> tuple[Path, str]:
    """Run the real ``workstation init`` with every key given; return config and TOTP."""
    keys = base / "keys"
    keys.mkdir()
    (keys / "team.asc").write_text(export_secret_key(responders, responders.team_fingerprint))
    (keys / "ws.asc").write_text(export_secret_key(responders, responders.workstation_fingerprint))
    server_fpr = drop.settings.signing_fingerprint
    (keys / "server.asc").write_text(drop.gpg.export_public_key(server_fpr))
    result = CliRunner().invoke(
        ws_cli,
        ["init", "--data-dir", str(base / "ws"), "--team-key", str(keys / "team.asc")]
        + ["--signing-key", str(keys / "ws.asc"), "--server-key", str(keys / "server.asc")]
        + ["--server-fingerprint", server_fpr, "--admin", ADMIN],
        env={"SDWM_WS_ADMIN_PASSWORD": ADMIN_PASSWORD},
    )
    assert result.exit_code == 0, result.output
    secret = re.search(r"^  ([A-Z2-7]{32})$", result.output, re.MULTILINE)
    assert secret, result.output
    return base / "ws" / "config.toml", secret.group(1)


def login(client: FlaskClient, station: Station, username: str = ADMIN, **kw: str) -> object:
    """Log in through the form; a fresh TOTP step each time (codes are single-use)."""
    station.clock.advance(seconds=30)
    page = client.get("/login")
    data = {
        "csrf_token": csrf_token(page.text),
        "username": username,
        "password": kw.get("password", ADMIN_PASSWORD),
        "code": kw.get("code") or station.code(kw.get("secret")),
    }
    return client.post("/login", data=data)


def import_through_ui(
    client: FlaskClient, bundle: Path, passphrase: str = "", pulled: bytes | None = None
) -> object:
    """Import a bundle through the journalist UI: upload (with the ``.pulled`` file beside
    it when ``pulled`` is given), preview, confirm."""
    page = client.get("/import")
    data: dict[str, object] = {
        "csrf_token": csrf_token(page.text),
        "bundle": (io.BytesIO(bundle.read_bytes()), "b.tar"),
    }
    if pulled is not None:
        data["pulled"] = (io.BytesIO(pulled), "b.tar.pulled")
    preview = client.post("/import", data=data)
    assert preview.status_code == 200, preview.text
    action = re.search(r'action="(/import/[0-9a-f]{32})"', preview.text)
    assert action
    return client.post(
        action.group(1),
        data={"csrf_token": csrf_token(preview.text), "passphrase": passphrase, "import": "1"},
        follow_redirects=True,
    )


def report(source_client: FlaskClient, **fields: object) -> None:
    """Send one report through the source UI's form (the source must be logged in)."""
    page = source_client.get("/submit")
    data: dict[str, object] = {
        "csrf_token": csrf_token(page.text),
        "category": "harassment",
        "urgency": "routine",
        "reply_language": "en",
    }
    data.update(fields)
    response = post_multipart(source_client, "/submit", data)
    assert response.status_code == 302, response.text  # type: ignore[attr-defined]


def source_reports(
    drop: Drop,
    what_happened: str = "They posted my address.",
    files: list[tuple[bytes, str]] | None = None,
    login: SourceLogin | None = None,
    **fields: str,
) -> SourceLogin:
    """A source reports through the core (as source_ui would); returns their login."""
    if login is None:
        login = create_source(drop, generate_codename(drop.settings.codename_words))
    pending = []
    for data, name in files or []:
        f = start_file(drop, name)
        f.writer.write(data)
        pending.append(f)
    values = {"category": "harassment", "urgency": "routine", **fields}
    submit_report(drop, login, ReportFields(what_happened=what_happened, **values), pending)
    return login


def export(drop: Drop, folder: Path, name: str = "export.tar") -> Path:
    """The server's export bundle of everything not yet acknowledged."""
    path = folder / name
    bundles.export_bundle(drop, path)
    return path
