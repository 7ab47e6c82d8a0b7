"""Argon2id derivation: deterministic per server, different across servers and uses."""

from __future__ import annotations

import secrets

from securedrop_wm.codenames import generate_codename
from securedrop_wm.kdf import Peppers, derive
from securedrop_wm.settings import KdfParams

FAST = KdfParams(time_cost=1, memory_kib=1024, parallelism=1)


def _peppers() -> Peppers:
    return Peppers(secrets.token_bytes(32), secrets.token_bytes(32), secrets.token_bytes(32))


def test_same_codename_same_server_same_secrets() -> None:
    peppers, codename = _peppers(), generate_codename()
    assert derive(codename, peppers, FAST) == derive(codename, peppers, FAST)


def test_lookup_id_and_passphrase_are_unrelated_and_server_specific() -> None:
    codename = generate_codename()
    a = derive(codename, _peppers(), FAST)
    b = derive(codename, _peppers(), FAST)
    assert a.source_id != b.source_id and a.passphrase != b.passphrase
    assert a.source_id != a.passphrase
    assert codename not in a.source_id + a.passphrase
    assert len(a.source_id) == 64 and len(a.passphrase) == 64
