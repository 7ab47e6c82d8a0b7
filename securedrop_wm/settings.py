"""Settings: one frozen dataclass made by one pure function from a TOML file and the environment.

Secrets (peppers, the session key) live in a separate ``secrets.toml`` beside the config,
readable by the service user only; ``securedrop-wm init`` writes both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import SettingsSource, data_dir_of, fingerprint, read_settings, secret
from .desks import DESK_KEYS, Desk, builtin_desk, parse_categories, parse_desks
from .errors import SettingsError

ENV_PREFIX = "SDWM_"
CONFIG_ENV = "SDWM_CONFIG"
#: The workstation's and the transfer machine's variables, which ``SDWM_`` must not take.
OTHER_MACHINE_PREFIXES = ("SDWM_WS_", "SDWM_TRANSFER_")


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost parameters (see docs/kdf.md for how they were chosen)."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 1


@dataclass(frozen=True)
class Settings:
    """Everything the drop server needs to run, validated at start-up."""

    data_dir: Path
    database_url: str
    gpg_home: Path
    # The GnuPG home of the server's signing key, apart from gpg_home (which the source UI
    # uses): only the transfer API and the key commands open it (signing_home.py).
    signing_gpg_home: Path
    store_dir: Path
    responder_fingerprints: tuple[str, ...]
    # None only when loaded with require_team_key=False: a server whose team key is not
    # registered yet, which only the key commands open.
    team_fingerprint: str | None
    signing_fingerprint: str
    workstation_fingerprint: str | None
    lookup_pepper: bytes = field(repr=False)
    key_pepper: bytes = field(repr=False)
    kdf_salt: bytes = field(repr=False)
    session_key: bytes = field(repr=False)
    kdf: KdfParams = KdfParams()
    codename_words: int = 7
    max_report_bytes: int = 500 * 1024 * 1024
    max_field_bytes: int = 256 * 1024
    session_minutes: int = 30
    # Absolute lifetime of a source session, however active the source is.
    session_max_minutes: int = 120
    # Where the live source sessions and spent form tokens are kept, shared by the worker
    # processes. Must be a tmpfs (memory): never the data disk. None: /dev/shm.
    session_dir: Path | None = None
    # Every language the source UI ships a catalog for (source_ui/translations).
    languages: tuple[str, ...] = (
        "en", "ar", "bn", "ca", "de", "es", "fa", "fr", "he", "hi", "id", "it", "ja",
        "ko", "my", "pl", "pt_BR", "ru", "sw", "tr", "uk", "ur", "vi", "zh_Hans", "zh_Hant",
    )  # fmt: skip
    default_language: str = "en"
    purge_acknowledged_after_days: int = 0
    source_key_expiry_days: int = 0
    # Retention (securedrop-wm maintain, daily): a source that filed no report is removed
    # when its creation day is this many days old (at least 2: days are coarse).
    unused_source_days: int = 7
    # A source whose submissions and replies are all gone: removed this long after its
    # last report.
    source_retention_days: int = 365
    # A report row whose ciphertexts are all purged: removed this long after its day.
    report_retention_days: int = 90
    # A reply the source has not deleted: removed this long after it arrived.
    reply_retention_days: int = 180
    # What stays of a removed source (its lookup id, so that a login says "removed"):
    # removed this long after.
    tombstone_days: int = 365
    gpg_binary: str = "gpg"
    # Bounded work per request (docs/server.md, "Bounded work per request"): file parts a
    # report may carry, and the two lanes of Argon2id derivations and key creation each
    # worker process runs (how many at once, how many may wait, and for how long).
    max_files_per_report: int = 30
    new_source_concurrency: int = 1
    new_source_queue: int = 6
    returning_source_concurrency: int = 2
    returning_source_queue: int = 4
    lane_wait_seconds: int = 15
    # What the source pages promise (docs/configuration.md): true only where a transfer
    # machine watches the urgency counts and alerts the on-call responder; otherwise the
    # pages say the team usually answers within usual_response_hours.
    alerts_configured: bool = False
    usual_response_hours: int = 48
    # The response desks (desks.py; docs/configuration.md, [[desks]]): at least one. A
    # drop without [[desks]] has the built-in one made of the keys above.
    desks: tuple[Desk, ...] = ()
    # The report categories the form offers, in its order (vocabulary.Category values).
    report_categories: tuple[str, ...] = ()


_INT_FIELDS = {
    "codename_words": (7, 20),
    "max_report_bytes": (1024, 1 << 40),
    "max_field_bytes": (1024, 64 * 1024 * 1024),
    "session_minutes": (1, 24 * 60),
    "session_max_minutes": (1, 24 * 60),
    "purge_acknowledged_after_days": (0, 3650),
    "source_key_expiry_days": (0, 36500),
    # Sources are dated to the day: 1 could remove a source made a minute ago.
    "unused_source_days": (2, 3650),
    "source_retention_days": (1, 36500),
    "report_retention_days": (1, 36500),
    "reply_retention_days": (1, 36500),
    "tombstone_days": (1, 36500),
    # The source UI parses at most 200 parts per form (MAX_FORM_PARTS): room for fields.
    "max_files_per_report": (1, 150),
    "new_source_concurrency": (1, 64),
    "new_source_queue": (0, 1024),
    "returning_source_concurrency": (1, 64),
    "returning_source_queue": (0, 1024),
    "lane_wait_seconds": (1, 600),
    "usual_response_hours": (1, 720),
}

#: Every key config.toml may hold (``None``: a value; else the keys of that table).
SETTING_KEYS: dict[str, tuple[str, ...] | None] = {
    **dict.fromkeys(
        (
            "data_dir",
            "database_url",
            "gpg_home",
            "signing_gpg_home",
            "store_dir",
            "session_dir",
            "responder_fingerprints",
            "team_fingerprint",
            "signing_fingerprint",
            "workstation_fingerprint",
            "languages",
            "default_language",
            "gpg_binary",
            "alerts_configured",
            "report_categories",
            *_INT_FIELDS,
        )
    ),
    "kdf": ("time_cost", "memory_kib", "parallelism"),
    # An array of tables: each [[desks]] table's keys (config.check_keys).
    "desks": DESK_KEYS,
}


def _source(config_path: Path) -> SettingsSource:
    return SettingsSource(
        what="config file",
        env_prefix=ENV_PREFIX,
        keys=SETTING_KEYS,
        other_prefixes=OTHER_MACHINE_PREFIXES,
        secrets="secrets.toml",
        missing_hint=f"make it with `securedrop-wm init --data-dir {data_dir_of(config_path)}`, "
        f"or name another with --config or ${CONFIG_ENV}",
        missing_secrets_hint="`securedrop-wm init` wrote it beside config.toml: restore it "
        "from a backup",
    )


def load_settings(
    config_path: Path | str,
    environ: Mapping[str, str] | None = None,
    *,
    require_team_key: bool = True,
    secrets_path: Path | None = None,
) -> Settings:
    """Read ``config_path`` (and ``secrets.toml`` beside it), apply ``SDWM_*`` overrides.

    :param require_team_key: False only for the commands that register keys: a server
        whose team key is not registered yet can encrypt nothing, so nothing else runs.
    :param secrets_path: the secrets file, if not beside the config (``check-config``).
    :raises SettingsError: naming the first setting that is missing, unknown or invalid.
    """
    path = Path(config_path)
    raw = read_settings(
        _source(path), path, os.environ if environ is None else environ, secrets_path=secrets_path
    )
    return _build(raw.values, raw.secrets, base=path.parent, require_team_key=require_team_key)


def _build(
    raw: dict[str, Any], secrets: dict[str, Any], base: Path, require_team_key: bool = True
) -> Settings:
    def path_setting(name: str, default: Path) -> Path:
        value = raw.get(name)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            raise SettingsError(f"setting '{name}' must be a non-empty path string")
        p = Path(value)
        return p if p.is_absolute() else (base / p)

    data_dir = path_setting("data_dir", base)
    fingerprints = raw.get("responder_fingerprints", [])
    if not isinstance(fingerprints, list) or not all(isinstance(f, str) for f in fingerprints):
        raise SettingsError("setting 'responder_fingerprints' must be a list of strings")
    team = raw.get("team_fingerprint", "")
    all_fprs = tuple(fingerprint(f, "responder_fingerprints") for f in fingerprints)
    if not isinstance(team, str):
        raise SettingsError("setting 'team_fingerprint' must be a fingerprint string")
    team_fpr = fingerprint(team, "team_fingerprint") if team else None
    if "desks" in raw:
        for name in ("team_fingerprint", "responder_fingerprints", "workstation_fingerprint"):
            if raw.get(name):
                raise SettingsError(
                    f"setting '{name}' is set at the top level and [[desks]] are configured: "
                    "each desk has its own keys; move it into a [[desks]] table "
                    "(docs/configuration.md)"
                )
        desks = parse_desks(raw["desks"], raw.get("languages", []))
        # The single-desk settings that other code reads are the first desk's.
        first = desks[0]
        team_fpr = first.team_fingerprint
        all_fprs = first.responder_fingerprints
        raw = {**raw, "workstation_fingerprint": first.workstation_fingerprint or ""}
    if team_fpr is None and require_team_key:
        raise SettingsError(
            "no team key is registered yet: run `securedrop-wm team-key set FILE` with the "
            "team's public key (docs/server.md)"
        )
    signing = raw.get("signing_fingerprint")
    if not isinstance(signing, str):
        raise SettingsError("setting 'signing_fingerprint' is missing")
    workstation = raw.get("workstation_fingerprint")
    ints: dict[str, int] = {}
    for name, (low, high) in _INT_FIELDS.items():
        if name in raw:
            value = raw[name]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise SettingsError(f"setting '{name}' must be an integer in [{low}, {high}]")
            ints[name] = value
    kdf_raw = raw.get("kdf", {})
    if not isinstance(kdf_raw, dict):
        raise SettingsError("setting 'kdf' must be a table")
    kdf = KdfParams(
        time_cost=_bounded(kdf_raw, "time_cost", 1, 100, KdfParams.time_cost),
        memory_kib=_bounded(kdf_raw, "memory_kib", 8, 4 * 1024 * 1024, KdfParams.memory_kib),
        parallelism=_bounded(kdf_raw, "parallelism", 1, 64, KdfParams.parallelism),
    )
    languages = raw.get("languages", list(Settings.languages))
    if (
        not isinstance(languages, list)
        or not languages
        or not all(isinstance(x, str) for x in languages)
    ):
        raise SettingsError("setting 'languages' must be a non-empty list of locale names")
    default_language = raw.get("default_language", languages[0])
    if not isinstance(default_language, str) or default_language not in languages:
        raise SettingsError("setting 'default_language' must be one of 'languages'")
    responders = all_fprs if team_fpr is None or team_fpr in all_fprs else (team_fpr, *all_fprs)
    workstation_fpr = (
        fingerprint(workstation, "workstation_fingerprint")
        if isinstance(workstation, str) and workstation
        else None
    )
    if "desks" not in raw:
        desks = (builtin_desk(team_fpr, responders, workstation_fpr),)
    database_url = raw.get("database_url", f"sqlite:///{data_dir / 'db.sqlite'}")
    if not isinstance(database_url, str) or ":" not in database_url:
        raise SettingsError("setting 'database_url' must be an SQLAlchemy URL")
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        gpg_home=path_setting("gpg_home", data_dir / "gnupg"),
        signing_gpg_home=path_setting("signing_gpg_home", data_dir / "signing"),
        store_dir=path_setting("store_dir", data_dir / "store"),
        session_dir=path_setting("session_dir", data_dir) if "session_dir" in raw else None,
        responder_fingerprints=responders,
        team_fingerprint=team_fpr,
        signing_fingerprint=fingerprint(signing, "signing_fingerprint"),
        workstation_fingerprint=workstation_fpr,
        lookup_pepper=secret(secrets, "lookup_pepper"),
        key_pepper=secret(secrets, "key_pepper"),
        kdf_salt=secret(secrets, "kdf_salt"),
        session_key=secret(secrets, "session_key"),
        kdf=kdf,
        languages=tuple(languages),
        default_language=default_language,
        gpg_binary=str(raw.get("gpg_binary", "gpg")),
        alerts_configured=_flag(raw, "alerts_configured", Settings.alerts_configured),
        desks=desks,
        report_categories=parse_categories(raw.get("report_categories")),
        **ints,
    )


def _flag(table: dict[str, Any], name: str, default: bool) -> bool:
    """A true/false setting: TOML's ``true`` or ``false``, never ``1`` or ``"yes"``."""
    value = table.get(name, default)
    if not isinstance(value, bool):
        raise SettingsError(f"setting '{name}' must be true or false, not {value!r}")
    return value


def _bounded(table: dict[str, Any], name: str, low: int, high: int, default: int) -> int:
    value = table.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise SettingsError(f"setting 'kdf.{name}' must be an integer in [{low}, {high}]")
    return value
