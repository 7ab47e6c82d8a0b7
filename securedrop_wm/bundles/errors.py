"""The refusals of a bundle: one class per reason, all under :class:`BundleError`.

docs/bundles.md lists which check raises which class.
"""

from __future__ import annotations

from ..errors import SecureDropError


class BundleError(SecureDropError):
    """Base class of every refusal of a bundle; nothing was imported when it is raised."""


class BundleFormatError(BundleError):
    """Raised when a bundle is not a tar of the expected layout or its manifest is malformed."""


class TruncatedBundleError(BundleFormatError):
    """Raised when a bundle file ends before its last member or its end-of-archive mark."""


class UnknownSchemaError(BundleFormatError):
    """Raised when a manifest's schema version is not one this code understands."""


class SignatureError(BundleError):
    """Base class of the signature refusals."""


class UnknownSignerError(SignatureError):
    """Raised when the manifest is signed by a key other than the pinned one."""


class BadSignatureError(SignatureError):
    """Raised when the signature does not verify, or its key has expired or been revoked."""


class HashMismatchError(BundleError):
    """Raised when a member's size or SHA-256 differs from what the manifest pins."""


class UnsafeMemberError(BundleError):
    """Base class of the refusals of a member that could write outside its folder."""


class PathEscapeError(UnsafeMemberError):
    """Raised when a member's name is absolute or climbs out with ``..``."""


class SpecialMemberError(UnsafeMemberError):
    """Raised when a member is a link, device, fifo or folder rather than a regular file."""


class BundleLimitError(BundleError):
    """Base class of the refusals of a bundle that is too big."""


class TooManyMembersError(BundleLimitError):
    """Raised when a bundle holds more members than the limits allow."""


class MemberTooLargeError(BundleLimitError):
    """Raised when a member, the manifest or the whole bundle is larger than allowed."""


class UnlistedMemberError(BundleError):
    """Raised when a member is present that the manifest does not list."""


class MissingMemberError(BundleError):
    """Raised when the manifest lists a member the bundle does not hold."""


class DuplicateIdError(BundleError):
    """Raised when an id appears twice in a manifest, or a member name twice in the tar."""


class ReplayError(BundleError):
    """Raised when a different bundle's sequence number is not newer than the last one."""


class WrongServerError(BundleError):
    """Raised when a manifest names another server (or workstation) than the pinned one."""
