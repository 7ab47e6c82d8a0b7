"""Keys and first-run setup: the team key, the workstation signing key, the pinned
server signing key, and the first admin."""

from __future__ import annotations

import dataclasses
import hmac
from dataclasses import dataclass

from ..config import read_toml
from ..errors import CryptoError
from . import accounts, audit
from .errors import SecretKeyMissingError, SetupError
from .services import Workstation
from .settings import WorkstationSettings, read_config_values, write_config

# What setup says about the team key; the web layer shows each in the user's language.
TEAM_KEY_UNKNOWN = (
    "say which team key the drop server encrypts to (its fingerprint, as "
    "`securedrop-wm responder-key list` prints it on the server), or confirm that the "
    "drop has no team key yet"
)
TEAM_KEY_BAD_FINGERPRINT = "the drop's team key fingerprint must have 40 hex digits"
TEAM_KEY_NOT_GIVEN = (
    "the drop server encrypts to the team key {expected}: import that key's secret part "
    "here. A new key would leave every report the drop encrypts unreadable"
)
TEAM_KEY_MISMATCH = (
    "the team key you imported ({found}) is not the one the drop server encrypts to "
    "({expected}): every report would be unreadable here. Import the secret part of "
    "{expected}"
)


@dataclass(frozen=True)
class KeyChoice:
    """Import an armored secret key, or create one (``armored`` is ``None``)."""

    armored: str | None = None
    passphrase: str | None = None


@dataclass(frozen=True)
class SetupResult:
    """What first-run setup made: settings with the fingerprints, and the first admin."""

    settings: WorkstationSettings
    admin: accounts.NewAccount


def has_secret_key(ws: Workstation, fingerprint: str) -> bool:
    """Whether the workstation's keyring holds the secret part of ``fingerprint``."""
    return ws.gpg.has_secret_key(fingerprint)


def require_secret_key(ws: Workstation, fingerprint: str, what: str) -> None:
    """:raises SecretKeyMissingError: with what to do about it."""
    if not has_secret_key(ws, fingerprint):
        raise SecretKeyMissingError(
            f"the secret part of the {what} ({fingerprint}) is not in this workstation's "
            f"keyring: import it with `gpg --homedir {ws.settings.gpg_home} --import FILE` "
            "before decrypting"
        )


def strengthen_protection(ws: Workstation, actor: str, fingerprint: str, passphrase: str) -> bool:
    """Protect the secret key ``fingerprint`` again, with the same passphrase, at the S2K
    count the agent calibrated, when its key files hold a much lower one: keys of
    workstations set up before the count was raised (65536, some 4,500 times cheaper to
    guess offline) and keys imported in their OpenPGP protection.

    Call it once ``passphrase`` has unlocked the key. "Much lower" is below half the
    calibration: two calibrations on one machine differ by up to about 1.5 times with its
    load (203 to 313 million measured), and a re-protection costs a second or two, too
    much at every unlock. A failure leaves the key as it was; the next unlock tries again.

    :returns: whether the key was protected again.
    """
    try:
        counts = ws.gpg.s2k_counts(fingerprint)
        if not counts or min(counts) >= ws.gpg.calibrated_s2k_count() // 2:
            return False
        ws.gpg.reprotect_key(fingerprint, passphrase)
        now_counts = ws.gpg.s2k_counts(fingerprint)
    except CryptoError:
        return False
    with ws.write() as db:
        audit.record(
            db,
            ws.now(),
            actor,
            "key.protect",
            detail=f"{fingerprint}: S2K count {min(counts)} raised to {min(now_counts)}",
        )
    return True


def first_run(
    ws: Workstation,
    *,
    token: str,
    expected_token: str,
    team: KeyChoice,
    signing: KeyChoice,
    server_public_key: str,
    server_fingerprint: str,
    admin_username: str,
    admin_password: str,
    drop_team_fingerprint: str | None = None,
    new_drop: bool = True,
) -> SetupResult:
    """Set up a new workstation: keys, the pinned server key, the first admin.

    The setup token (printed by ``securedrop-wm workstation init``) proves that whoever
    uses the web page also has the workstation's console.

    The team key must be the one the drop encrypts to. With ``drop_team_fingerprint``
    (the drop server already has a team key), the imported key must be that one, and
    none is created. Without it, ``new_drop`` says the drop has no team key yet: the key
    imported or created here is registered on the server after setup. Neither is
    refused: a key the drop does not encrypt to would make every report unreadable.

    :raises SetupError: setup done already, a wrong token, a key that does not fit.
    :raises AccountError: the admin's name or password is not acceptable.
    """
    if accounts.has_accounts(ws):
        raise SetupError("this workstation is set up already")
    if not expected_token or not hmac.compare_digest(token.strip(), expected_token):
        raise SetupError("the setup token is wrong (see `securedrop-wm workstation init`)")
    accounts.check_password(admin_password)
    expected_team = _expected_team(drop_team_fingerprint, new_drop)
    if expected_team is not None and team.armored is None:
        raise SetupError(TEAM_KEY_NOT_GIVEN.format(expected=expected_team))
    pinned = server_fingerprint.replace(" ", "").upper()
    if len(pinned) != 40:
        raise SetupError("the server's fingerprint must have 40 hex digits")
    try:
        server_fprs = ws.gpg.import_keys(server_public_key)
    except CryptoError:
        raise SetupError("the server's signing key file holds no OpenPGP key") from None
    if pinned not in server_fprs:
        raise SetupError(
            "the server's signing key does not have the fingerprint you typed: check both "
            "against what `securedrop-wm signing-key export` printed on the server"
        )
    team_fpr = _key(ws, team, "securedrop-wm response team")
    if expected_team is not None and team_fpr != expected_team:
        raise SetupError(TEAM_KEY_MISMATCH.format(found=team_fpr, expected=expected_team))
    signing_fpr = _key(ws, signing, "securedrop-wm responder workstation")
    settings = pin_keys(ws, team=team_fpr, signing=signing_fpr, server=pinned)
    with ws.write() as db:
        admin = accounts.create_account(
            ws,
            db,
            admin_username.strip().lower() or "-",
            admin_username,
            admin_password,
            admin=True,
        )
        audit.record(
            db,
            ws.now(),
            admin.username,
            "setup",
            detail=f"team {team_fpr}, workstation {signing_fpr}, server {pinned}",
        )
    return SetupResult(settings, admin)


def _expected_team(fingerprint: str | None, new_drop: bool) -> str | None:
    """The team key fingerprint the drop encrypts to, if given.

    :raises SetupError: none given for a drop that is not new, or a malformed one.
    """
    given = "".join((fingerprint or "").split()).upper()
    if not given:
        if not new_drop:
            raise SetupError(TEAM_KEY_UNKNOWN)
        return None
    if len(given) != 40 or any(c not in "0123456789ABCDEF" for c in given):
        raise SetupError(TEAM_KEY_BAD_FINGERPRINT)
    return given


def _key(ws: Workstation, choice: KeyChoice, name: str) -> str:
    """Import the chosen secret key, or create one; return its fingerprint."""
    if choice.armored is None:
        return ws.gpg.create_key(name, choice.passphrase or None)
    try:
        fingerprints = ws.gpg.import_keys(choice.armored)
    except CryptoError:
        raise SetupError(f"the file given for the {name} holds no OpenPGP key") from None
    primary = fingerprints[0]
    if not has_secret_key(ws, primary):
        raise SetupError(f"the file given for the {name} holds only a public key")
    return primary


def pin_keys(ws: Workstation, *, team: str, signing: str, server: str) -> WorkstationSettings:
    """Write the three fingerprints into ``config.toml`` and into the running services."""
    path = ws.settings.config_path
    values = read_config_values(path)
    values.update(team_fingerprint=team, signing_fingerprint=signing, server_fingerprint=server)
    write_config(path, values)
    ws.settings = dataclasses.replace(
        ws.settings, team_fingerprint=team, signing_fingerprint=signing, server_fingerprint=server
    )
    return ws.settings


def public_key(ws: Workstation, fingerprint: str) -> str:
    """The armored public key of ``fingerprint`` (to carry to the drop server)."""
    return ws.gpg.export_public_key(fingerprint)


def setup_token(ws: Workstation) -> str:
    """The one-time setup token ``securedrop-wm workstation init`` wrote into secrets.toml."""
    raw = read_toml(ws.settings.config_path.with_name("secrets.toml"), "secrets file")
    token = raw.get("setup_token", "")
    return token if isinstance(token, str) else ""
