"""The core's errors for cases, legal holds, imports, reply bundles and case exports, in
the responder's language.

The core (securedrop_wm.workstation) knows no Flask and raises its errors in English.
:func:`explain` gives a flashed message in the UI's language: the exact translation of a
message it knows (with the values the message carries, such as a fingerprint or a
number), else a translated sentence for the error's class (or the class of the bundle
error behind an import refusal) followed by the core's English as a technical detail.
Messages of accounts, setup, replies and templates are :mod:`.core_messages`'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from flask_babel import gettext as _

from securedrop_wm.bundles import errors as bundle_errors
from securedrop_wm.errors import CryptoError, KeyExpiredError, KeyMissingError, SecureDropError
from securedrop_wm.workstation import errors as ws_errors
from securedrop_wm.workstation.case_export import CaseExportError

from .core_messages import say

Translation = Callable[..., str]


def _gpg_import(home: str) -> str:
    """The command that imports a key into the keyring at ``home`` (not translated)."""
    return "gpg --homedir " + home + " --import FILE"


# Each core message (with {placeholders} for the values it carries) and its translation.
_MESSAGES: list[tuple[str, Translation]] = [
    # cases
    ("there is no case {case}", lambda case: _("There is no case %(case)s.", case=case)),
    ("unknown status {status}", lambda status: _("There is no such case status.")),
    ("a note may have at most {n} characters",
     lambda n: _("A note may have at most %(n)s characters.", n=n)),
    ("a note cannot be empty", lambda: _("A note cannot be empty.")),
    ("there is no such responder", lambda: _("There is no such responder.")),
    ("a label has 1 to 40 letters, digits, spaces or . : / + - _",
     lambda: _("A label has 1 to 40 letters, digits, spaces or . : / + - _")),
    # legal hold
    ("give a reason for the legal hold", lambda: _("Give a reason for the legal hold.")),
    ("the reason is too long (at most {n} characters)",
     lambda n: _("The reason is too long: at most %(n)s characters.", n=n)),
    ("this case is on legal hold already", lambda: _("This case is on legal hold already.")),
    ("this case is not on legal hold", lambda: _("This case is not on legal hold.")),
    ("only an admin may release a legal hold",
     lambda: _("Only an admin may release a legal hold.")),
    # imports
    ("bundle refused: no such file", lambda: _("The bundle was refused: the file is gone.")),
    ("bundle refused: it is larger than this workstation accepts",
     lambda: _("The bundle was refused: it is larger than this workstation accepts.")),
    ("bundle refused: source {source} is not listed",
     lambda source: _("The bundle was refused: source %(source)s is not listed in it.",
                      source=source)),
    ("bundle refused: the key of source {source} is not the one the manifest names",
     lambda source: _("The bundle was refused: the key of source %(source)s is not the one "
                      "its list names.", source=source)),
    ("bundle refused: key {fingerprint} could not be imported",
     lambda fingerprint: _("The bundle was refused: the key %(fingerprint)s could not be "
                           "imported.", fingerprint=fingerprint)),
    ("bundle refused: item {item} decrypts to more than {limit} bytes, more than its "
     "ciphertext or a message can hold (compressed data the drop never writes)",
     lambda item, limit: _("The bundle was refused: item %(item)s decrypts to more than "
                           "%(limit)s bytes, which the drop never writes.",
                           item=item, limit=limit)),
    ("bundle refused: item {item} could not be decrypted ({reason})",
     lambda item, reason: _("The bundle was refused: item %(item)s could not be decrypted "
                            "(%(reason)s).", item=item, reason=reason)),
    ("bundle refused: bundle sequence {seq} is not newer than the last imported ({last}): "
     "an old or replayed bundle, refused",
     lambda seq, last: _("The bundle was refused: bundle %(seq)s is not newer than the last "
                         "one imported (%(last)s). It is an old or replayed bundle.",
                         seq=seq, last=last)),
    ("the team key's passphrase is wrong: type it again",
     lambda: _("The team key's passphrase is wrong: type it again.")),
    ("the team's secret key is locked: type its passphrase and import again",
     lambda: _("The team's secret key is locked: type its passphrase and import again.")),
    ("the team's secret key could not be unlocked: the passphrase is wrong (or item {item} "
     "is not encrypted to the team key)",
     lambda item: _("The team's secret key could not be unlocked: the passphrase is wrong "
                    "(or item %(item)s is not encrypted to the team key).", item=item)),
    ("the secret part of the team key ({fingerprint}) is not in this workstation's keyring: "
     "import it with `gpg --homedir {home} --import FILE` before decrypting",
     lambda fingerprint, home: _("The secret part of the team key (%(fingerprint)s) is not "
                                 "in this workstation's keyring: import it with %(command)s "
                                 "before decrypting.", fingerprint=fingerprint,
                                 command=_gpg_import(home))),
    ("the team key is not set up yet (first-run setup)",
     lambda: _("The team key is not set up yet: finish the first-run setup.")),
    ("the workstation signing key is not set up yet",
     lambda: _("The workstation's signing key is not set up yet: finish the first-run "
               "setup.")),
    ("the server's signing key is not pinned yet",
     lambda: _("The drop server's signing key is not set up yet: finish the first-run "
               "setup.")),
    # reply bundles
    ("there is nothing to send: no reply and no new submission",
     lambda: _("There is nothing to send: no reply and no new submission.")),
    ("the reply bundle could not be written: {reason}",
     lambda reason: _("The reply bundle could not be written: %(reason)s", reason=reason)),
    # case exports
    ("the recipient's key file is too large to be one public key",
     lambda: _("The recipient's key file is too large to be one public key.")),
    ("the recipient's key file holds no OpenPGP key",
     lambda: _("The recipient's key file holds no OpenPGP key.")),
    ("the recipient's key file holds several keys: give one",
     lambda: _("The recipient's key file holds several keys: give one.")),
    ("the recipient's key {fingerprint} is revoked",
     lambda fingerprint: _("The recipient's key %(fingerprint)s is revoked.",
                           fingerprint=fingerprint)),
    ("the recipient's key {fingerprint} has expired",
     lambda fingerprint: _("The recipient's key %(fingerprint)s has expired.",
                           fingerprint=fingerprint)),
]  # fmt: skip

# A sentence for each kind of error, most specific first; the English follows it.
_KINDS: list[tuple[type[Exception], Callable[[], str]]] = [
    (bundle_errors.ReplayError,
     lambda: _("The bundle was refused: it is older than the last bundle imported.")),
    (bundle_errors.WrongServerError,
     lambda: _("The bundle was refused: it comes from another drop server, or it is not an "
               "export bundle.")),
    (bundle_errors.SignatureError,
     lambda: _("The bundle was refused: its signature is not the drop server's.")),
    (bundle_errors.HashMismatchError,
     lambda: _("The bundle was refused: part of it changed after it was signed.")),
    (bundle_errors.TruncatedBundleError,
     lambda: _("The bundle was refused: the file is cut short. Copy it again.")),
    (bundle_errors.BundleLimitError,
     lambda: _("The bundle was refused: it is larger than this workstation accepts.")),
    (bundle_errors.UnsafeMemberError,
     lambda: _("The bundle was refused: it holds a file that is not safe to unpack.")),
    (bundle_errors.BundleError, lambda: _("The bundle was refused: it is damaged or not a "
                                          "bundle of this drop.")),
    (ws_errors.ImportRefusedError, lambda: _("The bundle was refused.")),
    (ws_errors.SecretKeyLockedError, lambda: _("The team's secret key could not be unlocked.")),
    (ws_errors.SecretKeyMissingError, lambda: _("A secret key is missing from this "
                                                "workstation's keyring.")),
    (ws_errors.NotConfiguredError, lambda: _("Finish the first-run setup first.")),
    (ws_errors.PermissionDeniedError, lambda: _("Only an admin may do that.")),
    (ws_errors.CaseNotFoundError, lambda: _("There is no such case or file.")),
    (ws_errors.CaseError, lambda: _("The case was not changed.")),
    (ws_errors.ReplyError, lambda: _("The reply bundle was not made.")),
    (CaseExportError, lambda: _("The case could not be exported.")),
    (KeyExpiredError, lambda: _("A key has expired or is revoked.")),
    (KeyMissingError, lambda: _("A key is missing from this workstation's keyring.")),
    (CryptoError, lambda: _("GnuPG could not do this.")),
]  # fmt: skip


@cache
def _patterns() -> list[tuple[re.Pattern[str], Translation]]:
    found = []
    for message, translate in _MESSAGES:
        regex = ""
        for i, part in enumerate(re.split(r"\{(\w+)\}", message)):
            regex += re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)"
        found.append((re.compile(regex, re.DOTALL), translate))
    return found


def _kind(error: BaseException) -> str:
    """The sentence for ``error``'s class, or for the bundle error behind it."""
    for candidate in (error.__cause__, error):
        if candidate is None:
            continue
        for kind, sentence in _KINDS:
            if isinstance(candidate, kind):
                return sentence()
    return _("The action was refused.")


def explain(error: SecureDropError) -> str:
    """``error``'s message in the responder's language (see the module's docstring)."""
    text = str(error)
    known = say(error)
    if known != text:
        return known
    for pattern, translate in _patterns():
        match = pattern.fullmatch(text)
        if match is not None:
            return translate(**match.groupdict())
    return _("%(what)s Details, in English: %(detail)s", what=_kind(error), detail=text)
