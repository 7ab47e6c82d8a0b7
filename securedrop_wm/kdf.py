"""Key derivation: a codename becomes a lookup id and a key passphrase, via Argon2id.

One Argon2id run over the codename, salted with a server-side secret salt, yields a
master secret; HMAC-SHA256 under two server-side peppers splits it into two values that
reveal nothing about each other. Whoever seizes the database alone cannot test codename
guesses, because the salt and peppers live in ``secrets.toml``; whoever has those too
pays one Argon2id run per guess. Parameters and their measured cost: docs/kdf.md.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import NewType

from argon2.low_level import Type, hash_secret_raw

from .codenames import Codename
from .settings import KdfParams

SourceId = NewType("SourceId", str)
SourcePassphrase = NewType("SourcePassphrase", str)


@dataclass(frozen=True)
class Peppers:
    """Server-side secrets mixed into every derivation."""

    salt: bytes
    lookup: bytes
    key: bytes


@dataclass(frozen=True)
class DerivedSecrets:
    """What a codename turns into; the codename itself is discarded."""

    source_id: SourceId
    passphrase: SourcePassphrase


def derive(codename: Codename, peppers: Peppers, params: KdfParams) -> DerivedSecrets:
    """Derive the lookup id and key passphrase of ``codename``."""
    master = hash_secret_raw(
        secret=codename.encode("utf-8"),
        salt=peppers.salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=32,
        type=Type.ID,
    )
    source_id = hmac.new(peppers.lookup, b"lookup-id\0" + master, hashlib.sha256).hexdigest()
    passphrase = hmac.new(peppers.key, b"key-passphrase\0" + master, hashlib.sha256).hexdigest()
    return DerivedSecrets(SourceId(source_id), SourcePassphrase(passphrase))
