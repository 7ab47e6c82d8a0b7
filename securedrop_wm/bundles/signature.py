"""The detached signature over a bundle's manifest, checked against the pinned key.

gpg runs through :meth:`GnuPG.verify_detached_bytes` (its binary, its keyring lock);
this module reads gpg's status lines and says why a signature is refused.
"""

from __future__ import annotations

from ..crypto import GnuPG
from ..errors import CryptoError
from .errors import BadSignatureError, BundleError, UnknownSignerError

# What to do when the pinned key is missing from the keyring, on each machine.
_MISSING_KEY_HINTS = {
    "workstation": "register it again with `securedrop-wm workstation-key set FILE`",
    "server": "import the server's public key into the workstation's GnuPG home "
    "(`gpg --homedir GNUPG-HOME --import server.asc`)",
}


def _verify_signature(
    gpg: GnuPG, manifest: bytes, signature: bytes, signer: str, role: str
) -> None:
    """Check the detached signature of ``manifest`` by the pinned ``signer``.

    :raises SignatureError: (a subclass saying why) unless the pinned key made a good
        signature over exactly these bytes.
    :raises BundleError: gpg could not be run.
    """
    try:
        status = gpg.verify_detached_bytes(manifest, signature)
    except CryptoError as e:
        raise BundleError(str(e)) from e
    keywords = [s[0] for s in status]
    if "PLAINTEXT" in keywords:
        raise BadSignatureError("the signature is not a detached signature of the manifest")
    if keywords.count("NEWSIG") > 1:
        raise BadSignatureError("the manifest carries more than one signature")
    for s in status:
        if s[0] == "ERRSIG" and len(s) > 6 and s[6] == "9":
            keyid = s[1].upper()
            if signer.endswith(keyid):
                raise UnknownSignerError(
                    f"signed by the pinned {role} key {signer}, but that key is not in "
                    f"this keyring: {_MISSING_KEY_HINTS.get(role, 'import it first')}"
                )
            raise UnknownSignerError(
                f"signed by an unknown key {keyid}, not by the pinned {role} key {signer}"
            )
        if s[0] == "BADSIG":
            raise BadSignatureError(
                "the signature does not match the manifest: the bundle was tampered with"
            )
        if s[0] in ("EXPKEYSIG", "REVKEYSIG", "EXPSIG"):
            what = {"EXPKEYSIG": "has expired", "REVKEYSIG": "is revoked", "EXPSIG": "expired"}
            raise BadSignatureError(f"the signing key or signature {what[s[0]]} ({s[1]})")
    valid = [s for s in status if s[0] == "VALIDSIG" and len(s) >= 11]
    if not valid or "GOODSIG" not in keywords:
        raise BadSignatureError("the manifest has no valid signature (missing or damaged)")
    primary = valid[0][10].upper()
    if primary != signer and valid[0][1].upper() != signer:
        raise UnknownSignerError(
            f"signed by key {primary}, not by the pinned {role} key {signer}: refused"
        )
    if valid[0][9] != "00":
        raise BadSignatureError("the signature is not a signature over the manifest's bytes")
