"""Every refusal of a bad bundle, crafted for real: the message says why and nothing is
imported (the server's store, replies and acknowledgements are exactly as before)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from securedrop_wm import bundles
from securedrop_wm.bundles import (
    BadSignatureError,
    BundleError,
    BundleFormatError,
    DuplicateIdError,
    HashMismatchError,
    Limits,
    MemberTooLargeError,
    MissingMemberError,
    PathEscapeError,
    ReplayError,
    ReplyFile,
    SpecialMemberError,
    TooManyMembersError,
    TruncatedBundleError,
    UnknownSchemaError,
    UnknownSignerError,
    UnlistedMemberError,
    WrongServerError,
    export_bundle,
    import_reply_bundle,
    verify_export_bundle,
)
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop
from tests.conftest import Responders, short_tempdir

from .helpers import (
    new_id,
    read_members,
    reply_bundle,
    server_state,
    sign_as,
    source_uuid,
    submit,
    write_members,
)

Members = list[tuple[tarfile.TarInfo, bytes]]


@pytest.fixture
def good(
    drop: Drop, signer_gpg: GnuPG, responders: Responders, tmp_path: Path
) -> tuple[Path, list[str]]:
    """A valid reply bundle (two replies, one acknowledgement) and the acknowledged ids."""
    sent = submit(drop, {"a.txt": b"attachment"})
    with drop.sessions() as db:
        from securedrop_wm.models import Submission

        acks = [s.uuid for s in db.query(Submission)]
    sid = source_uuid(drop, sent.login)
    replies = []
    for n in range(2):
        path = tmp_path / f"reply{n}.gpg"
        signer_gpg.encrypt_bytes(f"reply {n}".encode(), [responders.team_fingerprint], path)
        replies.append(ReplyFile(new_id(), sid, path))
    bundle = reply_bundle(
        signer_gpg,
        responders,
        drop,
        tmp_path / "good.tar",
        sequence=5,
        replies=replies,
        acknowledged=acks,
    )
    return bundle, acks


def _manifest(members: Members) -> dict[str, object]:
    value = json.loads(members[0][1])
    assert isinstance(value, dict)
    return value


def _resign(members: Members, manifest: dict[str, object], home: Path, fpr: str) -> Members:
    data = json.dumps(manifest).encode()
    return [
        (members[0][0], data),
        (members[1][0], sign_as(home, fpr, data)),
        *members[2:],
    ]


def _reg(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _link(name: str, kind: bytes, target: str = "/etc/passwd") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info


def _assert_refused(
    drop: Drop,
    path: Path,
    error: type[BundleError],
    says: str,
    limits: Limits = bundles.REPLY_LIMITS,
) -> None:
    before = server_state(drop)
    with pytest.raises(error) as raised:
        import_reply_bundle(drop, path, limits)
    assert says in str(raised.value)
    assert server_state(drop) == before
    tmp = drop.settings.data_dir / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


# Each case turns the members of a good bundle into a bad one.
Tamper = Callable[[Members, Responders, list[str]], Members]


def _change_sequence(m: Members, r: Responders, acks: list[str]) -> Members:
    manifest = _manifest(m)
    manifest["sequence"] = 99
    return [(m[0][0], json.dumps(manifest).encode()), *m[1:]]


def _signed_by(attr: str) -> Tamper:
    def tamper(m: Members, r: Responders, acks: list[str]) -> Members:
        return _resign(m, _manifest(m), r.home, getattr(r, attr))

    return tamper


def _signed_by_stranger(m: Members, r: Responders, acks: list[str]) -> Members:
    """Signed with a key the server has never seen (made on the spot, thrown away)."""
    home = short_tempdir("sdwm-stranger-")
    gpg = GnuPG(home)
    try:
        fpr = gpg.create_key("Stranger", None)
        return _resign(m, _manifest(m), home, fpr)
    finally:
        gpg.close()
        shutil.rmtree(home, ignore_errors=True)


def _with_manifest(**changes: object) -> Tamper:
    def tamper(m: Members, r: Responders, acks: list[str]) -> Members:
        manifest = _manifest(m)
        for key, value in changes.items():
            manifest[key] = value(manifest, acks) if callable(value) else value
        return _resign(m, manifest, r.home, r.workstation_fingerprint)

    return tamper


def _signed_raw(data: bytes) -> Tamper:
    """A manifest of these bytes, properly signed by the workstation."""

    def tamper(m: Members, r: Responders, acks: list[str]) -> Members:
        sig = sign_as(r.home, r.workstation_fingerprint, data)
        return [(m[0][0], data), (m[1][0], sig), *m[2:]]

    return tamper


def _flip_byte(m: Members, r: Responders, acks: list[str]) -> Members:
    info, data = m[2]
    return [*m[:2], (info, data[:-1] + bytes([data[-1] ^ 1])), *m[3:]]


def _longer(m: Members, r: Responders, acks: list[str]) -> Members:
    info, data = m[2]
    return [*m[:2], (info, data + b"\0"), *m[3:]]


def _add(info: tarfile.TarInfo, at: int = 2) -> Tamper:
    def tamper(m: Members, r: Responders, acks: list[str]) -> Members:
        return [*m[:at], (info, b"pwned" if info.isreg() else b""), *m[at:]]

    return tamper


def _replace_member(make: Callable[[str], tarfile.TarInfo]) -> Tamper:
    """Swap a listed reply for a special member of the same name."""

    def tamper(m: Members, r: Responders, acks: list[str]) -> Members:
        return [*m[:2], (make(m[2][0].name), b""), *m[3:]]

    return tamper


def _drop_member(m: Members, r: Responders, acks: list[str]) -> Members:
    return [*m[:2], *m[3:]]


def _twice(m: Members, r: Responders, acks: list[str]) -> Members:
    return [*m, m[2]]


def _swap_first(m: Members, r: Responders, acks: list[str]) -> Members:
    return [m[1], m[0], *m[2:]]


def _no_signature(m: Members, r: Responders, acks: list[str]) -> Members:
    return [m[0], *m[2:]]


def _duplicate_reply(manifest: dict[str, object], acks: list[str]) -> object:
    replies = manifest["replies"]
    assert isinstance(replies, list)
    return [replies[0], replies[0]]


CASES: list[tuple[str, Tamper, type[BundleError], str]] = [
    ("bad signature", _change_sequence, BadSignatureError, "tampered"),
    ("unknown signer", _signed_by_stranger, UnknownSignerError, "unknown key"),
    ("wrong signer", _signed_by("second_fingerprint"), UnknownSignerError, "not by the pinned"),
    ("team key signer", _signed_by("team_fingerprint"), UnknownSignerError, "not by the pinned"),
    ("bad hash", _flip_byte, HashMismatchError, "SHA-256"),
    ("bad size", _longer, HashMismatchError, "bytes but the manifest says"),
    ("unknown schema", _with_manifest(schema=2), UnknownSchemaError, "schema version 2"),
    ("wrong format", _with_manifest(format="sdwm-export"), BundleFormatError, "not a sdwm-"),
    (
        "other server",
        _with_manifest(server_id="AB" * 20),
        WrongServerError,
        "meant for server ABAB",
    ),
    ("dot-dot path", _add(_reg("replies/../../escape")), PathEscapeError, "outside"),
    ("absolute path", _add(_reg("/tmp/escape")), PathEscapeError, "outside"),
    ("escape before manifest", _add(_reg("../x"), at=0), PathEscapeError, "outside"),
    ("symlink", _replace_member(lambda n: _link(n, tarfile.SYMTYPE)), SpecialMemberError, "link"),
    ("hard link", _replace_member(lambda n: _link(n, tarfile.LNKTYPE)), SpecialMemberError, "link"),
    (
        "device",
        _replace_member(lambda n: _link(n, tarfile.CHRTYPE)),
        SpecialMemberError,
        "device",
    ),
    ("fifo", _add(_link("replies/fifo", tarfile.FIFOTYPE)), SpecialMemberError, "fifo"),
    ("folder", _add(_link("replies", tarfile.DIRTYPE)), SpecialMemberError, "folder"),
    (
        "unlisted member",
        _add(_reg(f"replies/{new_id()}.gpg"), at=3),
        UnlistedMemberError,
        "not listed",
    ),
    ("missing member", _drop_member, MissingMemberError, "lacks 1 member"),
    ("member twice", _twice, DuplicateIdError, "appears twice"),
    ("duplicate reply id", _with_manifest(replies=_duplicate_reply), DuplicateIdError, "twice"),
    (
        "duplicate ack",
        _with_manifest(acknowledged=lambda m, acks: [acks[0], acks[0]]),
        DuplicateIdError,
        "twice",
    ),
    ("manifest not JSON", _signed_raw(b"\xff{"), BundleFormatError, "not valid JSON"),
    ("manifest nested", _signed_raw(b"[" * 100_000), BundleFormatError, "not valid JSON"),
    ("missing field", _with_manifest(sequence=None), BundleFormatError, "'sequence'"),
    ("manifest not first", _swap_first, BundleFormatError, "first member"),
    ("unsigned", _no_signature, BundleFormatError, "not signed"),
    ("malformed id", _with_manifest(acknowledged=["../../etc"]), BundleFormatError, "UUID"),
    # The head of the workstation's audit chain: optional, but 64 lowercase hex if there
    ("audit head short", _with_manifest(audit_head="ab" * 31), BundleFormatError, "audit_head"),
    ("audit head upper", _with_manifest(audit_head="AB" * 32), BundleFormatError, "audit_head"),
    ("audit head null", _with_manifest(audit_head=None), BundleFormatError, "audit_head"),
    ("audit head number", _with_manifest(audit_head=7), BundleFormatError, "audit_head"),
    (
        "audit head list",
        _with_manifest(audit_head=lambda m, acks: ["0" * 64]),
        BundleFormatError,
        "audit_head",
    ),
    (
        "audit head markup",
        _with_manifest(audit_head="<script>" + "0" * 56),
        BundleFormatError,
        "audit_head",
    ),
]


@pytest.mark.parametrize(
    ("tamper", "error", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_tampered_reply_bundle_is_refused_and_nothing_is_imported(
    drop: Drop,
    responders: Responders,
    good: tuple[Path, list[str]],
    tmp_path: Path,
    tamper: Tamper,
    error: type[BundleError],
    says: str,
) -> None:
    path, acks = good
    bad = write_members(tmp_path / "bad.tar", tamper(read_members(path), responders, acks))
    _assert_refused(drop, bad, error, says)
    # The good bundle still imports afterwards: the refusal left nothing half-done.
    assert import_reply_bundle(drop, path).replies_stored == 2


def test_truncated_bundles_are_refused(
    drop: Drop, good: tuple[Path, list[str]], tmp_path: Path
) -> None:
    path, _ = good
    data = path.read_bytes()
    members = read_members(path)
    first, last = members[2][0], members[-1][0]
    # In the manifest; just before a member; in a reply; between two members; after the
    # last member but before the end-of-archive mark (the tar pads with zeros past it).
    cuts = (700, first.offset - 1, first.offset_data + 10, last.offset, last.offset_data + 512)
    assert len(data) > last.offset_data + 512 + 1024
    for cut in cuts:
        bad = tmp_path / f"cut{cut}.tar"
        bad.write_bytes(data[:cut])
        _assert_refused(drop, bad, TruncatedBundleError, "ends")
    for garbage in (b"", b"not a tar at all" * 100):
        bad = tmp_path / "garbage.tar"
        bad.write_bytes(garbage)
        _assert_refused(drop, bad, BundleFormatError, "not a tar")


def test_limits_refuse_too_many_or_too_large_members(
    drop: Drop, good: tuple[Path, list[str]]
) -> None:
    path, _ = good
    size = path.stat().st_size
    small = Limits(max_members=1, max_member_bytes=1 << 20, max_total_bytes=1 << 30)
    _assert_refused(drop, path, TooManyMembersError, "more than 1", small)
    tiny = Limits(max_members=10, max_member_bytes=100, max_total_bytes=1 << 30)
    _assert_refused(drop, path, MemberTooLargeError, "more than the limit of 100", tiny)
    whole = Limits(max_members=10, max_member_bytes=1 << 20, max_total_bytes=size - 1)
    _assert_refused(drop, path, MemberTooLargeError, f"bundle is {size} bytes", whole)
    manifest = Limits(10, 1 << 20, 1 << 30, max_manifest_bytes=64)
    _assert_refused(drop, path, MemberTooLargeError, "the manifest is", manifest)


def test_unlisted_members_beyond_the_limit_stop_the_read(
    drop: Drop, responders: Responders, good: tuple[Path, list[str]], tmp_path: Path
) -> None:
    path, _ = good
    flood = [(_reg(f"replies/{new_id()}.gpg"), b"x") for _ in range(50)]
    bad = write_members(tmp_path / "flood.tar", [*read_members(path)[:2], *flood])
    limits = Limits(max_members=10, max_member_bytes=1 << 20, max_total_bytes=1 << 30)
    # The first extra member is already refused: nothing of the flood is read further.
    _assert_refused(drop, bad, UnlistedMemberError, "not listed", limits)


def test_replay_of_an_older_bundle_is_refused_but_the_same_bundle_is_a_no_op(
    drop: Drop,
    signer_gpg: GnuPG,
    responders: Responders,
    good: tuple[Path, list[str]],
    tmp_path: Path,
) -> None:
    path, _ = good
    first = import_reply_bundle(drop, path)
    assert first.replies_stored == 2 and not first.already_imported
    after = server_state(drop)
    # The same bundle again: "already imported", nothing changed
    again = import_reply_bundle(drop, path)
    assert again.already_imported and again.replies_stored == 0
    assert server_state(drop) == after
    # A different bundle with an old or equal sequence number: refused as a replay
    for sequence in (4, 5):
        older = reply_bundle(
            signer_gpg, responders, drop, tmp_path / f"s{sequence}.tar", sequence=sequence
        )
        _assert_refused(drop, older, ReplayError, "not newer than the last imported (5)")
    newer = reply_bundle(signer_gpg, responders, drop, tmp_path / "s6.tar", sequence=6)
    assert import_reply_bundle(drop, newer).sequence == 6


def test_a_bundle_signed_by_an_expired_key_is_refused(tmp_path: Path) -> None:
    # A workstation key that expired one day after it was made, two years ago.
    home = tmp_path / "g"
    gpg = GnuPG(home)
    try:
        gen = [
            "gpg", "--homedir", str(home), "--batch", "--passphrase", "",
            "--faked-system-time", "20200101T000000",
            "--quick-gen-key", "Old workstation", "ed25519", "sign", "1d",
        ]  # fmt: skip
        subprocess.run(gen, check=True, capture_output=True)
        fpr = gpg._gpg.list_keys()[0]["fingerprint"]
        data = b'{"format": "sdwm-replies"}'
        sig = subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--faked-system-time",
             "20200101T010000", "--local-user", fpr, "--detach-sign"],
            input=data, capture_output=True, check=True,
        ).stdout  # fmt: skip
        members = [(_reg("manifest.json"), data), (_reg("manifest.json.sig"), sig)]
        bad = write_members(tmp_path / "old.tar", members)
        with pytest.raises(BadSignatureError, match="expired"):
            bundles.verify_reply_bundle(bad, gpg, fpr, None, None)
    finally:
        gpg.close()


def test_export_bundle_refusals_leave_nothing_in_the_workdir(
    drop: Drop, workstation_gpg: GnuPG, responders: Responders, workdir: Path, tmp_path: Path
) -> None:
    submit(drop, {"photo.jpg": b"\xff\xd8" + bytes(5000)})
    path = tmp_path / "export.tar"
    export_bundle(drop, path)
    server = drop.settings.signing_fingerprint
    members = read_members(path)
    cases: list[tuple[Members, type[BundleError], str]] = [
        ([*members[:2], (members[2][0], members[2][1][::-1]), *members[3:]],
         HashMismatchError, "SHA-256"),
        (_resign(members, _manifest(members), responders.home, responders.workstation_fingerprint),
         UnknownSignerError, "not by the pinned server key"),
        ([*members, (_link("submissions/x.gpg", tarfile.SYMTYPE), b"")],
         SpecialMemberError, "link"),
        ([*members[:3]], MissingMemberError, "lacks"),
    ]  # fmt: skip
    for n, (bad_members, error, says) in enumerate(cases):
        bad = write_members(tmp_path / f"bad{n}.tar", bad_members)
        with pytest.raises(error, match=says):
            verify_export_bundle(bad, workstation_gpg, server, workdir)
        assert list(workdir.iterdir()) == []
    # A reply bundle is not an export bundle, even to a keyring that knows both keys
    workstation_gpg.import_keys(responders.workstation_public.read_text())
    replies = reply_bundle(GnuPG(responders.home), responders, drop, tmp_path / "r.tar")
    # (said in words, not only by the key that signed it)
    with pytest.raises(BundleFormatError, match="this is a reply bundle .* not an export bundle"):
        verify_export_bundle(replies, workstation_gpg, server, workdir)
    with pytest.raises(BundleFormatError, match="not a sdwm-export bundle"):
        verify_export_bundle(replies, workstation_gpg, responders.workstation_fingerprint, workdir)
    # The good bundle verifies: the checks above refused only what was wrong
    with verify_export_bundle(path, workstation_gpg, server, workdir) as v:
        assert len(v.manifest.items) == 2
    assert list(workdir.iterdir()) == []
