"""The core's messages for accounts, setup, replies and templates, in the user's language.

The core (securedrop_wm.workstation) knows no Flask and raises its errors in English;
:func:`say` finds the message among those it knows and returns its translation, with
the values the message carries (a fingerprint, a number), or the English as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from flask_babel import gettext as _

from securedrop_wm.errors import SecureDropError
from securedrop_wm.workstation import accounts, enrolment, keys, replies, reply_templates

# Each core message (with {placeholders} where it carries a value) and its translation.
Translation = Callable[..., str]
_MESSAGES: list[tuple[str, Translation]] = [
    ("a password needs at least {n} characters",
     lambda n: _("A password needs at least %(n)s characters.", n=n)),
    ("a password may have at most {n} characters",
     lambda n: _("A password may have at most %(n)s characters.", n=n)),
    ("a username has 2 to 32 characters: lower-case letters, digits, '.', '_', '-'",
     lambda: _("A username has 2 to 32 characters: lower-case letters, digits, '.', '_', '-'.")),
    ("the username '{name}' is taken",
     lambda name: _("The username %(name)s is taken.", name=name)),
    (accounts.NO_SUCH_ACCOUNT, lambda: _("There is no such account.")),
    (accounts.OWN_RESET,
     lambda: _("You cannot reset your own account here: change your password on your "
               "account page.")),
    ("you cannot remove your own account", lambda: _("You cannot remove your own account.")),
    ("the last admin cannot be removed", lambda: _("The last admin cannot be removed.")),
    ("only an admin may do this", lambda: _("Only an admin may do that.")),
    ("the current password is wrong", lambda: _("The current password is wrong.")),
    (enrolment.REUSED_ONE_TIME,
     lambda: _("Choose a password of your own, not the one-time password.")),
    (enrolment.WRONG_NEW_CODE,
     lambda: _("That code does not match the new secret: scan the QR code (or type the "
               "secret) again and give the code the authenticator shows now.")),
    (enrolment.NOTHING_TO_CONFIRM,
     lambda: _("There is no new authenticator secret to confirm: start again.")),
    (keys.TEAM_KEY_UNKNOWN,
     lambda: _("Say which team key the drop server encrypts to (its fingerprint, as "
               "`securedrop-wm responder-key list` prints it on the server), or confirm "
               "that the drop has no team key yet.")),
    (keys.TEAM_KEY_BAD_FINGERPRINT,
     lambda: _("The drop's team key fingerprint must have 40 hex digits.")),
    (keys.TEAM_KEY_NOT_GIVEN,
     lambda expected: _("The drop server encrypts to the team key %(expected)s: import "
                        "that key's secret part here. A new key would leave every report "
                        "the drop encrypts unreadable.", expected=expected)),
    (keys.TEAM_KEY_MISMATCH,
     lambda found, expected: _("The team key you imported (%(found)s) is not the one the "
                               "drop server encrypts to (%(expected)s): every report would "
                               "be unreadable here. Import the secret part of %(expected)s.",
                               found=found, expected=expected)),
    (replies.EMPTY_REPLY, lambda: _("A reply cannot be empty.")),
    (replies.LONG_REPLY,
     lambda: _("A reply may have at most %(n)s characters.", n=replies.MAX_REPLY_CHARS)),
    (replies.NO_QUEUED_REPLY, lambda: _("There is no such queued reply in this case.")),
    (replies.REPLY_LEFT,
     lambda: _("This reply has left in a reply bundle: it can no longer be withdrawn.")),
    (reply_templates.NO_TEMPLATE, lambda: _("There is no such reply template.")),
    (reply_templates.BAD_NAME,
     lambda: _("A template needs a name of 1 to %(n)s characters.",
               n=reply_templates.MAX_NAME_CHARS)),
    (reply_templates.BAD_LANGUAGE,
     lambda: _("A template's language is a language code such as en, fr or pt-BR.")),
    (reply_templates.EMPTY_TEMPLATE, lambda: _("A template needs a text.")),
    (reply_templates.LONG_TEMPLATE,
     lambda: _("A template may have at most %(n)s characters.", n=replies.MAX_REPLY_CHARS)),
    (reply_templates.TAKEN,
     lambda: _("A template of that name exists already in that language.")),
]  # fmt: skip


@cache
def _patterns() -> list[tuple[re.Pattern[str], Translation]]:
    found = []
    for message, translate in _MESSAGES:
        regex, named = "", set()
        for i, part in enumerate(re.split(r"\{(\w+)\}", message)):
            if i % 2 == 0:
                regex += re.escape(part)
            else:  # a value; the same one again must be the same text
                regex += f"(?P={part})" if part in named else f"(?P<{part}>.+?)"
                named.add(part)
        found.append((re.compile(regex, re.DOTALL), translate))
    return found


def say(error: SecureDropError | str) -> str:
    """The error's message in the user's language, or as it is if none is known."""
    text = str(error)
    for pattern, translate in _patterns():
        match = pattern.fullmatch(text)
        if match is not None:
            return translate(**match.groupdict())
    return text
