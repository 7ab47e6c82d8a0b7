"""What the harnesses share: a throwaway drop server (real ``securedrop-wm init``, real
gpg, fast Argon2id), removed when the fuzzer exits."""

from __future__ import annotations

import atexit
import shutil
import subprocess
import sys
from pathlib import Path

import atheris

from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop, open_drop
from securedrop_wm.settings import load_settings
from tests.conftest import Responders, init_data_dir, short_tempdir


def throwaway_drop() -> tuple[Drop, Responders]:
    """A drop server in a temp folder, with responders whose keys exist only here."""
    base = short_tempdir("sdwm-fuzz-")
    home = base / "responders"
    gpg = GnuPG(home)
    fprs = [gpg.create_key(name, None) for name in ("team", "second", "workstation")]
    keys = []
    for name, fpr in zip(("team", "second", "workstation"), fprs, strict=True):
        path = home / f"{name}.asc"
        path.write_text(gpg.export_public_key(fpr))
        keys += [fpr, path]
    responders = Responders(home, *keys)
    init_data_dir(base / "data", responders)
    drop = open_drop(load_settings(base / "data" / "config.toml", environ={}))

    def clean() -> None:
        drop.close()
        gpg.close()
        subprocess.run(["gpgconf", "--homedir", str(base / "data" / "gnupg"), "--kill", "all"])
        shutil.rmtree(base, ignore_errors=True)

    atexit.register(clean)
    return drop, responders


def run(test: object) -> None:
    """Hand ``test`` to libFuzzer with this process's arguments."""
    atheris.Setup(sys.argv, test)
    atheris.Fuzz()


def folder_is_empty(path: Path) -> bool:
    return not any(path.iterdir())
