"""A drop with two response desks, deployed for real by site.yml to a booted container.

Given an inventory that lists two desks (sdwm_common_desks), each with its own team,
responder and workstation keys (real OpenPGP keys made here with gpg),
when site.yml is applied twice,
then config.toml names each desk with the fingerprints of its own keys, each desk has
its own transfer client and a token that reaches its own reports only, the second run
changes nothing, a desk's credentials rotate alone, and a link in a desk's name stops
the run with the reason and the server as it was.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.deploy.conftest import Keys
from tests.deploy.deploy_harness import Deployment, HarnessError, run

pytestmark = [pytest.mark.deploy, pytest.mark.slow, pytest.mark.timeout(1500)]

DATA = "/var/lib/securedrop-wm"
TRANSFER_HS = "/var/lib/tor/sdwm-transfer"
UNITS = ("tor@default.service", "securedrop-wm-source.service", "securedrop-wm-transfer.service")
CLIENT = Path(__file__).with_name("source_client.py")
CLIENT_IN_BOX = "/usr/local/share/sdwm-source-client.py"
DESK_CLIENT_IN_BOX = "/usr/local/share/sdwm-desk-client.py"
CLI = f"runuser -u sdwm -- /opt/securedrop-wm/venv/bin/securedrop-wm --config {DATA}/config.toml"
FA_NAME = "میز فارسی"

# Run inside the container by its own Python: a source's report to one desk through the
# source UI's socket, and GET /status through the transfer API's socket with a token
# read from stdin. Usage: ``submit DESK TEXT`` or ``status``.
DESK_CLIENT = f"""\
import importlib.util, re, sys

spec = importlib.util.spec_from_file_location("client", "{CLIENT_IN_BOX}")
client = importlib.util.module_from_spec(spec)
spec.loader.exec_module(client)

if sys.argv[1] == "submit":
    desk, text = sys.argv[2], sys.argv[3]
    browser = client.Browser("/run/securedrop-wm/source.sock")
    status, page = browser.request("GET", "/generate")
    assert status == 200, status
    status, page = browser.request("POST", "/create", {{"csrf_token": client._csrf(page)}})
    assert status == 200, status
    assert 'name="desk" value="' + desk + '"' in page, "no such desk on the report form"
    category = re.search(r'name="category" value="([^"]+)"', page).group(1)
    status, page = browser.request("POST", "/submit", {{
        "csrf_token": client._csrf(page), "desk": desk, "category": category,
        "urgency": "routine", "what_happened": text, "place": "", "project": "",
        "region": "", "wiki": "", "links": "", "reply_language": "en",
    }})
    print(status)
else:
    conn = client.UnixConnection("/run/securedrop-wm/transfer.sock")
    token = sys.stdin.read().strip()
    conn.request("GET", "/status", headers={{"Host": "localhost",
                                              "Authorization": "Bearer " + token}})
    response = conn.getresponse()
    print(response.status)
    print(response.read().decode())
"""


class DeskKeys:
    """Real public keys, each in an armored file, with its fingerprint."""

    def __init__(self, folder: Path, pgp_keys: Keys) -> None:
        self.folder = folder
        self.home = folder / "gnupg"
        self.home.mkdir(mode=0o700)
        self.env = {**os.environ, "GNUPGHOME": str(self.home)}
        # The session's team and workstation keys serve the first desk.
        self.files = {"wmf-team": pgp_keys.team, "wmf-workstation": pgp_keys.workstation}
        for name, algo, usage in (
            ("wmf-ana", "futuredefault", "default"),
            ("fa-team", "futuredefault", "default"),
            ("fa-workstation", "ed25519", "sign"),
        ):
            email = f"{name}@example.org"
            self._gpg("--quick-gen-key", f"Test {name} <{email}>", algo, usage, "never")
            path = folder / f"{name}.asc"
            path.write_text(self._gpg("--armor", "--export", email))
            self.files[name] = path

    def _gpg(self, *args: str) -> str:
        return run(["gpg", "--batch", "--passphrase", "", *args], env=self.env).stdout

    def fingerprint(self, name: str) -> str:
        listing = self._gpg("--with-colons", "--show-keys", str(self.files[name]))
        match = re.search(r"^fpr:+([0-9A-F]{40}):", listing, re.M)
        assert match, listing
        return match.group(1)

    def close(self) -> None:
        run(["gpgconf", "--kill", "all"], env=self.env, check=False)


@pytest.fixture(scope="module")
def desk_keys(deploy_dir: Path, pgp_keys: Keys) -> Iterator[DeskKeys]:
    folder = deploy_dir / "desk-keys"
    folder.mkdir()
    keys = DeskKeys(folder, pgp_keys)
    try:
        yield keys
    finally:
        keys.close()


def desks(keys: DeskKeys, wmf_name: str = "Wikimedia Foundation Trust and Safety") -> list[object]:
    """The inventory's sdwm_common_desks: a central desk and a Persian-language one."""
    return [
        {
            "id": "wmf",
            "central": True,
            "name": {"en": wmf_name, "fr": "Fondation Wikimedia, confiance et sécurité"},
            "serves": {"en": "Everyone, anywhere"},
            "languages": ["en", "fr"],
            "team_key_file": str(keys.files["wmf-team"]),
            "responder_key_files": [str(keys.files["wmf-ana"])],
            "workstation_key_file": str(keys.files["wmf-workstation"]),
        },
        {
            "id": "fa",
            "name": {"en": "Persian desk", "fa": FA_NAME},
            "description": {"en": "Volunteers who read Persian."},
            "languages": ["fa"],
            "team_key_file": str(keys.files["fa-team"]),
            "workstation_key_file": str(keys.files["fa-workstation"]),
        },
    ]


@pytest.fixture(scope="module")
def drop(deployment_factory: Callable[[str, int], Deployment], desk_keys: DeskKeys) -> Deployment:
    """A container with site.yml applied twice for two desks; the recaps are kept on it."""
    # A name and subnet of its own: test_deploy.py's containers use 1 and 2.
    deployment = deployment_factory("sdwm-desks", 3)
    deployment.extra_vars.update(
        {
            "sdwm_app_responder_keys": [],
            "sdwm_app_workstation_key": "",
            "sdwm_tor_transfer_clients": [],
            "sdwm_common_desks": desks(desk_keys),
        }
    )
    deployment.playbook("site.yml")
    deployment.playbook("site.yml")
    for path, text in ((CLIENT_IN_BOX, CLIENT.read_text()), (DESK_CLIENT_IN_BOX, DESK_CLIENT)):
        target = deployment.box.root / path.lstrip("/")
        target.write_text(text)
        target.chmod(0o644)
    return deployment


def sh(deployment: Deployment, script: str) -> str:
    return deployment.box.sh(script).stdout.strip()


def token(deployment: Deployment, desk: str) -> str:
    return (deployment.admin_dir / f"tokens/transfer-{desk}.token").read_text().strip()


def transfer_status(deployment: Deployment, token_text: str) -> tuple[int, dict[str, object]]:
    """GET /status on the transfer API's socket inside the container, with a token."""
    # The token goes in on stdin (Container.exec has none), never on a command line.
    out = run(
        ["nsenter", "-t", str(deployment.box.leader), "-a", "--"]
        + ["python3", DESK_CLIENT_IN_BOX, "status"],
        input_text=token_text,
    ).stdout
    status, _, body = out.partition("\n")
    return int(status), json.loads(body)


def pending(levels: dict[str, object]) -> int:
    return sum(int(level["pending"]) for level in levels["levels"].values())  # type: ignore[index]


def test_second_run_changes_nothing(drop: Deployment) -> None:
    first, second = drop.recaps[:2]
    assert first["failed"] == 0 and first["changed"] > 0
    assert second["changed"] == 0, drop.logs[1].read_text()[-5000:]


def test_config_names_each_desk_with_its_own_keys(drop: Deployment, desk_keys: DeskKeys) -> None:
    config = tomllib.loads((drop.box.root / DATA.lstrip("/") / "config.toml").read_text())
    fpr = desk_keys.fingerprint
    assert "team_fingerprint" not in config and "workstation_fingerprint" not in config
    wmf, fa = config["desks"]
    assert (wmf["id"], wmf["central"], fa["id"], fa["central"]) == ("wmf", True, "fa", False)
    assert wmf["team_fingerprint"] == fpr("wmf-team")
    assert wmf["responder_fingerprints"] == [fpr("wmf-team"), fpr("wmf-ana")]
    assert wmf["workstation_fingerprint"] == fpr("wmf-workstation")
    assert fa["team_fingerprint"] == fpr("fa-team")
    assert fa["responder_fingerprints"] == [fpr("fa-team")]
    assert fa["workstation_fingerprint"] == fpr("fa-workstation")
    assert fa["name"] == {"en": "Persian desk", "fa": FA_NAME}
    # Every desk's key is in the app's keyring, from files named after the desk.
    keyring = sh(drop, f"runuser -u sdwm -- gpg --homedir {DATA}/gnupg --batch --with-colons -k")
    for name in desk_keys.files:
        assert fpr(name) in keyring, name
    assert sh(drop, "ls /etc/securedrop-wm/keys").split() == [
        "desk-fa-team.asc",
        "desk-fa-workstation.asc",
        "desk-wmf-responder-0.asc",
        "desk-wmf-team.asc",
        "desk-wmf-workstation.asc",
    ]
    assert sh(drop, f"{CLI} check-config").endswith("settings are valid")


def test_each_desk_has_its_own_transfer_client(drop: Deployment) -> None:
    assert sh(drop, f"ls {TRANSFER_HS}/authorized_clients").split() == [
        "transfer-fa.auth",
        "transfer-wmf.auth",
    ]
    onion = (drop.admin_dir / "transfer.onion").read_text().strip().removesuffix(".onion")
    for desk in ("wmf", "fa"):
        line = (drop.admin_dir / f"clients/transfer-{desk}.auth_private").read_text()
        assert line.startswith(onion + ":descriptor:x25519:")
    assert sorted(p.name for p in (drop.admin_dir / "clients").glob("*.auth_private")) == [
        "transfer-fa.auth_private",
        "transfer-wmf.auth_private",
    ]


def test_each_desks_token_reaches_its_own_reports_only(drop: Deployment) -> None:
    tokens = drop.admin_dir / "tokens"
    assert tokens.stat().st_mode & 0o077 == 0
    for desk in ("wmf", "fa"):
        assert (tokens / f"transfer-{desk}.token").stat().st_mode & 0o077 == 0
    listed = sh(drop, f"{CLI} transfer-token list").splitlines()
    assert sorted((line.split("\t")[0], line.split("\t")[-1]) for line in listed) == [
        ("transfer-fa", "fa"),
        ("transfer-wmf", "wmf"),
    ]
    assert token(drop, "wmf") != token(drop, "fa")
    # Given a report to the Persian desk only
    submitted = sh(drop, f"python3 {DESK_CLIENT_IN_BOX} submit fa 'A report for the fa desk'")
    assert submitted == "200"
    # Then its token counts it, and the other desk's token does not see it
    fa_status, fa_levels = transfer_status(drop, token(drop, "fa"))
    wmf_status, wmf_levels = transfer_status(drop, token(drop, "wmf"))
    assert (fa_status, wmf_status) == (200, 200)
    assert pending(fa_levels) == 1, fa_levels
    assert pending(wmf_levels) == 0, wmf_levels
    refused, _ = transfer_status(drop, "not-a-token")
    assert refused == 403


def test_a_desks_credentials_rotate_alone(drop: Deployment) -> None:
    before = {desk: token(drop, desk) for desk in ("wmf", "fa")}
    auth = {d: drop.admin_dir / f"clients/transfer-{d}.auth_private" for d in ("wmf", "fa")}
    auth_before = {desk: path.read_text() for desk, path in auth.items()}
    recap = drop.playbook("rotate-transfer-credentials.yml", sdwm_rotate_desks=["fa"])
    assert recap["changed"] > 0
    # The Persian desk's key and token are new, and its old token stops working ...
    assert token(drop, "fa") != before["fa"]
    assert auth["fa"].read_text() != auth_before["fa"]
    assert transfer_status(drop, before["fa"])[0] == 403
    assert transfer_status(drop, token(drop, "fa"))[0] == 200
    # ... and the other desk's are as they were.
    assert token(drop, "wmf") == before["wmf"]
    assert auth["wmf"].read_text() == auth_before["wmf"]
    assert transfer_status(drop, before["wmf"])[0] == 200


def test_a_link_in_a_desks_name_stops_the_run(drop: Deployment, desk_keys: DeskKeys) -> None:
    config = drop.box.root / DATA.lstrip("/") / "config.toml"
    before = config.read_bytes()
    with pytest.raises(HarnessError) as failed:
        drop.playbook(
            "site.yml",
            sdwm_common_desks=desks(desk_keys, wmf_name="Write to us at https://example.org/"),
        )
    message = str(failed.value)
    assert "config.toml was left as it was" in message, message[-3000:]
    assert "desk 'wmf'" in message and "no markup, link" in message, message[-3000:]
    # The server runs on as it was.
    assert config.read_bytes() == before
    for unit in UNITS:
        assert sh(drop, f"systemctl is-active {unit}") == "active", unit
