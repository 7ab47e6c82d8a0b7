"""Filters for the response desks (``sdwm_common_desks``) and for writing TOML.

A desk in the inventory names its key files on the admin's machine; the play copies
them to the server, imports them, reads their fingerprints and writes one ``[[desks]]``
table per desk into config.toml (docs/deploy.md, "Several desks"). What the operator
wrote as text (names, descriptions) is checked by the app itself when the rendered
config is validated (``securedrop-wm check-config``); these filters check only what the
play needs before it uses a desk's id in a file name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

#: The app's rule for a desk id (securedrop_wm/desks.py, DESK_ID): safe in file names.
DESK_ID = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
DESK_KEYS = (
    "id",
    "central",
    "name",
    "description",
    "serves",
    "languages",
    "team_key_file",
    "responder_key_files",
    "workstation_key_file",
)
#: Each desk's transfer machine: its onion client key and its token have this name.
CLIENT_PREFIX = "transfer-"
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def desk_problems(desks: object) -> list[str]:
    """What is wrong with ``sdwm_common_desks``, one sentence each; [] when nothing is."""
    if desks is None:
        return []
    if not isinstance(desks, Sequence) or isinstance(desks, str):
        return ["sdwm_common_desks must be a list of desks"]
    problems: list[str] = []
    seen: set[str] = set()
    for index, desk in enumerate(desks):
        where = f"sdwm_common_desks[{index}]"
        if not isinstance(desk, Mapping):
            problems.append(f"{where} must be a desk (id, name, team_key_file, ...)")
            continue
        unknown = sorted(str(k) for k in desk if k not in DESK_KEYS)
        if unknown:
            problems.append(
                f"{where} has unknown keys {', '.join(unknown)} (known: {', '.join(DESK_KEYS)})"
            )
        desk_id = desk.get("id")
        if not isinstance(desk_id, str) or not DESK_ID.match(desk_id):
            problems.append(
                f"{where}: id must be 1 to 32 lower-case letters, digits or dashes, "
                "starting with a letter"
            )
        elif desk_id in seen:
            problems.append(f"{where}: the id {desk_id!r} is used twice")
        else:
            seen.add(desk_id)
            where = f"desk {desk_id!r}"
        if not isinstance(desk.get("central", False), bool):
            problems.append(f"{where}: central must be true or false")
        if not _is_text(desk.get("team_key_file")):
            problems.append(f"{where}: team_key_file must name the team's public key file")
        others = desk.get("responder_key_files", [])
        if (
            not isinstance(others, Sequence)
            or isinstance(others, str)
            or not all(map(_is_text, others))
        ):
            problems.append(f"{where}: responder_key_files must be a list of key files")
        if not isinstance(desk.get("workstation_key_file", ""), str):
            problems.append(f'{where}: workstation_key_file must be a key file or ""')
        for what in ("name", "description", "serves"):
            if not isinstance(desk.get(what, {}), Mapping):
                problems.append(f"{where}: {what} must be a table of languages (en: ...)")
        languages = desk.get("languages", [])
        if not isinstance(languages, Sequence) or isinstance(languages, str):
            problems.append(f"{where}: languages must be a list of language codes")
    return problems


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def desk_key_files(
    desks: Sequence[Mapping[str, Any]] | None,
    responder_keys: Sequence[str],
    workstation_key: str,
    keys_dir: str,
) -> list[dict[str, str]]:
    """Every key file to copy: ``{src, dest, desk, role}``, role team, responder or
    workstation. Without desks, the single team's keys keep their names of old
    (``responder-N.asc``, ``workstation.asc``; desk ""), so an existing server sees no
    change."""
    files: list[dict[str, str]] = []

    def add(src: str, name: str, desk: str, role: str) -> None:
        files.append({"src": src, "dest": f"{keys_dir}/{name}", "desk": desk, "role": role})

    if not desks:
        for n, src in enumerate(responder_keys):
            add(src, f"responder-{n}.asc", "", "team" if n == 0 else "responder")
        if workstation_key:
            add(workstation_key, "workstation.asc", "", "workstation")
        return files
    for desk in desks:
        prefix = f"desk-{desk['id']}"
        add(desk["team_key_file"], f"{prefix}-team.asc", desk["id"], "team")
        for n, src in enumerate(desk.get("responder_key_files") or []):
            add(src, f"{prefix}-responder-{n}.asc", desk["id"], "responder")
        if desk.get("workstation_key_file"):
            add(
                desk["workstation_key_file"], f"{prefix}-workstation.asc", desk["id"], "workstation"
            )
    return files


def key_fingerprints(
    key_files: Sequence[Mapping[str, str]], fingerprints: Sequence[str], desk: str = ""
) -> dict[str, Any]:
    """The fingerprints of one desk's keys (``desk`` "": the single team's):
    ``{team, responders (the team's first), workstation}``."""
    if len(key_files) != len(fingerprints):
        raise AnsibleFilterError("one fingerprint per key file was expected")
    mine = [(f, fpr) for f, fpr in zip(key_files, fingerprints, strict=True) if f["desk"] == desk]
    return {
        "team": next((fpr for f, fpr in mine if f["role"] == "team"), ""),
        "responders": [fpr for f, fpr in mine if f["role"] in ("team", "responder")],
        "workstation": next((fpr for f, fpr in mine if f["role"] == "workstation"), ""),
    }


def desk_tables(
    desks: Sequence[Mapping[str, Any]] | None,
    key_files: Sequence[Mapping[str, str]],
    fingerprints: Sequence[str],
) -> list[dict[str, Any]]:
    """The ``[[desks]]`` tables of config.toml, in the inventory's order: the desk's own
    settings and its keys' fingerprints in place of its key files. Empty values are
    left out (the app's defaults apply)."""
    tables: list[dict[str, Any]] = []
    for desk in desks or []:
        fprs = key_fingerprints(key_files, fingerprints, desk["id"])
        table: dict[str, Any] = {
            "id": desk["id"],
            "central": bool(desk.get("central", False)),
            "team_fingerprint": fprs["team"],
            "responder_fingerprints": fprs["responders"],
        }
        if fprs["workstation"]:
            table["workstation_fingerprint"] = fprs["workstation"]
        if desk.get("languages"):
            table["languages"] = list(desk["languages"])
        for what in ("name", "description", "serves"):
            if desk.get(what):
                table[what] = dict(desk[what])
        tables.append(table)
    return tables


def desk_clients(desks: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """The names of the desks' transfer machines: ``transfer-<desk id>`` each."""
    return [CLIENT_PREFIX + str(desk["id"]) for desk in desks or []]


def toml_value(value: object) -> str:
    """``value`` as a TOML value: a string, a whole number, true or false, or a list.

    Strings are basic strings with every character TOML forbids raw escaped (control
    characters, DEL); unlike ``to_json``, characters beyond the BMP are kept as they
    are, not as surrogate pairs, which TOML refuses.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        out = []
        for ch in value:
            code = ord(ch)
            if ch in _ESCAPES:
                out.append(_ESCAPES[ch])
            elif code < 0x20 or code == 0x7F:
                out.append(f"\\u{code:04X}")
            elif 0xD800 <= code <= 0xDFFF:
                raise AnsibleFilterError(f"not valid text for config.toml: {value!r}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise AnsibleFilterError(f"no TOML value for {value!r}")


def toml_key(key: object) -> str:
    """``key`` as a TOML key: bare where TOML allows it, else quoted."""
    text = str(key)
    return text if _BARE_KEY.match(text) else toml_value(text)


class FilterModule:
    """Filters of the securedrop-wm roles for response desks and config.toml."""

    def filters(self) -> dict[str, object]:
        return {
            "sdwm_desk_problems": desk_problems,
            "sdwm_desk_key_files": desk_key_files,
            "sdwm_key_fingerprints": key_fingerprints,
            "sdwm_desk_tables": desk_tables,
            "sdwm_desk_clients": desk_clients,
            "sdwm_toml": toml_value,
            "sdwm_toml_key": toml_key,
        }
