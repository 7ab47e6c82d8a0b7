"""docs/transfer.md section 5 (``transfer watch``) as written: its systemd unit checked by
``systemd-analyze verify`` and against the drop's own units' sandbox, and its setup block
and settings run and loaded as a person copies them.

The watcher only reaches the drop through tor's SOCKS port and an onion address, so the
part of the walk that needs Tor (the watcher started as the unit starts it, delivering a
digest by mail, webhook and command) is in tests/tor/test_watch_over_tor.py, which uses
the helpers here: the same blocks, with only the addresses substituted
(:func:`watch_settings`).

The blocks are found by where they are (section 5, by fence language), not by
``<!-- docs-test -->`` marks: those are the setup walk's (tests/docs/test_setup_verbatim.py),
which runs every marked block.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from securedrop_wm.transfer_client import load_transfer_settings
from securedrop_wm.transfer_client.channels import (
    CommandChannel,
    MailChannel,
    WebhookChannel,
    build_channels,
)
from tests.conftest import Responders, short_tempdir

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs/transfer.md"
APP_UNIT = ROOT / "ansible/roles/sdwm_app/templates/etc/systemd/system/securedrop-wm-app.service.j2"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
UNIT_NAME = "securedrop-wm-watch.service"
#: The sandbox lines of the drop's units a networked watcher must not copy: it needs a
#: network (PrivateNetwork, AF_UNIX only), reads its settings in a home (ProtectHome),
#: and the AppArmor profile and ReadWritePaths are the app's.
NOT_FOR_THE_WATCHER = {
    "PrivateNetwork",
    "RestrictAddressFamilies",
    "ProtectHome",
    "ReadWritePaths",
    "AppArmorProfile",
}
TRUE = {"yes", "true", "on", "1"}
#: A well-formed v3 onion address (no service behind it: nothing here connects).
ONION = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"


def section(number: int, text: str | None = None) -> str:
    """The text of ``## N.`` in docs/transfer.md, up to the next ``##`` heading."""
    text = DOC.read_text() if text is None else text
    match = re.search(rf"^## {number}\. .*?(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, f"docs/transfer.md has no section {number}"
    return match.group(0)


def blocks(number: int, language: str) -> list[str]:
    """The fenced blocks of section ``number`` in ``language``, in order."""
    return [m.group(2) for m in FENCE.finditer(section(number)) if m.group(1) == language]


def setup_block() -> str:
    """Section 5's setup commands (the one ``sh`` block)."""
    (block,) = blocks(5, "sh")
    return block


def settings_block() -> str:
    """Section 5's settings (the ``toml`` block), as written."""
    (block,) = blocks(5, "toml")
    return block


def unit_block() -> str:
    """Section 5's systemd unit (the ``ini`` block) as written."""
    (block,) = blocks(5, "ini")
    assert f"/etc/systemd/system/{UNIT_NAME}" in section(5)
    return block


def watch_settings(values: Mapping[str, str]) -> str:
    """The ``transfer.toml`` of a watcher: section 2's ``onion`` and ``socks`` lines, then
    section 5's settings, each as written but for the values in ``values`` (TOML text,
    keyed by setting). A commented-out setting given a value is uncommented."""
    (section2,) = blocks(2, "toml")
    head = [line for line in section2.splitlines() if line.startswith(("onion ", "socks "))]
    assert len(head) == 2, section2
    lines, done = [], set()
    for line in [*head, *settings_block().splitlines()]:
        match = re.match(r"^(# )?([a-z_]+) = (.*?)(\s+#.*)?$", line)
        if match and match.group(2) in values:
            key = match.group(2)
            line = f"{key} = {values[key]}"
            done.add(key)
        lines.append(line)
    assert done == set(values), f"not in the docs' settings: {set(values) - done}"
    return "\n".join(lines) + "\n"


def run_setup_block(carried: Path, env: Mapping[str, str]) -> str:
    """Section 5's setup commands, run by bash as written in ``carried`` (the folder
    holding what was carried to the transfer machine: oncall.asc, watch-token,
    smtp-password)."""
    done = subprocess.run(
        ["bash", "-euc", setup_block()],
        cwd=carried,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def unit_directives(text: str) -> dict[str, list[str]]:
    """``{key: [values]}`` of a unit's ``Key=value`` lines (comments skipped)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def _sandbox(text: str) -> dict[str, str]:
    """The app unit's ``# Sandbox`` directives, up to ``[Install]``."""
    start = text.index("\n# Sandbox")
    end = text.index("[Install]", start)
    return {k: v[-1] for k, v in unit_directives(text[start:end]).items()}


def _verify(unit: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` of ``unit`` saved as the docs name it, in ``folder``."""
    path = folder / UNIT_NAME
    path.write_text(unit)
    return subprocess.run(
        ["systemd-analyze", "verify", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )


# -- the unit ---------------------------------------------------------------------------


@pytest.fixture
def fake_binary(tmp_path: Path) -> Path:
    """An executable standing in for ``securedrop-wm`` where verify can find it."""
    binary = tmp_path / "bin" / "securedrop-wm"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    return binary


def test_the_unit_as_written_passes_systemd_analyze_verify(
    fake_binary: Path, tmp_path: Path
) -> None:
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze (Debian's systemd) is needed to check the unit")
    unit = unit_block()
    (exec_start,) = unit_directives(unit)["ExecStart"]
    binary = shlex.split(exec_start)[0]
    assert binary == "/usr/local/bin/securedrop-wm"
    # This machine has no /usr/local/bin/securedrop-wm: only the program's path is
    # changed, to an executable that exists; every other line is verified as written.
    verified = _verify(unit.replace(f"ExecStart={binary} ", f"ExecStart={fake_binary} "), tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout + verified.stderr == "", verified.stderr
    # And verify does catch a mistake in such a unit: it is not silent on anything.
    broken = _verify(unit.replace("ProtectSystem=", "ProtectSytsem="), tmp_path)
    assert "ProtectSytsem" in broken.stderr
    missing = _verify(unit, tmp_path)
    assert missing.returncode != 0 and binary in missing.stderr


def test_the_unit_runs_the_watcher_as_its_user_restarted_and_sandboxed() -> None:
    unit = unit_directives(unit_block())
    one = {k: v[-1] for k, v in unit.items()}
    # Not root: a user of its own, the one section 5's setup is run as.
    assert one.get("User") == "sdwm", one
    assert one.get("Group") == "sdwm", one
    assert "DynamicUser" not in one  # it reads the files set up in sdwm's home
    # Starts `securedrop-wm transfer watch` on the settings of section 2's place for
    # that user, and comes back whatever stopped it, but not in a tight loop.
    argv = shlex.split(one["ExecStart"])
    config = "/home/sdwm/.config/securedrop-wm/transfer.toml"
    assert argv == ["/usr/local/bin/securedrop-wm", "transfer", "watch", "--config", config]
    assert "~/.config/securedrop-wm/transfer.toml" in section(2)
    assert one.get("Restart") in ("always", "on-failure"), one
    assert float(one.get("RestartSec", "0")) >= 5
    assert "tor.service" in one.get("After", "") and "tor.service" in one.get("Wants", "")
    assert one.get("WantedBy") == "multi-user.target"
    # The house style: what the drop's own units have, where it fits a networked watcher.
    assert one.get("UMask") == "0077"
    assert one.get("LimitCORE") == "0"  # its memory holds the token and the mail password
    for key, value in _sandbox(APP_UNIT.read_text()).items():
        if key in NOT_FOR_THE_WATCHER:
            continue
        assert key in one, f"the watcher's unit lacks {key}={value}"
        mine = one[key]
        if value.lower() in TRUE:
            assert mine.lower() in TRUE, f"{key}={mine}"
        else:
            assert mine == value, f"{key}={mine}, the drop's units have {value}"
    assert one.get("PrivateNetwork", "no").lower() not in TRUE  # it needs the network
    assert set(one["RestrictAddressFamilies"].split()) <= {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert one.get("ProtectHome") in ("read-only", "tmpfs", "yes")
    # gpg writes into its home (locks, its agent's socket): that folder, and only that,
    # is writable; "-": a watcher without mail has no such folder and still starts.
    assert unit["ReadWritePaths"] == ["-/home/sdwm/.config/securedrop-wm/alert-gnupg"]
    assert "install -d -m 700 ~/.config/securedrop-wm/alert-gnupg" in setup_block()
    assert 'alert_gnupg_home = "alert-gnupg"' in settings_block()


# -- the setup block and the settings -----------------------------------------------------


def carry_to_transfer_machine(
    folder: Path, oncall_public: bytes, token: str, smtp_password: str
) -> None:
    """What a person brings to the transfer machine for section 5's setup block."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "oncall.asc").write_bytes(oncall_public)
    (folder / "watch-token").write_text(token + "\n")
    (folder / "smtp-password").write_text(smtp_password + "\n")


def shell_env(home: Path) -> dict[str, str]:
    """The person's shell: this checkout's ``.venv/bin`` first, a throwaway ``HOME``."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }


def kill_agent(gnupg_home: Path) -> None:
    subprocess.run(
        ["gpgconf", "--homedir", str(gnupg_home), "--kill", "gpg-agent"],
        check=False,
        capture_output=True,
    )


def test_the_setup_block_and_settings_as_written_make_a_watcher_with_three_channels(
    responders: Responders,
) -> None:
    base = short_tempdir("sdwm-watchdoc-")
    home, carried = base / "home", base / "carried"
    home.mkdir()
    carry_to_transfer_machine(carried, responders.team_public.read_bytes(), "t" * 43, "pw")
    folder = home / ".config/securedrop-wm"
    try:
        run_setup_block(carried, shell_env(home))
        assert stat.S_IMODE((folder / "alert-gnupg").stat().st_mode) == 0o700
        for name in ("watch-token", "smtp-password"):
            assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
        # The settings as written, with section 2's onion and socks, and only what a
        # person fills in filled in: the on-call key's fingerprint and the onion.
        config = folder / "transfer.toml"
        config.write_text(
            watch_settings(
                {
                    "onion": f'"{ONION}"',
                    "alert_key": f'"{responders.team_fingerprint}"',
                }
            )
        )
        settings = load_transfer_settings(config, environ={})
        assert settings.token == "t" * 43  # read from the installed watch-token
        watch = settings.watch
        assert watch.gnupg_home == folder / "alert-gnupg"
        assert watch.smtp is not None and watch.smtp.password_file == folder / "smtp-password"
        assert (watch.smtp.tls, watch.smtp.port) == ("starttls", 587)
        assert watch.policy.interval == 900 and watch.poll_interval == 300
        # The key the block imported is found: mail is possible, and so are the others.
        channels = build_channels(settings)
        try:
            assert [type(c) for c in channels] == [MailChannel, WebhookChannel, CommandChannel]
        finally:
            for channel in channels:
                channel.close()
    finally:
        kill_agent(folder / "alert-gnupg")
        shutil.rmtree(base, ignore_errors=True)
