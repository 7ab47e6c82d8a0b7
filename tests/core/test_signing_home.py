"""The server's signing key lives apart from the GnuPG home the source UI uses.

The attack: code running in the source UI (the part of the server that faces the
public) reads the secret signing key from its own GnuPG home and signs export bundles
that the workstation trusts. After the split the source UI's home holds no secret key,
and the source UI works without the signing home at all.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

from securedrop_wm.bundles.archive import verify_export_bundle
from securedrop_wm.bundles.server import export_bundle
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop, open_drop
from securedrop_wm.settings import Settings
from source_ui import create_app as create_source_app
from tests.bundles.helpers import submit
from tests.conftest import csrf_token, new_source, post_multipart
from transfer_api import create_app as create_transfer_app


def secret_keys(home: Path) -> list[str]:
    """Fingerprints of the secret (primary) keys in ``home``, as plain gpg lists them."""
    listed = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--with-colons", "--list-secret-keys"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    primaries: list[str] = []
    after_sec = False
    for line in listed.splitlines():
        if line.startswith("fpr:") and after_sec:
            primaries.append(line.split(":")[9])
        after_sec = line.startswith("sec:")
    return primaries


def test_init_puts_the_signing_key_in_its_own_home(settings: Settings) -> None:
    assert secret_keys(settings.gpg_home) == []
    assert secret_keys(settings.signing_gpg_home) == [settings.signing_fingerprint]


def test_exports_are_signed_from_the_signing_home(
    drop: Drop, workstation_gpg: GnuPG, workdir: Path, tmp_path: Path
) -> None:
    submit(drop)
    bundle = tmp_path / "export.tar"
    export_bundle(drop, bundle)
    server = drop.settings.signing_fingerprint
    with verify_export_bundle(bundle, workstation_gpg, server, workdir) as verified:
        assert len(verified.manifest.items) == 1


def test_a_data_dir_made_before_the_split_has_its_key_moved_at_the_transfer_api_start(
    settings: Settings, workstation_gpg: GnuPG, workdir: Path, tmp_path: Path
) -> None:
    # Given a data dir as the previous version made it: the signing key in gpg_home
    fingerprint = settings.signing_fingerprint
    signer = GnuPG(settings.signing_gpg_home)
    main = GnuPG(settings.gpg_home)
    main.import_keys(signer.export_secret_key(fingerprint))
    signer.close()
    subprocess.run(["gpgconf", "--homedir", str(settings.signing_gpg_home), "--kill", "all"])
    subprocess.run(["rm", "-rf", str(settings.signing_gpg_home)], check=True)
    main.close()
    assert secret_keys(settings.gpg_home) == [fingerprint]
    # When the transfer API starts
    drop = open_drop(settings)
    try:
        create_transfer_app(settings)
        # Then the key has moved: the source UI's home holds no secret key any more ...
        assert secret_keys(settings.gpg_home) == []
        assert secret_keys(settings.signing_gpg_home) == [fingerprint]
        # ... its public half stays, and exports still carry the same, pinned signature
        assert "PUBLIC KEY" in drop.gpg.export_public_key(fingerprint)
        submit(drop)
        export_bundle(drop, tmp_path / "export.tar")
        with verify_export_bundle(tmp_path / "export.tar", workstation_gpg, fingerprint, workdir):
            pass
    finally:
        drop.close()


def test_the_source_ui_works_without_the_signing_home(settings: Settings, tmp_path: Path) -> None:
    # Given a source UI that cannot reach the signing home (as the deployment hides it)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    hidden = dataclasses.replace(settings, signing_gpg_home=blocker / "signing")
    drop = open_drop(hidden)
    try:
        client = create_source_app(hidden, drop).test_client()
        # When a source makes a codename and sends a report
        new_source(client)
        form = client.get("/submit").get_data(as_text=True)
        response = post_multipart(
            client,
            "/submit",
            {
                "csrf_token": csrf_token(form),
                "category": "doxxing",
                "urgency": "routine",
                "what_happened": "My address was posted.",
            },
        )
        # Then it is stored, encrypted, without the signing key anywhere in reach
        assert response.status_code == 302 and response.location.endswith("/thanks")
        assert any(p.is_file() for p in hidden.store_dir.rglob("*"))
        assert not (blocker / "signing").exists()
    finally:
        drop.close()
