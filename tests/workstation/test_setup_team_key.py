"""Setup never leaves a workstation with a team key the drop does not encrypt to: given
the drop's team key fingerprint, it takes only that key (and creates none); given none,
it needs the admin to say the drop has no team key yet. Real gpg, a real ``init``."""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from journalist_ui import create_app
from securedrop_wm.drop import Drop
from securedrop_wm.workstation import accounts, keys
from securedrop_wm.workstation.cli import workstation as ws_cli
from securedrop_wm.workstation.errors import SetupError
from securedrop_wm.workstation.services import Workstation, open_workstation
from securedrop_wm.workstation.settings import load_workstation_settings
from tests.conftest import Responders, csrf_token, short_tempdir
from tests.workstation.fixtures import ADMIN, ADMIN_PASSWORD, export_secret_key


@dataclass
class Fresh:
    """An initialised workstation before setup, and the keys an admin would bring."""

    ws: Workstation
    token: str
    team_secret: str
    other_secret: str
    server_key: str
    server_fingerprint: str


@pytest.fixture
def fresh(responders: Responders, drop: Drop) -> Iterator[Fresh]:
    base = short_tempdir("sdwm-wss-")
    result = CliRunner().invoke(ws_cli, ["init", "--data-dir", str(base / "ws")])
    assert result.exit_code == 0, result.output
    token = re.search(r"setup token: (\S+)", result.output)
    assert token
    ws = open_workstation(load_workstation_settings(base / "ws" / "config.toml", environ={}))
    server = drop.settings.signing_fingerprint
    yield Fresh(
        ws,
        token.group(1),
        export_secret_key(responders, responders.team_fingerprint),
        export_secret_key(responders, responders.workstation_fingerprint),
        drop.gpg.export_public_key(server),
        server,
    )
    ws.close()
    shutil.rmtree(base, ignore_errors=True)


def _setup(fresh: Fresh, team: str | None, **kw: object) -> keys.SetupResult:
    return keys.first_run(
        fresh.ws,
        token=fresh.token,
        expected_token=fresh.token,
        team=keys.KeyChoice(team),
        signing=keys.KeyChoice(fresh.other_secret),
        server_public_key=fresh.server_key,
        server_fingerprint=fresh.server_fingerprint,
        admin_username=ADMIN,
        admin_password=ADMIN_PASSWORD,
        **kw,  # type: ignore[arg-type]
    )


def test_setup_refuses_a_team_key_the_drop_does_not_encrypt_to(
    fresh: Fresh, responders: Responders
) -> None:
    expected = responders.team_fingerprint
    grouped = " ".join(expected[i : i + 4] for i in range(0, 40, 4))
    # Neither the drop's team key nor "a new drop": refused, nothing made
    with pytest.raises(SetupError, match="say which team key the drop server encrypts to"):
        _setup(fresh, None, new_drop=False)
    # The drop's key given, no key file: refused, no new key created
    with pytest.raises(SetupError, match=f"encrypts to the team key {expected}: import"):
        _setup(fresh, None, drop_team_fingerprint=grouped, new_drop=False)
    # Another key imported: refused, naming both
    with pytest.raises(
        SetupError, match=f"is not the one the drop server encrypts to \\({expected}\\)"
    ):
        _setup(fresh, fresh.other_secret, drop_team_fingerprint=expected)
    with pytest.raises(SetupError, match="40 hex digits"):
        _setup(fresh, fresh.team_secret, drop_team_fingerprint="not a fingerprint")
    assert not accounts.has_accounts(fresh.ws) and fresh.ws.settings.team_fingerprint is None
    # The right key: set up, as the team key
    done = _setup(fresh, fresh.team_secret, drop_team_fingerprint=grouped.lower(), new_drop=False)
    assert done.settings.team_fingerprint == expected


def test_a_new_drop_gets_a_new_team_key_only_when_the_admin_says_so(fresh: Fresh) -> None:
    done = _setup(fresh, None, drop_team_fingerprint="", new_drop=True)
    assert done.settings.team_fingerprint and fresh.ws.gpg.has_secret_key(
        done.settings.team_fingerprint
    )


def test_the_setup_page_asks_which_team_key_and_shows_a_qr_code(fresh: Fresh) -> None:
    client = create_app(fresh.ws.settings, fresh.ws).test_client()
    page = client.get("/setup").text
    assert 'name="drop_team_fingerprint"' in page and 'name="new_drop"' in page

    def post(**data: object) -> str:
        form: dict[str, object] = {
            "csrf_token": csrf_token(page),
            "token": fresh.token,
            "server_key": (io.BytesIO(fresh.server_key.encode()), "server.asc"),
            "server_fingerprint": fresh.server_fingerprint,
            "username": ADMIN,
            "password": ADMIN_PASSWORD,
            **data,
        }
        return client.post("/setup", data=form, content_type="multipart/form-data").text

    # Leaving the team key empty without saying the drop is new is refused, in words
    refused = post()
    assert "Say which team key the drop server encrypts to" in refused
    assert not accounts.has_accounts(fresh.ws)
    # A new drop: set up, with a clear warning to register the new team key
    done = post(new_drop="1")
    assert 'id="register-team-key"' in done and '<figure id="totp-qr"><svg' in done
    assert "<script" not in done
