"""The key commands of an installed drop server (``signing-key``, ``team-key``,
``responder-key``, ``workstation-key``) as an admin runs them: real gpg, real config
files, real reply bundles."""

from __future__ import annotations

import ast
import re
import shlex
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import gnupg
import pytest
from click.testing import CliRunner

from securedrop_wm.bundles import write_reply_bundle
from securedrop_wm.cli import main as cli
from securedrop_wm.crypto import GnuPG
from securedrop_wm.errors import KeyMissingError, SettingsError
from securedrop_wm.keys_admin import edit_config, group_fingerprint
from securedrop_wm.settings import load_settings
from tests.conftest import FAST_KDF, Responders, short_tempdir

ROOT = Path(__file__).resolve().parents[2]


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.output


def keyring(config: Path) -> GnuPG:
    return GnuPG(config.parent / "gnupg")


def in_keyring(config: Path, fingerprint: str) -> bool:
    try:
        keyring(config).key_info(fingerprint)
    except KeyMissingError:
        return False
    return True


@dataclass
class OddKeys:
    """Key files an admin might give by mistake, and a second workstation key."""

    home: Path
    secret: Path
    secret_fingerprint: str
    expired: Path
    sign_only: Path
    two_keys: Path
    not_a_key: Path
    new_workstation: str
    new_workstation_public: Path


def _generate(home: Path, name: str, *, encrypt: bool = True, faked: str | None = None) -> str:
    options = ["--faked-system-time", faked] if faked else None
    gpg = gnupg.GPG(gnupghome=str(home), options=options)
    params = {
        "key_type": "EDDSA",
        "key_curve": "ed25519",
        "key_usage": "sign",
        "name_real": name,
        "name_email": "nobody@securedrop-wm.invalid",
        "no_protection": True,
        "expire_date": "1d" if faked else "0",
    }
    if encrypt:
        params.update(subkey_type="ECDH", subkey_curve="cv25519", subkey_usage="encrypt")
    made = gpg.gen_key(gpg.gen_key_input(**params))
    assert made.fingerprint, made.stderr
    return str(made.fingerprint)


@pytest.fixture(scope="module")
def odd() -> Iterator[OddKeys]:
    home = short_tempdir("sdwm-odd-")
    home.chmod(0o700)
    gpg = GnuPG(home)
    secret = gpg.create_key("A responder who exported too much", None)
    expired = _generate(home, "Expired responder", faked="20190101T000000!")
    sign_only = _generate(home, "Sign-only responder", encrypt=False)
    other = gpg.create_key("Another responder", None)
    workstation = gpg.create_key("A new workstation", None)
    files = {}
    for name, text in (
        ("secret", _export_secret(home, secret)),
        ("expired", gpg.export_public_key(expired)),
        ("sign_only", gpg.export_public_key(sign_only)),
        ("two_keys", gpg.export_public_key(other) + gpg.export_public_key(workstation)),
        ("not_a_key", "Dear admin, here is my key: 0xDEADBEEF\n"),
        ("workstation", gpg.export_public_key(workstation)),
    ):
        files[name] = home / f"{name}.asc"
        files[name].write_text(text)
    yield OddKeys(
        home,
        files["secret"],
        secret,
        files["expired"],
        files["sign_only"],
        files["two_keys"],
        files["not_a_key"],
        workstation,
        files["workstation"],
    )
    gpg.close()
    shutil.rmtree(home, ignore_errors=True)


def _export_secret(home: Path, fingerprint: str) -> str:
    out = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--armor", "--export-secret-keys", fingerprint],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


@pytest.fixture
def bare() -> Iterator[Path]:
    """A server made by ``init`` with no key given: the config path."""
    base = short_tempdir("sdwm-bare-")
    result = CliRunner().invoke(cli, ["init", "--data-dir", str(base / "data"), *FAST_KDF])
    assert result.exit_code == 0, result.output
    yield base / "data" / "config.toml"
    _stop_agent(base / "data")
    shutil.rmtree(base, ignore_errors=True)


def _stop_agent(data_dir: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(data_dir / "gnupg"), "--kill", "gpg-agent"])


# -- init and the server's signing key ----------------------------------------------------


def test_init_without_keys_prints_the_fingerprint_and_commands_that_work(
    tmp_path: Path, responders: Responders
) -> None:
    base = short_tempdir("sdwm-init-")
    try:
        data = base / "data"
        result = CliRunner().invoke(cli, ["init", "--data-dir", str(data), *FAST_KDF])
        assert result.exit_code == 0, result.output
        config = data / "config.toml"
        signing = load_settings(config, environ={}, require_team_key=False).signing_fingerprint
        assert f"Server signing key fingerprint: {group_fingerprint(signing)}" in result.output
        commands = re.findall(r"^  (securedrop-wm .+)$", result.output, re.MULTILINE)
        # The data dir is not ./data: the commands name its config
        prefix = f"securedrop-wm --config {config}"
        assert commands == [
            f"{prefix} signing-key export --output server.asc",
            f"{prefix} team-key set team.asc",
            f"{prefix} workstation-key set workstation.asc",
        ], result.output
        # Nothing else runs yet, and the message says which command to run
        with pytest.raises(SettingsError, match=r"`securedrop-wm team-key set FILE`"):
            load_settings(config, environ={})
        # Each printed command works as printed (with the files it names)
        files = {
            "server.asc": tmp_path / "server.asc",
            "team.asc": responders.team_public,
            "workstation.asc": responders.workstation_public,
        }
        for command in commands:
            args = [str(files.get(a, a)) for a in shlex.split(command)[1:]]
            done = CliRunner().invoke(cli, args)
            assert done.exit_code == 0, (command, done.output)
        settings = load_settings(config, environ={})
        assert settings.team_fingerprint == responders.team_fingerprint
        assert settings.workstation_fingerprint == responders.workstation_fingerprint
        assert (tmp_path / "server.asc").exists()
    finally:
        _stop_agent(base / "data")
        shutil.rmtree(base, ignore_errors=True)


def test_signing_key_export_writes_the_key_and_prints_its_fingerprint(
    bare: Path, tmp_path: Path
) -> None:
    out = tmp_path / "server.asc"
    code, output = run(bare, "signing-key", "export", "--output", str(out))
    assert code == 0, output
    signing = load_settings(bare, environ={}, require_team_key=False).signing_fingerprint
    grouped = group_fingerprint(signing)
    assert re.fullmatch(r"([0-9A-F]{4} ){4}[0-9A-F]{4}  ([0-9A-F]{4} ){4}[0-9A-F]{4}", grouped)
    assert f"Server signing key fingerprint: {grouped}" in output
    assert keyring(bare).inspect_keys(out.read_text())[0][0] == "pub"
    assert keyring(bare).inspect_keys(out.read_text())[0][1].fingerprint == signing
    # Never overwrites a file
    out.write_text("something else")
    code, output = run(bare, "signing-key", "export", "--output", str(out))
    assert code == 1 and "exists already; refusing to overwrite it" in output
    assert out.read_text() == "something else"
    # - is standard output
    code, output = run(bare, "signing-key", "export", "--output", "-")
    assert code == 0 and "-----BEGIN PGP PUBLIC KEY BLOCK-----" in output


def test_init_refuses_a_secret_key_and_an_unfit_one(odd: OddKeys) -> None:
    base = short_tempdir("sdwm-init-")
    try:
        for args, message in (
            (["--responder-key", str(odd.secret)], "SECRET key"),
            (["--responder-key", str(odd.sign_only)], "cannot encrypt"),
            (["--responder-key", str(odd.expired)], "expired on 2019-01-02"),
        ):
            data = base / "data"
            result = CliRunner().invoke(cli, ["init", "--data-dir", str(data), *args])
            assert result.exit_code == 1, result.output
            assert message in result.output and "refused" in result.output
            assert not (data / "config.toml").exists()
            assert not keyring(data / "config.toml").has_secret_key(odd.secret_fingerprint)
    finally:
        _stop_agent(base / "data")
        shutil.rmtree(base, ignore_errors=True)


# -- registering keys ---------------------------------------------------------------------


def test_team_and_workstation_keys_are_registered_once_and_the_rest_of_the_file_kept(
    bare: Path, responders: Responders
) -> None:
    # An admin's comments and settings in the file
    text = bare.read_text()
    assert text.endswith("\n[kdf]\nmemory_kib = 1024\ntime_cost = 1\n")  # FAST_KDF
    text = text.replace(
        "session_minutes = 30\n", "session_minutes = 15  # short: shared computers\n"
    ).replace("[kdf]\n", "[kdf]\n# tuned\n")
    bare.write_text("# Drop of the Example desk\n" + text)
    code, output = run(bare, "team-key", "set", str(responders.team_public))
    assert code == 0, output
    assert f"{group_fingerprint(responders.team_fingerprint)} is the team key now" in output
    assert "restart it" in output
    code, output = run(bare, "workstation-key", "set", str(responders.workstation_public))
    assert code == 0, output
    assert "Reply bundles signed by any other key are refused from now on" in output
    after = bare.read_text()
    # The same again: nothing changes, and it says so
    for args in (
        ("team-key", "set", str(responders.team_public)),
        ("workstation-key", "set", str(responders.workstation_public)),
        ("responder-key", "add", str(responders.team_public)),
    ):
        code, output = run(bare, *args)
        assert code == 0 and "nothing changed" in output, output
        assert bare.read_text() == after
    # Only the key lines changed; comments, settings and tables stay
    assert after.startswith("# Drop of the Example desk\n# securedrop-wm drop server settings")
    assert "session_minutes = 15  # short: shared computers\n" in after
    assert after.endswith("\n[kdf]\n# tuned\nmemory_kib = 1024\ntime_cost = 1\n")
    assert f'team_fingerprint = "{responders.team_fingerprint}"' in after
    assert f'workstation_fingerprint = "{responders.workstation_fingerprint}"' in after
    assert stat.S_IMODE(bare.stat().st_mode) == 0o600
    assert not list(bare.parent.glob(".config.toml*"))  # no temp file left behind
    settings = load_settings(bare, environ={})
    assert settings.responder_fingerprints == (responders.team_fingerprint,)
    assert settings.session_minutes == 15 and settings.kdf.time_cost == 1
    code, output = run(bare, "workstation-key", "show")
    assert output.strip() == group_fingerprint(responders.workstation_fingerprint)
    code, output = run(bare, "responder-key", "list")
    assert output.splitlines()[0].startswith(
        f"team\t{group_fingerprint(responders.team_fingerprint)}\t"
    )
    assert output.splitlines()[1].startswith("workstation\t")


def test_a_secret_key_is_refused_and_never_imported(bare: Path, odd: OddKeys) -> None:
    before = bare.read_text()
    for command in (("team-key", "set"), ("responder-key", "add"), ("workstation-key", "set")):
        code, output = run(bare, *command, str(odd.secret))
        assert code == 1, output
        assert f"{odd.secret}: refused, nothing changed" in output
        assert "SECRET key" in output and "gpg --armor --export" in output
        assert bare.read_text() == before
        assert not in_keyring(bare, odd.secret_fingerprint)
        assert not keyring(bare).has_secret_key(odd.secret_fingerprint)


def test_unfit_keys_are_refused_with_the_reason(
    bare: Path, odd: OddKeys, responders: Responders, tmp_path: Path
) -> None:
    server_key = tmp_path / "server.asc"
    assert run(bare, "signing-key", "export", "-o", str(server_key))[0] == 0
    before = bare.read_text()
    for command, key, reason in (
        ("team-key", odd.not_a_key, "no OpenPGP key found"),
        ("team-key", odd.two_keys, "holds 2 keys: give one key per file"),
        ("team-key", odd.expired, "expired on 2019-01-02"),
        ("responder-key", odd.expired, "expired on 2019-01-02"),
        ("team-key", odd.sign_only, "cannot encrypt"),
        ("responder-key", odd.sign_only, "cannot encrypt"),
        ("workstation-key", odd.expired, "expired on 2019-01-02"),
        ("workstation-key", server_key, "one of this server's own keys"),
        ("team-key", server_key, "one of this server's own keys"),
    ):
        verb = "add" if command == "responder-key" else "set"
        code, output = run(bare, command, verb, str(key))
        assert code == 1, (command, key, output)
        assert reason in output and "nothing changed" in output, (command, key, output)
        assert bare.read_text() == before
    # The workstation key cannot be a responder key, nor the other way round
    assert run(bare, "workstation-key", "set", str(responders.workstation_public))[0] == 0
    code, output = run(bare, "team-key", "set", str(responders.workstation_public))
    assert code == 1 and "is the workstation's signing key" in output
    assert run(bare, "team-key", "set", str(responders.team_public))[0] == 0
    code, output = run(bare, "workstation-key", "set", str(responders.team_public))
    assert code == 1 and "is a responder key on this server" in output


def test_responder_keys_are_added_listed_and_removed(
    data_dir: Path, responders: Responders
) -> None:
    config = data_dir / "config.toml"
    team, second = responders.team_fingerprint, responders.second_fingerprint
    code, output = run(config, "responder-key", "list")
    assert [line.split("\t")[:2] for line in output.splitlines()] == [
        ["team", group_fingerprint(team)],
        ["responder", group_fingerprint(second)],
        ["workstation", group_fingerprint(responders.workstation_fingerprint)],
    ]
    # Removed by fingerprint as gpg shows it (spaces and all); the keyring forgets it
    code, output = run(config, "responder-key", "remove", group_fingerprint(second))
    assert code == 0 and f"Removed the responder key {group_fingerprint(second)}" in output
    assert load_settings(config, environ={}).responder_fingerprints == (team,)
    assert not in_keyring(config, second)
    code, output = run(config, "responder-key", "remove", second.lower())
    assert code == 0 and "is registered; nothing changed" in output
    # Added back, once
    code, output = run(config, "responder-key", "add", str(responders.second_public))
    assert code == 0 and "Added the responder key" in output
    code, output = run(config, "responder-key", "add", str(responders.second_public))
    assert code == 0 and "registered already; nothing changed" in output
    assert load_settings(config, environ={}).responder_fingerprints == (team, second)
    # The team key cannot be removed: the message names the command that replaces it
    code, output = run(config, "responder-key", "remove", team)
    assert code == 1 and "`securedrop-wm team-key set FILE`" in output
    assert load_settings(config, environ={}).responder_fingerprints == (team, second)
    code, output = run(config, "responder-key", "remove", "not a fingerprint")
    assert code == 1 and "is not a fingerprint" in output


def test_the_team_key_is_replaced(data_dir: Path, responders: Responders, odd: OddKeys) -> None:
    config = data_dir / "config.toml"
    new_team = odd.home / "new-team.asc"
    new_fpr = GnuPG(odd.home).create_key("The new team key", None)
    new_team.write_text(GnuPG(odd.home).export_public_key(new_fpr))
    code, output = run(config, "team-key", "set", str(new_team))
    assert code == 0, output
    assert f"(it replaces {group_fingerprint(responders.team_fingerprint)})" in output
    settings = load_settings(config, environ={})
    assert settings.team_fingerprint == new_fpr
    assert settings.responder_fingerprints == (new_fpr, responders.second_fingerprint)
    assert not in_keyring(config, responders.team_fingerprint)
    # A responder key promoted to team key is listed once
    code, output = run(config, "team-key", "set", str(responders.second_public))
    assert code == 0, output
    assert load_settings(config, environ={}).responder_fingerprints == (
        responders.second_fingerprint,
    )


# -- the workstation key, and reply bundles ----------------------------------------------


def _reply_bundle(home: Path, signer: str, server: str, out: Path, sequence: int = 1) -> Path:
    write_reply_bundle(GnuPG(home), signer, server, sequence, [], [], out)
    return out


def test_after_the_workstation_key_is_replaced_bundles_of_the_old_one_are_refused(
    data_dir: Path, responders: Responders, odd: OddKeys, tmp_path: Path
) -> None:
    config = data_dir / "config.toml"
    server = load_settings(config, environ={}).signing_fingerprint
    old = responders.workstation_fingerprint
    by_old = _reply_bundle(responders.home, old, server, tmp_path / "old-1.tar")
    code, output = run(config, "import-replies", str(by_old))
    assert code == 0 and "reply bundle 1: 0 reply(ies) stored" in output, output
    # When the admin pins the new workstation's key
    code, output = run(config, "workstation-key", "set", str(odd.new_workstation_public))
    assert code == 0, output
    assert f"(it replaces {group_fingerprint(old)})" in output
    assert not in_keyring(config, old)
    # Then a bundle signed by the old key is refused, and one by the new key accepted
    by_old = _reply_bundle(responders.home, old, server, tmp_path / "old-2.tar", sequence=2)
    code, output = run(config, "import-replies", str(by_old))
    assert code == 1, output
    assert "refused, nothing imported: signed by an unknown key" in output
    assert f"not by the pinned workstation key {odd.new_workstation}" in output
    by_new = _reply_bundle(odd.home, odd.new_workstation, server, tmp_path / "new-1.tar")
    code, output = run(config, "import-replies", str(by_new))
    assert code == 0 and "reply bundle 1: 0 reply(ies) stored" in output, output


def test_the_hint_of_import_replies_without_a_workstation_key_is_a_command_that_works(
    bare: Path, responders: Responders, tmp_path: Path
) -> None:
    assert run(bare, "team-key", "set", str(responders.team_public))[0] == 0
    server = load_settings(bare, environ={}).signing_fingerprint
    bundle = _reply_bundle(
        responders.home, responders.workstation_fingerprint, server, tmp_path / "r.tar"
    )
    code, output = run(bare, "import-replies", str(bundle))
    assert code == 1 and "no workstation key is registered" in output
    hint = re.search(r"`securedrop-wm ([^`]+)`", output)
    assert hint, output
    args = hint.group(1).replace("FILE", str(responders.workstation_public)).split()
    code, done = run(bare, *args)
    assert code == 0, done
    code, output = run(bare, "import-replies", str(bundle))
    assert code == 0 and "reply bundle 1" in output, output


# -- every hint names a command that exists ----------------------------------------------

# In messages, one backquote; docstrings (two backquotes) describe, they do not advise.
HINT = re.compile(r"(?<!`)`securedrop-wm ([^`]+)`(?!`)")
HINT_FOLDERS = ("securedrop_wm", "source_ui", "journalist_ui", "transfer_api")


def _resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    """The command a hint's words name, and the options given to it."""
    command: click.Command = cli
    options: list[str] = []
    ctx = click.Context(cli)
    for word in words:
        if word.startswith("--"):
            options.append(word.split("=")[0])
            continue
        if isinstance(command, click.Group):
            sub = command.get_command(ctx, word)
            if sub is not None:
                command = sub
                continue
        if not options or not options[-1].startswith("--config"):
            break
    return command, options


def _strings(path: Path) -> list[str]:
    """The text a file can show a person: a template, or a module's string literals
    (implicit concatenation joined; in f-strings each placeholder stands as VALUE)."""
    if path.suffix == ".html":
        return [path.read_text()]
    strings = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            strings.append(
                "".join(v.value if isinstance(v, ast.Constant) else "VALUE" for v in node.values)
            )
    return strings


def test_every_hint_in_the_code_names_a_command_that_exists() -> None:
    hints = set()
    for folder in HINT_FOLDERS:
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".html") and "translations" not in path.parts:
                for text in _strings(path):
                    hints.update(HINT.findall(text))
    assert "workstation-key set FILE" in hints and "team-key set FILE" in hints
    for hint in sorted(hints):
        command, options = _resolve(hint.split())
        assert command is not cli and not isinstance(command, click.Group), hint
        known = {o for p in command.params for o in getattr(p, "opts", [])} | {"--config"}
        assert set(options) <= known, hint


def test_edit_config_refuses_what_it_cannot_edit_safely() -> None:
    text = 'team_fingerprint = ""\n"workstation_fingerprint" = ""\n'
    with pytest.raises(SettingsError, match="by hand"):
        edit_config(text, {"workstation_fingerprint": "A" * 40})
    # A setting spread over lines is replaced whole, with its trailing comment
    text = 'responder_fingerprints = [\n  "' + "B" * 40 + '",\n]  # all of us\nx = 1\n'
    edited = edit_config(text, {"responder_fingerprints": ["C" * 40]})
    assert edited == f'responder_fingerprints = ["{"C" * 40}"]  # all of us\nx = 1\n'
