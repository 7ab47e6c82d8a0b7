"""Errors of the responder workstation: each derives from the core's one base class."""

from __future__ import annotations

from ..errors import SecureDropError


class WorkstationError(SecureDropError):
    """Base class of the workstation's errors."""


class NotConfiguredError(WorkstationError):
    """Raised when an action needs a key or fingerprint the first-run setup has not set."""


class SetupError(WorkstationError):
    """Raised when first-run setup is refused (done already, bad token, bad key)."""


class AccountError(WorkstationError):
    """Raised when an account cannot be created or changed (name taken, weak password)."""


class LoginError(WorkstationError):
    """Raised when a login fails; the message never says which factor was wrong."""


class LoginThrottledError(LoginError):
    """Raised when an account has failed too often and must wait before trying again."""


class PermissionDeniedError(WorkstationError):
    """Raised when a responder tries an admin's action."""


class CaseNotFoundError(WorkstationError):
    """Raised when no case, submission or note has the id asked for."""


class CaseError(WorkstationError):
    """Raised when a change to a case is refused (unknown status, empty note, ...)."""


class ImportRefusedError(WorkstationError):
    """Raised when a bundle is refused before anything is imported; says why."""


class SecretKeyMissingError(WorkstationError):
    """Raised when the team's secret key is not in the workstation's keyring."""


class SecretKeyLockedError(WorkstationError):
    """Raised when the team's secret key needs a passphrase that was not given or is wrong."""


class ReplyError(WorkstationError):
    """Raised when a reply cannot be queued or exported."""


class AuditChainError(WorkstationError):
    """Raised when the audit log's hash chain does not verify: someone edited it."""
