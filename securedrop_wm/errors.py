"""The error tree of the core: every error a caller may handle derives from one base."""

from __future__ import annotations


class SecureDropError(Exception):
    """Base class of every error the core raises on purpose."""


class SettingsError(SecureDropError):
    """Raised at start-up when a setting is missing or invalid; the message names it."""


class CodenameError(SecureDropError):
    """Raised when a string is not a well-formed codename (wrong words or count)."""


class SourceNotFoundError(SecureDropError):
    """Raised when a well-formed codename matches no source."""


class CryptoError(SecureDropError):
    """Base class of the GnuPG errors."""


class KeyMissingError(CryptoError):
    """Raised when a configured key is not in the keyring."""


class KeyExpiredError(CryptoError):
    """Raised when a key needed for encryption has expired or been revoked."""


class KeyUnusableError(CryptoError):
    """Raised when a key exists but cannot encrypt or sign (no such capability)."""


class KeyRefusedError(CryptoError):
    """Raised when a key given to the server is refused (a secret key, expired, cannot
    encrypt or sign, the team key removed); the message says why. Nothing changed."""


class EncryptionError(CryptoError):
    """Raised when gpg fails to encrypt; nothing is stored."""


class DecryptionError(CryptoError):
    """Raised when gpg fails to decrypt (wrong passphrase, missing secret key, damage)."""


class OutputTooLargeError(DecryptionError):
    """Raised when a plaintext would be larger than the limit the caller set (compressed
    data can inflate far beyond its size); what was written of it is removed."""


class StoreError(SecureDropError):
    """Base class of the encrypted store's errors."""


class StoreFullError(StoreError):
    """Raised when the disk under the store is full; the partial file is removed."""


class UnsafePathError(StoreError):
    """Raised when a name would resolve outside its folder."""


class ReportError(SecureDropError):
    """Raised when a report is refused (empty, too large, malformed); nothing is kept."""


class UnknownDeskError(ReportError):
    """Raised when a report names no configured desk (or none, where the drop has
    several), or its files were encrypted to other desks than the report's."""


class FileNameError(ReportError):
    """Raised when an attached file's name is refused; nothing of the file is kept.

    ``reason`` says why, so that a UI can tell the source in their own language:
    ``"length"`` (empty or longer than 255 characters), ``"control"`` (a control
    character) or ``"path"`` (a folder path, ``.`` or ``..``). The message is English, for
    the command line, logs and tests.
    """

    REASONS = ("length", "control", "path")

    reason: str

    def __init__(self, reason: str, message: str) -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown file name reason {reason!r}")
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple[type[FileNameError], tuple[str, str]]:
        return (type(self), (self.reason, str(self)))


class ReportTooLargeError(ReportError):
    """Raised when a report's files exceed the configured limit."""


class EmptyReportError(ReportError):
    """Raised when a report has neither text nor files."""


class OnionError(SecureDropError):
    """Base class of every error :mod:`securedrop_wm.onion` (and its key dirs) raises."""


class TorNotRunningError(OnionError):
    """Nothing answers at the control port or socket, or tor went away."""


class TorAuthenticationError(OnionError):
    """Tor refused the control connection: wrong or missing password, or an
    authentication cookie that cannot be read."""


class TorTooOldError(OnionError):
    """The tor at the other end is too old for what was asked of it (v3 onion
    services need :data:`securedrop_wm.onion.MIN_TOR_VERSION`, client authorization
    :data:`securedrop_wm.onion.MIN_CLIENT_AUTH_VERSION`)."""


class TorLaunchError(OnionError):
    """A tor of our own could not be started, or did not bootstrap in time."""


class KeyFileError(OnionError):
    """A key file in a key dir cannot be read or written, is corrupt, is readable
    by other users, or does not match the address recorded beside it."""


class ClientKeyError(OnionError):
    """A client name or public key is malformed or unknown, or a service that must
    require client authorization has no authorized client (it would be public)."""


class PublicationTimeoutError(OnionError):
    """Tor did not upload the service's descriptor in time. The service has been
    removed again; nothing stays half-published."""


class SourceRemovedError(SourceNotFoundError):
    """Raised when a codename's source existed but was removed by the retention rules
    (never reported within ``unused_source_days``, or everything of it gone for
    ``source_retention_days``): a UI tells the source their data was removed."""
