"""What the harnesses share: a throwaway drop server (real ``securedrop-wm init``, real
gpg, fast Argon2id), removed once the fuzzer has exited."""

from __future__ import annotations

import os
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

    remove_after_exit(base, [home, base / "data" / "gnupg"])
    return drop, responders


# libFuzzer ends the process without running Python's exit handlers (on a finding, a
# timeout or -max_total_time), so a small watcher outlives it: once this process is
# gone, it stops the gpg-agents of the throwaway homes and removes the folder.
_WATCHER = """
import os, shutil, subprocess, sys, time
pid, base, homes = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
while os.path.exists(f"/proc/{pid}"):
    time.sleep(0.5)
for home in homes:
    subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], check=False)
shutil.rmtree(base, ignore_errors=True)
"""


def remove_after_exit(base: Path, homes: list[Path] | None = None) -> None:
    """Remove ``base`` (after stopping the gpg-agents of ``homes``) once this process,
    ended by libFuzzer without exit handlers, is gone."""
    subprocess.Popen(
        [sys.executable, "-c", _WATCHER, str(os.getpid()), str(base), *map(str, homes or [])],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run(test: object) -> None:
    """Hand ``test`` to libFuzzer with this process's arguments."""
    atheris.Setup(sys.argv, test)
    atheris.Fuzz()


def folder_is_empty(path: Path) -> bool:
    return not any(path.iterdir())
