"""The desks of an installed drop, changed in its ``config.toml`` (``securedrop-wm desk``).

Like the key commands (keys_admin.py), a key is checked and imported into the keyring
first, then ``config.toml`` is rewritten in one step: every line outside the
``[[desks]]`` tables is kept as it was, and the ``[[desks]]`` tables are written anew at
the end of the file (comments inside them are not kept). The result is validated as the
settings loader validates it before anything is written.

The first ``desk add`` on a drop with one team (top-level keys) turns those keys into a
desk ``default`` first, so that the reports, tokens and counts that exist stay that
desk's (desks.stored_ids).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update

from .desks import BUILTIN_ID, BUILTIN_NAME, DESK_ID, Desk, parse_desks, stored_ids
from .drop import Drop
from .errors import KeyRefusedError, SettingsError
from .files import write_atomically
from .keys_admin import RESPONDERS, TEAM, WORKSTATION, ServerKeys, edit_config
from .models import ArrivalCount, BundleRecord, SubmissionDesk, TransferToken


@dataclass
class DeskSpec:
    """What ``desk add`` is told: the texts per language and the keys' data."""

    id: str
    names: dict[str, str]
    team_key: bytes
    descriptions: dict[str, str] = field(default_factory=dict)
    serves: dict[str, str] = field(default_factory=dict)
    languages: list[str] = field(default_factory=list)
    central: bool = False
    responder_keys: list[bytes] = field(default_factory=list)
    workstation_key: bytes | None = None


def configured_desks(keys: ServerKeys) -> list[dict[str, Any]]:
    """The ``[[desks]]`` tables of the file (not the environment), as written."""
    with keys.config_path.open("rb") as f:
        raw = tomllib.load(f).get("desks", [])
    return [dict(d) for d in raw] if isinstance(raw, list) else []


def add_desk(keys: ServerKeys, spec: DeskSpec) -> Desk:
    """Add a desk: its keys imported, its table written.

    :raises SettingsError: the desk would make the configuration invalid (its id is
        taken, a second central desk, operator text with a link...); nothing changed.
    :raises KeyRefusedError: a key is not fit for its role; nothing changed.
    """
    if not DESK_ID.match(spec.id):
        raise SettingsError(
            "a desk id is 1 to 32 lower-case letters, digits or dashes, starting with a letter"
        )
    tables = configured_desks(keys)
    top_level = not tables
    if top_level:
        team = keys.team()
        if team is None:
            raise SettingsError(
                "register the team key first (`securedrop-wm team-key set FILE`), or "
                "write the [[desks]] tables by hand"
            )
        tables = [_builtin_table(keys, team)]
    team = keys.accept(spec.team_key, "encrypt")
    responders = [team]
    for data in spec.responder_keys:
        fpr = keys.accept(data, "encrypt")
        if fpr not in responders:
            responders.append(fpr)
    table: dict[str, Any] = {"id": spec.id, "central": spec.central, "team_fingerprint": team}
    if len(responders) > 1:
        table["responder_fingerprints"] = responders[1:]
    if spec.workstation_key is not None:
        station = keys.accept(spec.workstation_key, "sign")
        if station in responders:
            raise KeyRefusedError(
                f"key {station} is a responder key: a workstation signs with its own"
            )
        table["workstation_fingerprint"] = station
    if spec.languages:
        table["languages"] = list(spec.languages)
    table["name"] = dict(spec.names)
    if spec.descriptions:
        table["description"] = dict(spec.descriptions)
    if spec.serves:
        table["serves"] = dict(spec.serves)
    desks = _write(keys, [*tables, table], clear_top_level=top_level)
    return next(d for d in desks if d.id == spec.id)


def set_desk_key(keys: ServerKeys, desk_id: str, role: str, data: bytes | str) -> str:
    """Set a desk's ``team`` or ``workstation`` key, or ``add-responder`` /
    ``remove-responder`` (``data``: the fingerprint) one of its responder keys.

    :returns: the fingerprint set, added or removed.
    :raises SettingsError: no such desk, or the result would be invalid.
    :raises KeyRefusedError: the key is not fit for the role.
    """
    tables = configured_desks(keys)
    table = _find(tables, desk_id)
    others = [str(f).replace(" ", "").upper() for f in table.get("responder_fingerprints", [])]
    if role == "remove-responder":
        fpr = str(data).replace(" ", "").upper()
        if fpr == str(table.get("team_fingerprint", "")).replace(" ", "").upper():
            raise KeyRefusedError(f"key {fpr} is the desk's team key: replace it instead")
        table["responder_fingerprints"] = [f for f in others if f != fpr]
    elif role == "workstation":
        fpr = keys.accept(data, "sign")
        table["workstation_fingerprint"] = fpr
    elif role in ("team", "add-responder"):
        fpr = keys.accept(data, "encrypt")
        if role == "team":
            table["team_fingerprint"] = fpr
            table["responder_fingerprints"] = [f for f in others if f != fpr]
        elif fpr not in others:
            table["responder_fingerprints"] = [*others, fpr]
    else:
        raise SettingsError(f"unknown key role {role!r}")
    _write(keys, tables)
    return fpr


def remove_desk(keys: ServerKeys, drop: Drop, desk_id: str) -> int:
    """Remove a desk that waits for nothing; its transfer tokens and counts go.

    :returns: how many tokens were revoked.
    :raises SettingsError: no such desk, the last desk, or items still pending for it
        (its workstation must pull and acknowledge them first).
    """
    tables = configured_desks(keys)
    _find(tables, desk_id)
    if len(tables) == 1:
        raise SettingsError("a drop keeps at least one desk")
    ids = stored_ids(drop.settings, desk_id)
    with drop.sessions.begin() as db:
        pending = db.scalar(
            select(func.count(SubmissionDesk.id)).where(SubmissionDesk.desk.in_(ids))
        )
        if pending:
            raise SettingsError(
                f"desk '{desk_id}' still has {pending} pending item(s): its workstation must "
                "pull and acknowledge them before the desk is removed"
            )
        _write(keys, [t for t in tables if t.get("id") != desk_id])
        revoked = db.execute(delete(TransferToken).where(TransferToken.desk.in_(ids)))
        # Its counts go with it; its bundle log stays (the audit heads its workstation
        # sent), under a name no desk can have, so that no other desk inherits it.
        db.execute(delete(ArrivalCount).where(ArrivalCount.desk.in_(ids)))
        db.execute(
            update(BundleRecord).where(BundleRecord.desk.in_(ids)).values(desk=f"-{desk_id}")
        )
    return int(revoked.rowcount)  # type: ignore[attr-defined]


def _find(tables: Sequence[dict[str, Any]], desk_id: str) -> dict[str, Any]:
    for table in tables:
        if table.get("id") == desk_id:
            return table
    known = ", ".join(str(t.get("id")) for t in tables) or "none: the drop has one team"
    raise SettingsError(f"no desk is named {desk_id!r} (the desks: {known})")


def _builtin_table(keys: ServerKeys, team: str) -> dict[str, Any]:
    """The one team of a drop without desks, as a desk table of its own."""
    table: dict[str, Any] = {"id": BUILTIN_ID, "central": True, "team_fingerprint": team}
    others = [f for f in keys.responders() if f != team]
    if others:
        table["responder_fingerprints"] = others
    station = keys.workstation()
    if station:
        table["workstation_fingerprint"] = station
    table["name"] = {"en": BUILTIN_NAME}
    return table


def _write(
    keys: ServerKeys, tables: Sequence[Mapping[str, Any]], *, clear_top_level: bool = False
) -> tuple[Desk, ...]:
    """Validate the desks as the loader does, then rewrite config.toml in one step."""
    desks = parse_desks(list(tables), [])
    text = keys.config_path.read_text()
    if clear_top_level:
        text = edit_config(text, {TEAM: "", RESPONDERS: [], WORKSTATION: ""})
    before = tomllib.loads(text)
    result = _without_desks(text).rstrip("\n") + "\n" + "".join(_render(t) for t in tables)
    after = tomllib.loads(result)
    expected = {**{k: v for k, v in before.items() if k != "desks"}, "desks": list(tables)}
    if after != expected:
        raise SettingsError(
            "config.toml could not be rewritten (a form this editor does not know): "
            "change the [[desks]] tables by hand"
        )
    write_atomically(keys.config_path, result)
    return desks


def _without_desks(text: str) -> str:
    """``text`` without its ``[[desks]]`` tables (and their ``[desks.*]`` sub-tables)."""
    out: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        head = line.strip()
        if head.startswith("["):
            name = head.strip("[]").split("#")[0].strip().strip("]").strip()
            inside = name == "desks" or name.startswith("desks.")
        if not inside:
            out.append(line)
    return "".join(out)


def _render(table: Mapping[str, Any]) -> str:
    """One ``[[desks]]`` table in TOML (JSON strings are TOML basic strings)."""
    lines = ["\n[[desks]]\n"]
    subs = []
    for key, value in table.items():
        if isinstance(value, Mapping):
            subs.append((key, value))
        else:
            lines.append(f"{key} = {_value(value)}\n")
    for key, value in subs:
        lines.append(f"[desks.{key}]\n")
        lines.extend(f"{json.dumps(k)} = {_value(v)}\n" for k, v in value.items())
    return "".join(lines)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


__all__ = [
    "DeskSpec",
    "add_desk",
    "configured_desks",
    "remove_desk",
    "set_desk_key",
]
