"""The desks' part of the play without a container: config.toml and the desks' tokens.

Ansible's own template engine renders the role's config.toml.j2 (with the roles'
filters) on this machine, for the example inventory and for two response desks; the
app's settings loader then reads each file, as the drop's apps and ``check-config`` do.
The role's tokens.yml runs on this machine against a drop made here with the app's own
``init`` (real gpg keys, a real database), the app's command line standing in for the
server's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from securedrop_wm.errors import SettingsError
from securedrop_wm.settings import load_settings
from tests.conftest import short_tempdir
from tests.deploy.deploy_harness import ANSIBLE_DIR, run

TEMPLATE = ANSIBLE_DIR / "roles/sdwm_app/templates/config.toml.j2"
FILTERS = ANSIBLE_DIR / "roles/sdwm_common/filter_plugins"
EXAMPLE = ANSIBLE_DIR / "inventory/example/hosts.yml"
KEYS_DIR = "/etc/securedrop-wm/keys"
SIGNING = "5" * 40
TEAM, ALICE, WORKSTATION = "A" * 40, "B" * 40, "C" * 40
FA_TEAM, FA_WORKSTATION = "D" * 40, "E" * 40

# What the template rendered for the example inventory before desks existed: an
# existing drop must see no change at all (no restart, nothing to do).
EXAMPLE_CONFIG = f"""\
# Ansible managed
# securedrop-wm drop server settings (docs/configuration.md). Rendered by Ansible
# from sdwm_app_settings; the signing key fingerprint is the one init created.
team_fingerprint = "{TEAM}"
responder_fingerprints = ["{TEAM}"]
signing_fingerprint = "{SIGNING}"
workstation_fingerprint = "{WORKSTATION}"
max_report_bytes = 524288000
session_minutes = 30
alerts_configured = false
usual_response_hours = 48
"""

# The operator's texts: other scripts, quotes, a backslash, a line break, and a letter
# beyond the BMP (which to_json would write as a surrogate pair that TOML refuses).
WMF_NAME = 'Wikimedia Foundation "Trust & Safety" \\ team\nsecond line 𝒲'
FA_NAME = "میز فارسی"

DESKS = [
    {
        "id": "wmf",
        "central": True,
        "name": {"en": WMF_NAME, "fr": "Fondation Wikimedia"},
        "description": {"en": "The Foundation's human-rights team."},
        "serves": {"en": "Everyone, anywhere"},
        "languages": ["en", "fr"],
        "team_key_file": "/admin/keys/wmf-team.asc",
        "responder_key_files": ["/admin/keys/wmf-alice.asc"],
        "workstation_key_file": "/admin/keys/wmf-workstation.asc",
    },
    {
        "id": "fa",
        "name": {"en": "Persian desk", "fa": FA_NAME, "pt-BR": "Mesa persa"},
        "languages": ["fa"],
        "team_key_file": "/admin/keys/fa-team.asc",
        "workstation_key_file": "/admin/keys/fa-workstation.asc",
    },
]
FINGERPRINTS = {
    "/admin/keys/team.asc": TEAM,
    "/admin/keys/workstation.asc": WORKSTATION,
    "/admin/keys/wmf-team.asc": TEAM,
    "/admin/keys/wmf-alice.asc": ALICE,
    "/admin/keys/wmf-workstation.asc": WORKSTATION,
    "/admin/keys/fa-team.asc": FA_TEAM,
    "/admin/keys/fa-workstation.asc": FA_WORKSTATION,
}

# The key files as keys.yml lists them, and one fingerprint per file as data.yml reads
# them with gpg (here from FINGERPRINTS; the example's key paths are rooted at /admin).
PLAY_VARS = {
    "sdwm_common_desks": [],  # the role default
    "sdwm_app_key_files": "{{ sdwm_common_desks | sdwm_desk_key_files(sdwm_app_responder_keys,"
    f" sdwm_app_workstation_key, '{KEYS_DIR}') }}}}",
    "sdwm_app_key_fingerprints": "{{ sdwm_app_key_files | map(attribute='src')"
    " | map('extract', test_fingerprints) | list }}",
    "sdwm_app_signing_fingerprint": SIGNING,
}


def render(tmp_path: Path, cases: Mapping[str, Mapping[str, object]]) -> dict[str, Path]:
    """Render the template once per case (task vars over the example inventory's)."""
    out = {name: tmp_path / f"{name}.toml" for name in cases}
    tasks = [
        {
            "name": f"Render {name}",
            "ansible.builtin.template": {"src": str(TEMPLATE), "dest": str(out[name])},
            "vars": dict(extra),
        }
        for name, extra in cases.items()
    ]
    proc = play(tmp_path, tasks)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out


def play(
    tmp_path: Path, tasks: list[dict[str, object]], **extra: object
) -> subprocess.CompletedProcess[str]:
    """Run ``tasks`` with ansible-playbook on this machine, for the example inventory."""
    local_play = {
        "name": "Run the roles' templates and checks on this machine",
        "hosts": "drop",
        "connection": "local",
        "gather_facts": False,
        "vars": PLAY_VARS,
        "tasks": tasks,
    }
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([local_play]))  # JSON is YAML
    extra_vars = tmp_path / "vars.json"
    extra_vars.write_text(
        json.dumps(
            {
                "inventory_dir": "/admin",
                "test_fingerprints": FINGERPRINTS,
                "ansible_python_interpreter": sys.executable,
                **extra,
            }
        )
    )
    playbook_bin = Path(sys.executable).with_name("ansible-playbook")
    return run(
        [playbook_bin, "-i", EXAMPLE, "-e", f"@{extra_vars}", playbook],
        env={
            **os.environ,
            "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
            "ANSIBLE_FILTER_PLUGINS": str(FILTERS),
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
            "ANSIBLE_NOCOLOR": "1",
        },
        timeout=300,
        check=False,
    )


def secrets(tmp_path: Path) -> Path:
    path = tmp_path / "secrets.toml"
    path.write_text(
        "".join(
            f'{name} = "{"ab" * 32}"\n'
            for name in ("kdf_salt", "lookup_pepper", "key_pepper", "session_key")
        )
    )
    return path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp_path = tmp_path_factory.mktemp("config-template")
    desks = {"sdwm_common_desks": DESKS, "sdwm_app_responder_keys": []}
    with_url = [{**DESKS[0], "name": {"en": "Report at https://example.org/report"}}]
    return render(
        tmp_path,
        {
            "example": {},
            "desks": {**desks, "sdwm_app_workstation_key": ""},
            "url": {**desks, "sdwm_common_desks": with_url, "sdwm_app_workstation_key": ""},
        },
    )


def test_the_example_inventory_renders_todays_config(rendered: dict[str, Path]) -> None:
    assert rendered["example"].read_text() == EXAMPLE_CONFIG
    settings = load_settings(rendered["example"], secrets_path=secrets(rendered["example"].parent))
    # and an existing drop is one desk, the built-in one, with no action
    (desk,) = settings.desks
    assert (desk.id, desk.is_builtin, desk.central) == ("default", True, True)
    assert (desk.team_fingerprint, desk.workstation_fingerprint) == (TEAM, WORKSTATION)


def test_two_desks_are_rendered_with_their_own_keys(rendered: dict[str, Path]) -> None:
    settings = load_settings(rendered["desks"], secrets_path=secrets(rendered["desks"].parent))
    wmf, fa = settings.desks
    assert (wmf.id, wmf.central, fa.id, fa.central) == ("wmf", True, "fa", False)
    assert wmf.responder_fingerprints == (TEAM, ALICE)
    assert wmf.team_fingerprint == TEAM
    assert wmf.workstation_fingerprint == WORKSTATION
    assert fa.responder_fingerprints == (FA_TEAM,)
    assert fa.workstation_fingerprint == FA_WORKSTATION
    # The operator's texts arrive exactly as written, in every script.
    assert wmf.names == {"en": WMF_NAME, "fr": "Fondation Wikimedia"}
    assert wmf.text("serves", "fr") == "Everyone, anywhere"
    assert wmf.descriptions["en"] == "The Foundation's human-rights team."
    assert fa.names["fa"] == FA_NAME
    assert fa.text("name", "pt_BR") == "Mesa persa"
    assert (wmf.languages, fa.languages) == (("en", "fr"), ("fa",))
    # No single-team keys beside the desks' (the app refuses both at once).
    top_level = rendered["desks"].read_text().split("[[desks]]")[0]
    assert "team_fingerprint" not in top_level and "workstation_fingerprint" not in top_level


def test_a_link_in_a_desk_name_is_refused_by_the_check_the_play_runs(
    rendered: dict[str, Path],
) -> None:
    # The play validates the rendered file with `securedrop-wm check-config`, which
    # loads it as below; the refusal names the desk and the setting.
    with pytest.raises(SettingsError, match=r"name\.en' of desk 'wmf'.*no markup, link"):
        load_settings(rendered["url"], secrets_path=secrets(rendered["url"].parent))
    check = run(
        [
            Path(sys.executable).with_name("securedrop-wm"),
            "--config",
            rendered["url"],
            "check-config",
            "--secrets",
            secrets(rendered["url"].parent),
        ],
        check=False,
    )
    assert check.returncode != 0
    assert "desk 'wmf'" in check.stderr and "link" in check.stderr, check.stderr


def test_the_play_refuses_a_desk_it_cannot_name_files_after(tmp_path: Path) -> None:
    # A desk's id becomes file names on the server and on the admin's machine: the
    # roles check the list before any of them is made (roles/sdwm_common/tasks/desks.yml).
    bad = [
        {**DESKS[0], "id": "../etc"},
        {**DESKS[1], "team_key_file": ""},
        DESKS[1],
    ]
    check = {
        "name": "Check the desks as sdwm_tor and sdwm_app do",
        "ansible.builtin.include_role": {"name": "sdwm_common", "tasks_from": "desks.yml"},
        "vars": {"sdwm_common_desks": bad},
    }
    proc = play(tmp_path, [check])
    assert proc.returncode != 0
    assert "sdwm_common_desks[0]: id must be 1 to 32 lower-case letters" in proc.stdout
    assert "desk 'fa': team_key_file must name the team's public key file" in proc.stdout
    assert "sdwm_common_desks[2]: the id 'fa' is used twice" in proc.stdout


def test_a_transfer_onion_without_clients_stops_the_run(tmp_path: Path) -> None:
    # tor serves an onion with no authorized_clients to anyone: an empty client list and
    # no desk (whose own clients would be listed) must stop the play, not open the API.
    def check(
        clients: list[str], desks: list[dict[str, object]]
    ) -> subprocess.CompletedProcess[str]:
        task = {
            "name": "Check the transfer clients as sdwm_tor does",
            "ansible.builtin.include_role": {"name": "sdwm_tor", "tasks_from": "check_clients.yml"},
            "vars": {"sdwm_tor_transfer_clients": clients, "sdwm_common_desks": desks},
        }
        return play(tmp_path, [task])

    refused = check([], [])
    assert refused.returncode != 0
    assert "tor would serve the transfer API's onion to anyone" in refused.stdout
    assert check([], [DESKS[0]]).returncode == 0
    assert check(["transfer"], []).returncode == 0


def gpg_key(home: Path, email: str) -> tuple[Path, str]:
    """A real public key in an armored file, and its fingerprint."""
    env = {**os.environ, "GNUPGHOME": str(home)}
    gpg = ["gpg", "--batch", "--passphrase", ""]
    run([*gpg, "--quick-gen-key", f"Test <{email}>", "futuredefault", "default", "never"], env=env)
    path = home.parent / f"{email}.asc"
    path.write_text(run([*gpg, "--armor", "--export", email], env=env).stdout)
    listing = run([*gpg, "--with-colons", "--show-keys", str(path)], env=env).stdout
    return path, listing.split("\nfpr:")[1].split(":")[8]


@pytest.fixture
def two_desk_drop() -> Iterator[Path]:
    """A drop made with ``securedrop-wm init`` whose config lists two desks."""
    folder = short_tempdir("sdwm-desks-")
    home = folder / "gnupg"
    home.mkdir(mode=0o700)
    try:
        (wmf_key, wmf), (fa_key, fa) = (
            gpg_key(home, "wmf@example.org"),
            gpg_key(home, "fa@example.org"),
        )
        data = folder / "data"
        cli = Path(sys.executable).with_name("securedrop-wm")
        run(
            [
                cli,
                "init",
                "--data-dir",
                data,
                f"--responder-key={wmf_key}",
                f"--responder-key={fa_key}",
            ]
        )
        config = data / "config.toml"
        top_level = re.compile(r"^(team|responder|workstation)_fingerprints? = .*\n", re.M)
        config.write_text(
            top_level.sub("", config.read_text())
            + f'\n[[desks]]\nid = "wmf"\ncentral = true\nteam_fingerprint = "{wmf}"\n'
            '[desks.name]\nen = "WMF"\n'
            f'\n[[desks]]\nid = "fa"\nteam_fingerprint = "{fa}"\n'
            '[desks.name]\nen = "Persian desk"\n'
        )
        yield config
    finally:
        for gnupg in (home, folder / "data/gnupg", folder / "data/signing"):
            run(
                ["gpgconf", "--kill", "all"],
                env={**os.environ, "GNUPGHOME": str(gnupg)},
                check=False,
            )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_each_desk_gets_a_token_once_and_rotates_alone(two_desk_drop: Path, tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("securedrop-wm")
    admin = tmp_path / "admin"
    tokens_yml = {
        "name": "Make the desks' tokens as site.yml does",
        "ansible.builtin.include_role": {"name": "sdwm_app", "tasks_from": "tokens.yml"},
    }
    both = [{"id": "wmf", "team_key_file": "-"}, {"id": "fa", "team_key_file": "-"}]
    setting = {
        # The app's command line on this machine, in place of the server's.
        "sdwm_app_cli": [str(cli), "--config", str(two_desk_drop)],
        "sdwm_common_admin_dir": str(admin),
        "sdwm_common_data_dir": str(two_desk_drop.parent),
        "sdwm_common_desks": both,
    }

    def tokens(**extra: object) -> dict[str, str]:
        proc = play(tmp_path, [tokens_yml], **{**setting, **extra})
        assert proc.returncode == 0, proc.stdout[-4000:]
        changed = re.search(r"changed=(\d+)", proc.stdout)
        assert changed
        kept = {p.stem: p.read_text().strip() for p in (admin / "tokens").glob("*.token")}
        kept["changed"] = changed.group(1)
        return kept

    def listed() -> list[str]:
        lines = run([cli, "--config", two_desk_drop, "transfer-token", "list"]).stdout
        return sorted(f"{line.split()[0]} {line.split()[-1]}" for line in lines.splitlines())

    # Given two desks, a run makes one token each, scoped to the desk, kept only here
    first = tokens()
    assert listed() == ["transfer-fa fa", "transfer-wmf wmf"]
    assert first["transfer-fa"] != first["transfer-wmf"]
    assert (admin / "tokens").stat().st_mode & 0o077 == 0
    assert all(p.stat().st_mode & 0o077 == 0 for p in (admin / "tokens").iterdir())
    # and a second run changes nothing
    assert tokens()["changed"] == "0"
    # Rotating one desk's token replaces that one only
    rotated = tokens(sdwm_app_rotate_tokens=["transfer-fa"])
    assert rotated["transfer-fa"] != first["transfer-fa"]
    assert rotated["transfer-wmf"] == first["transfer-wmf"]
    # A desk taken out of the list loses its token, on the server and here
    left = tokens(sdwm_common_desks=both[:1])
    assert "transfer-fa" not in left
    assert listed() == ["transfer-wmf wmf"]
