"""The keys a drop server trusts, changed on an installed server: the team key and the
other responders' keys (every report is encrypted to them), the workstation's signing
key (a reply bundle must carry its signature), and the server's own signing key, which
the workstation pins.

Only public keys are taken, and only ones that can do their job now: a secret key never
enters the server's keyring, and an expired key, or one that cannot encrypt (responders)
or sign (workstation), is refused before anything changes. A key is imported into the
keyring first, then ``config.toml`` is rewritten in one step (:func:`write_atomically`)
with only the lines of the changed settings replaced, so its comments and other settings
stay as the admin left them. A key that no role uses any more leaves the keyring.

The commands a person types are thin wrappers in :mod:`securedrop_wm.cli.keys`.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .crypto import GnuPG, KeyInfo
from .errors import KeyMissingError, KeyRefusedError, SettingsError
from .files import write_atomically
from .settings import ENV_PREFIX, Settings, load_settings

TEAM = "team_fingerprint"
RESPONDERS = "responder_fingerprints"
WORKSTATION = "workstation_fingerprint"
# A key file is a few KiB; anything much larger is not one.
MAX_KEY_FILE_BYTES = 1024 * 1024
Purpose = Literal["encrypt", "sign"]
_KEY_LINE = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")
_HEX40 = re.compile(r"^[0-9A-F]{40}$")


def group_fingerprint(fingerprint: str) -> str:
    """A fingerprint as gpg shows it to a person comparing it: ten groups of four."""
    groups = [fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4)]
    return " ".join(groups[:5]) + "  " + " ".join(groups[5:])


def parse_fingerprint(text: str) -> str:
    """A fingerprint as typed (spaces allowed, any case) in canonical form.

    :raises KeyRefusedError: it is not 40 hex digits.
    """
    fingerprint = text.replace(" ", "").upper()
    if not _HEX40.match(fingerprint):
        raise KeyRefusedError(f"{text!r} is not a fingerprint (40 hex digits, spaces allowed)")
    return fingerprint


def accept_public_key(
    gpg: GnuPG, data: str | bytes, purpose: Purpose, own_signing_key: str | None = None
) -> str:
    """Check that ``data`` is one public key fit for ``purpose``, then import it.

    :returns: its fingerprint.
    :raises KeyRefusedError: saying why; nothing was imported.
    """
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyRefusedError("this is not a public key file: it is larger than 1 MiB")
    keys = gpg.inspect_keys(data)
    if not keys:
        raise KeyRefusedError(
            "no OpenPGP key found: give a public key file, as `gpg --armor --export "
            "FINGERPRINT` writes it"
        )
    if any(kind == "sec" for kind, _ in keys):
        raise KeyRefusedError(
            "this is a SECRET key, and the drop server must only ever hold public keys: "
            "give the public part (`gpg --armor --export FINGERPRINT`); nothing was imported"
        )
    if len(keys) > 1:
        raise KeyRefusedError(f"this file holds {len(keys)} keys: give one key per file")
    info = keys[0][1]
    fingerprint = info.fingerprint
    if fingerprint == own_signing_key or gpg.has_secret_key(fingerprint):
        # The server's own key, or a source's: trusting it would let the server sign its
        # own reply bundles or read its own reports.
        raise KeyRefusedError(
            f"key {fingerprint} is one of this server's own keys (its secret part is in the "
            "server's keyring), not a responder's or the workstation's"
        )
    _require_usable(info, purpose)
    gpg.import_keys(data)
    # The keyring may know more than the file (a revocation imported before).
    _require_usable(gpg.key_info(fingerprint), purpose)
    return fingerprint


def _require_usable(info: KeyInfo, purpose: Purpose) -> None:
    fingerprint = info.fingerprint
    if info.revoked:
        raise KeyRefusedError(f"key {fingerprint} is revoked")
    if info.expires is not None and info.expires <= time.time():
        day = time.strftime("%Y-%m-%d", time.gmtime(info.expires))
        raise KeyRefusedError(f"key {fingerprint} expired on {day}")
    if purpose == "encrypt" and not info.can_encrypt:
        raise KeyRefusedError(
            f"key {fingerprint} cannot encrypt (no valid encryption subkey): reports "
            "encrypted to it could never be read"
        )
    if purpose == "sign" and not info.can_sign:
        raise KeyRefusedError(f"key {fingerprint} cannot sign (no valid signing key)")


@dataclass(frozen=True)
class Change:
    """What a key command did: ``changed`` is False when it was so already."""

    fingerprint: str
    changed: bool
    replaced: str | None = None


@dataclass(frozen=True)
class RegisteredKey:
    """A key the configuration names, and what the keyring says of it (``None``: the
    keyring lacks it)."""

    fingerprint: str
    role: str
    info: KeyInfo | None


class ServerKeys:
    """The key roles of one drop server: read from and written to its ``config.toml``.

    Made by :func:`open_server_keys`, which holds the data dir's lock meanwhile.
    """

    def __init__(self, config_path: Path, settings: Settings, gpg: GnuPG) -> None:
        self.config_path = config_path
        self.settings = settings
        self.gpg = gpg

    # -- reading ------------------------------------------------------------------------

    def _file_values(self) -> dict[str, Any]:
        # The file's own values, not the environment's overrides: those are what change.
        with self.config_path.open("rb") as f:
            return tomllib.load(f)

    def team(self) -> str | None:
        value = self._file_values().get(TEAM, "")
        return parse_fingerprint(value) if isinstance(value, str) and value else None

    def responders(self) -> list[str]:
        """The responder fingerprints, the team key first."""
        values = self._file_values().get(RESPONDERS, [])
        listed = [parse_fingerprint(v) for v in values if isinstance(v, str)]
        team = self.team()
        return ([team] if team else []) + [f for f in listed if f != team]

    def workstation(self) -> str | None:
        value = self._file_values().get(WORKSTATION, "")
        return parse_fingerprint(value) if isinstance(value, str) and value else None

    def registered(self) -> list[RegisteredKey]:
        """Every key the configuration names, with its role."""
        team = self.team()
        keys = [(f, "team" if f == team else "responder") for f in self.responders()]
        workstation = self.workstation()
        if workstation:
            keys.append((workstation, "workstation"))
        return [RegisteredKey(f, role, self._info(f)) for f, role in keys]

    def _info(self, fingerprint: str) -> KeyInfo | None:
        try:
            return self.gpg.key_info(fingerprint)
        except KeyMissingError:
            return None

    def signing_key(self) -> tuple[str, str]:
        """The server's signing key: its fingerprint and its armored public key."""
        fingerprint = self.settings.signing_fingerprint
        return fingerprint, self.gpg.export_public_key(fingerprint)

    def overridden(self, setting: str) -> bool:
        """Whether an environment variable overrides ``setting`` (the file then says one
        thing and the running server does another)."""
        return f"{ENV_PREFIX}{setting.upper()}" in os.environ

    # -- changing -----------------------------------------------------------------------

    def set_workstation(self, data: str | bytes) -> Change:
        """Pin the workstation's signing key: reply bundles signed by any other key are
        refused from now on."""
        fingerprint = self._accept(data, "sign")
        if fingerprint in self.responders():
            raise KeyRefusedError(
                f"key {fingerprint} is a responder key on this server; the workstation "
                "signs with a key of its own"
            )
        old = self.workstation()
        if old == fingerprint:
            return Change(fingerprint, changed=False)
        self._write({WORKSTATION: fingerprint})
        self._forget([old] if old else [])
        return Change(fingerprint, changed=True, replaced=old)

    def set_team(self, data: str | bytes) -> Change:
        """Make a key the team key, in place of the current one."""
        fingerprint = self._require_not_workstation(self._accept(data, "encrypt"))
        old = self.team()
        if old == fingerprint:
            return Change(fingerprint, changed=False)
        others = [f for f in self.responders() if f not in (old, fingerprint)]
        self._write({TEAM: fingerprint, RESPONDERS: [fingerprint, *others]})
        self._forget([old] if old else [])
        return Change(fingerprint, changed=True, replaced=old)

    def add_responder(self, data: str | bytes) -> Change:
        """Encrypt every new report to one more responder key."""
        fingerprint = self._require_not_workstation(self._accept(data, "encrypt"))
        current = self.responders()
        if fingerprint in current:
            return Change(fingerprint, changed=False)
        self._write({RESPONDERS: [*current, fingerprint]})
        return Change(fingerprint, changed=True)

    def remove_responder(self, fingerprint_text: str) -> Change:
        """Stop encrypting new reports to a responder key (never the team key)."""
        fingerprint = parse_fingerprint(fingerprint_text)
        if fingerprint == self.team():
            raise KeyRefusedError(
                f"key {fingerprint} is the team key: every report is encrypted to it, so it "
                "cannot be removed; replace it with `securedrop-wm team-key set FILE`"
            )
        current = self.responders()
        if fingerprint not in current:
            return Change(fingerprint, changed=False)
        self._write({RESPONDERS: [f for f in current if f != fingerprint]})
        self._forget([fingerprint])
        return Change(fingerprint, changed=True)

    def accept(self, data: str | bytes, purpose: Purpose) -> str:
        """Import a public key fit for ``purpose`` (not one of the server's own)."""
        return accept_public_key(self.gpg, data, purpose, self.settings.signing_fingerprint)

    _accept = accept

    def _require_not_workstation(self, fingerprint: str) -> str:
        if fingerprint == self.workstation():
            raise KeyRefusedError(
                f"key {fingerprint} is the workstation's signing key; a responder key must "
                "be another key"
            )
        return fingerprint

    def _write(self, changes: Mapping[str, str | Sequence[str]]) -> None:
        if self._file_values().get("desks"):
            raise SettingsError(
                "this drop has desks: each desk has its own keys, set with "
                "`securedrop-wm desk set-key DESK ...` (docs/server.md)"
            )
        text = self.config_path.read_text()
        write_atomically(self.config_path, edit_config(text, changes))

    def _forget(self, fingerprints: Sequence[str]) -> None:
        """Remove from the keyring the keys no role uses any more."""
        in_use = {*self.responders(), self.workstation(), self.settings.signing_fingerprint}
        for fingerprint in fingerprints:
            if fingerprint not in in_use and not self.gpg.has_secret_key(fingerprint):
                self.gpg.delete_key(fingerprint)


@contextmanager
def open_server_keys(config_path: Path) -> Iterator[ServerKeys]:
    """The key roles of the server whose config is ``config_path``, one command at a
    time: the data dir is locked until the block ends."""
    settings = load_settings(config_path, require_team_key=False)
    # The folder, not the file: the file is replaced by a rename, and a lock on the
    # replaced file would not keep out a command that opened the new one.
    folder = os.open(config_path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        gpg = GnuPG(settings.gpg_home, settings.gpg_binary)
        try:
            yield ServerKeys(config_path, settings, gpg)
        finally:
            gpg.close()
    finally:
        os.close(folder)


# -- config.toml, edited line by line --------------------------------------------------


def edit_config(text: str, changes: Mapping[str, str | Sequence[str]]) -> str:
    """``text`` (a config.toml) with the top-level settings in ``changes`` set: each
    one's lines replaced where it stands (added before the first table if absent),
    every other line kept as it was.

    :raises SettingsError: the result would not say what was asked (a file the editor
        does not understand): nothing should then be written.
    """
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"config.toml is not valid TOML: {e}") from None
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    pending = {key: _toml_line(key, value) for key, value in changes.items()}
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("["):  # the first table: top-level settings end here
            blank = len(out)
            while blank and not out[blank - 1].strip():
                blank -= 1
            out[blank:blank] = pending.values()
            pending.clear()
            out.extend(lines[i:])
            break
        match = _KEY_LINE.match(line)
        if match is None:
            out.append(line)
            i += 1
            continue
        end = _value_end(lines, i)
        key = match.group(1)
        if key in pending:
            out.append(_keep_comment(pending.pop(key), lines[end - 1]))
        else:
            out.extend(lines[i:end])
        i = end
    out.extend(pending.values())
    result = "".join(out)
    expected = {**before, **{k: v if isinstance(v, str) else list(v) for k, v in changes.items()}}
    try:
        after = tomllib.loads(result)
    except tomllib.TOMLDecodeError:
        after = None
    if after != expected:
        raise SettingsError(
            "config.toml could not be changed line by line (a setting written in a form "
            f"this editor does not know): set {', '.join(changes)} in it by hand"
        )
    return result


def _value_end(lines: list[str], start: int) -> int:
    """The index after the last line of the setting starting at ``start`` (an array may
    span lines): the first prefix of lines that parses as TOML."""
    for end in range(start + 1, len(lines) + 1):
        try:
            tomllib.loads("".join(lines[start:end]))
        except tomllib.TOMLDecodeError:
            continue
        return end
    raise SettingsError(f"config.toml line {start + 1} does not end")


def _keep_comment(new: str, old_last_line: str) -> str:
    """``new`` with the comment that ended the replaced setting's last line, if any."""
    # After the value's closing quote or bracket: fingerprints hold no '#'.
    tail = old_last_line.rstrip("\n")
    closing = max(tail.rfind('"'), tail.rfind("]"), tail.rfind("'"))
    comment = tail.find("#", closing + 1)
    if comment < 0:
        return new
    return f"{new.rstrip()}  {tail[comment:].strip()}\n"


def _toml_line(key: str, value: str | Sequence[str]) -> str:
    # Only fingerprints come here: hex digits, nothing to escape.
    if isinstance(value, str):
        return f'{key} = "{value}"\n'
    items = ", ".join(f'"{v}"' for v in value)
    return f"{key} = [{items}]\n"
