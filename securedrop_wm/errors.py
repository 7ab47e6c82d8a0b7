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
