"""``securedrop-wm export``, ``import-replies``, ``purge`` and ``transfer-token`` as an
admin runs them."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from securedrop_wm.bundles import ReplyFile, verify_export_bundle
from securedrop_wm.cli import main as cli
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop
from securedrop_wm.transfer import FULL, STATUS_ONLY, TokenInfo, check_token
from tests.conftest import Responders

from .helpers import new_id, reply_bundle, server_state, source_uuid, submit


def run(drop: Drop, *args: str) -> tuple[int, str]:
    config = drop.settings.data_dir / "config.toml"
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.output


def test_export_then_import_replies_from_the_command_line(
    drop: Drop,
    workstation_gpg: GnuPG,
    signer_gpg: GnuPG,
    responders: Responders,
    workdir: Path,
    tmp_path: Path,
) -> None:
    sent = submit(drop, {"a.png": b"\x89PNG" + bytes(300)}, urgency="urgent")
    out = tmp_path / "export.tar"
    code, output = run(drop, "export", "--output", str(out))
    assert code == 0, output
    assert "export bundle 1: 2 item(s) of 1 report(s) (1 urgent) from 1 source(s)" in output
    server = drop.settings.signing_fingerprint
    with verify_export_bundle(out, workstation_gpg, server, workdir) as bundle:
        acks = [i.id for i in bundle.manifest.items]
    # Refuses to overwrite a bundle
    code, output = run(drop, "export", "--output", str(out))
    assert code == 1 and "exists already" in output
    reply = tmp_path / "r.gpg"
    signer_gpg.encrypt_bytes(b"hi", [responders.team_fingerprint], reply)
    replies = reply_bundle(
        signer_gpg,
        responders,
        drop,
        tmp_path / "replies.tar",
        replies=[ReplyFile(new_id(), source_uuid(drop, sent.login), reply)],
        acknowledged=acks,
    )
    code, output = run(drop, "import-replies", str(replies))
    assert code == 0, output
    assert "1 reply(ies) stored" in output and "2 submission(s) acknowledged" in output
    assert "2 ciphertext(s) purged" in output
    code, output = run(drop, "import-replies", str(replies))
    assert code == 0 and "already imported; nothing changed" in output
    code, output = run(drop, "purge")
    assert code == 0 and "purged 0" in output


def test_import_replies_says_why_a_bundle_is_refused(
    drop: Drop, signer_gpg: GnuPG, responders: Responders, tmp_path: Path
) -> None:
    good = reply_bundle(signer_gpg, responders, drop, tmp_path / "r.tar")
    bad = tmp_path / "cut.tar"
    bad.write_bytes(good.read_bytes()[:1000])
    before = server_state(drop)
    code, output = run(drop, "import-replies", str(bad))
    assert code == 1
    assert "refused, nothing imported: the bundle file ends early" in output
    assert server_state(drop) == before


def test_transfer_tokens_are_made_listed_rotated_and_revoked(drop: Drop) -> None:
    code, token = run(drop, "transfer-token", "create", "alice-laptop")
    assert code == 0
    token = token.strip()
    assert check_token(drop, token) == TokenInfo("alice-laptop", drop.today(), FULL, "default")
    code, output = run(drop, "transfer-token", "create", "alice-laptop")
    assert code == 1 and "exists already" in output
    code, output = run(drop, "transfer-token", "create", "../bad name")
    assert code == 1 and "letters, digits" in output
    code, listing = run(drop, "transfer-token", "list")
    assert listing == f"alice-laptop\t{drop.today()}\tfull\n" and token not in listing
    code, new = run(drop, "transfer-token", "rotate", "alice-laptop")
    assert code == 0 and check_token(drop, token) is None
    assert check_token(drop, new.strip()) == TokenInfo(
        "alice-laptop", drop.today(), FULL, "default"
    )
    code, output = run(drop, "transfer-token", "revoke", "alice-laptop")
    assert code == 0 and check_token(drop, new.strip()) is None
    code, output = run(drop, "transfer-token", "rotate", "alice-laptop")
    assert code == 1 and "no token is named" in output


def test_a_status_only_token_is_made_listed_and_keeps_its_scope_when_rotated(drop: Drop) -> None:
    # Given a full token and a status-only one for the watcher
    assert run(drop, "transfer-token", "create", "laptop")[0] == 0
    code, token = run(drop, "transfer-token", "create", "watcher", "--status-only")
    assert code == 0
    # Then the list says which is which
    code, listing = run(drop, "transfer-token", "list")
    day = drop.today()
    assert listing == f"laptop\t{day}\tfull\nwatcher\t{day}\tstatus-only\n"
    found = check_token(drop, token.strip())
    assert found == TokenInfo("watcher", day, STATUS_ONLY, "default") and found.status_only
    # And a rotated status-only token stays status-only
    code, new = run(drop, "transfer-token", "rotate", "watcher")
    assert code == 0 and check_token(drop, new.strip()) == TokenInfo(
        "watcher", day, STATUS_ONLY, "default"
    )
