"""Property-based fuzzing of bundle parsing, on both sides.

Bytes mutated anywhere in a genuine bundle (what a transfer machine or a bad USB stick
can do) and manifests rewritten and re-signed with the server key (what a compromised
server can do) are either refused with a BundleError, leaving nothing in the work
folder, or, when the change was harmless, verify to exactly the genuine manifest.
Nothing else: no other exception, no crash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from securedrop_wm.bundles import (
    BundleError,
    export_bundle,
    import_reply_bundle,
    verify_export_bundle,
)
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop
from tests.bundles.helpers import new_id, reply_bundle, server_state, sign_as, submit
from tests.conftest import Responders

from ..hostile_bundles.forge import Genuine, tar_bytes

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# One mutation: where (a fraction of the length), what (flip, cut, insert, overwrite).
mutations = st.lists(
    st.tuples(
        st.sampled_from(["flip", "cut", "insert", "overwrite", "zero"]),
        st.floats(min_value=0, max_value=1, allow_nan=False),
        st.binary(min_size=1, max_size=64),
    ),
    min_size=1,
    max_size=4,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)


def mutate(data: bytes, steps: list[tuple[str, float, bytes]]) -> bytes:
    buf = bytearray(data)
    for op, where, payload in steps:
        at = min(int(where * len(buf)), max(len(buf) - 1, 0))
        if op == "flip" and buf:
            buf[at] ^= payload[0] or 1
        elif op == "cut":
            del buf[at:]
        elif op == "insert":
            buf[at:at] = payload
        elif op == "overwrite":
            buf[at : at + len(payload)] = payload
        elif op == "zero":
            buf[at : at + 512] = bytes(len(buf[at : at + 512]))
    return bytes(buf)


def test_mutated_export_bundles_are_refused_or_verify_to_the_genuine_one(
    drop: Drop, workstation_gpg: GnuPG, tmp_path: Path
) -> None:
    submit(drop, {"photo.jpg": b"\xff\xd8" + bytes(range(256)) * 20})
    genuine_path = tmp_path / "genuine.tar"
    genuine = export_bundle(drop, genuine_path)
    data = genuine_path.read_bytes()
    server = drop.settings.signing_fingerprint
    work = tmp_path / "work"
    work.mkdir()

    @FUZZ
    @given(steps=mutations)
    def check(steps: list[tuple[str, float, bytes]]) -> None:
        path = tmp_path / "mutated.tar"
        path.write_bytes(mutate(data, steps))
        try:
            with verify_export_bundle(path, workstation_gpg, server, work) as verified:
                event("verified")
                assert verified.manifest == genuine
        except BundleError as e:
            event(type(e).__name__)
        assert list(work.iterdir()) == []

    check()


def test_signed_hostile_manifests_are_refused_or_consistent(
    drop: Drop, workstation_gpg: GnuPG, tmp_path: Path
) -> None:
    """A compromised server signs whatever manifest it likes; the reader still holds."""
    submit(drop, {"a.txt": b"attachment"})
    export_bundle(drop, tmp_path / "genuine.tar")
    genuine = Genuine(tmp_path / "genuine.tar")
    server = drop.settings.signing_fingerprint
    work = tmp_path / "work"
    work.mkdir()

    @FUZZ
    @given(path=st.lists(st.integers(min_value=0, max_value=7), max_size=4), value=json_values)
    def check(path: list[int], value: object) -> None:
        manifest: Any = genuine.manifest
        _replace(manifest, path, value)
        body = json.dumps(manifest).encode()
        members = genuine.with_manifest(body, sign_as(drop.settings.signing_gpg_home, server, body))
        bundle = tmp_path / "hostile.tar"
        bundle.write_bytes(tar_bytes(members))
        try:
            with verify_export_bundle(bundle, workstation_gpg, server, work) as verified:
                event("verified")
                for item in verified.manifest.items:  # what it lists is there, as listed
                    assert verified.item_path(item.id).stat().st_size == item.size
        except BundleError as e:
            event(type(e).__name__)
        assert list(work.iterdir()) == []

    check()


def _replace(node: Any, path: list[int], value: object) -> None:
    """Replace the part of a JSON document that ``path`` picks (by index among keys or
    items, modulo their number) with ``value``."""
    for step in path:
        children = list(node) if isinstance(node, dict) else node
        if not isinstance(node, dict | list) or not children:
            break
        key = children[step % len(children)] if isinstance(node, dict) else step % len(node)
        if not isinstance(node[key], dict | list):
            node[key] = value
            return
        node = node[key]
    if isinstance(node, dict) and node:
        node[next(iter(node))] = value
    elif isinstance(node, list) and node:
        node[0] = value


def test_mutated_reply_bundles_import_all_or_nothing(
    drop: Drop, signer_gpg: GnuPG, responders: Responders, tmp_path: Path
) -> None:
    submit(drop, {"a.txt": b"attachment"})
    data = reply_bundle(
        signer_gpg, responders, drop, tmp_path / "genuine.tar", acknowledged=[new_id()]
    ).read_bytes()

    @FUZZ
    @given(steps=mutations)
    def check(steps: list[tuple[str, float, bytes]]) -> None:
        path = tmp_path / "mutated.tar"
        path.write_bytes(mutate(data, steps))
        before = server_state(drop)
        try:
            result = import_reply_bundle(drop, path)
        except BundleError as e:
            event(type(e).__name__)
            assert server_state(drop) == before
            return
        event("imported")
        assert result.sequence == 1  # only the genuine bundle can import

    check()
