"""Helpers shared by the bundle and transfer API tests: reports submitted through the
core, replies as the workstation makes them, and helpers to read and rewrite bundles for
tampering. The bundle fixtures are in tests/fixtures/bundles.py."""

from __future__ import annotations

import io
import subprocess
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from securedrop_wm import sources
from securedrop_wm.bundles import ReplyFile, write_reply_bundle
from securedrop_wm.codenames import generate_codename
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop
from securedrop_wm.models import Reply, Report, Source, Submission
from tests.conftest import Responders


@dataclass
class Sent:
    """What a source sent, to compare with what the workstation decrypts."""

    codename: str
    login: sources.SourceLogin
    what_happened: str
    files: dict[str, bytes]
    urgent: bool


def submit(
    drop: Drop,
    files: dict[str, bytes] | None = None,
    text: str = "Someone posted my home address on a talk page.",
    urgency: str = "routine",
    codename: str | None = None,
) -> Sent:
    """Create a source (or reuse ``codename``) and submit one report through the core."""
    if codename is None:
        codename = generate_codename()
        login = sources.create_source(drop, codename)  # type: ignore[arg-type]
    else:
        login = sources.login_source(drop, codename)  # type: ignore[arg-type]
    pending = []
    for name, data in (files or {}).items():
        f = sources.start_file(drop, name)
        f.writer.write(data)
        pending.append(f)
    fields = sources.ReportFields(category="doxxing", what_happened=text, urgency=urgency)
    sources.submit_report(drop, login, fields, pending)
    return Sent(codename, login, text, dict(files or {}), urgency != "routine")


def encrypt_reply(responders: Responders, source_public: Path, text: str, out: Path) -> Path:
    """Encrypt a reply as the workstation does: to the source key and the team key."""
    ws = GnuPG(responders.home)
    fpr = ws.import_keys(source_public.read_text())[0]
    ws.encrypt_bytes(text.encode("utf-8"), [fpr, responders.team_fingerprint], out)
    return out


def reply_bundle(
    signer_gpg: GnuPG,
    responders: Responders,
    drop: Drop,
    out: Path,
    *,
    sequence: int = 1,
    replies: list[ReplyFile] | None = None,
    acknowledged: list[str] | None = None,
) -> Path:
    write_reply_bundle(
        signer_gpg,
        responders.workstation_fingerprint,
        drop.settings.signing_fingerprint,
        sequence,
        replies or [],
        acknowledged or [],
        out,
    )
    return out


def new_id() -> str:
    return str(uuid.uuid4())


# -- looking at the server ----------------------------------------------------------


@dataclass(frozen=True)
class ServerState:
    """Everything an import could change, to prove that a refused one changed nothing."""

    store: frozenset[str]
    replies: tuple[tuple[str, str], ...]
    acknowledged: tuple[tuple[str, object], ...]
    reports: tuple[tuple[str, bool], ...]


def server_state(drop: Drop) -> ServerState:
    with drop.sessions() as db:
        replies = tuple(sorted((r.uuid, r.store_name) for r in db.query(Reply)))
        subs = tuple(sorted((s.uuid, s.acknowledged_day) for s in db.query(Submission)))
        reports = tuple(sorted((r.uuid, r.acknowledged) for r in db.query(Report)))
    store = frozenset(p.name for p in drop.store.root.iterdir())
    return ServerState(store, replies, subs, reports)


def source_uuid(drop: Drop, login: sources.SourceLogin) -> str:
    with drop.sessions() as db:
        source = db.query(Source).filter(Source.lookup_id == login.source_id).one()
        return source.uuid


# -- rewriting bundles ----------------------------------------------------------------


def read_members(path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    """Every member of a (well-formed) bundle, in order, with its bytes."""
    out = []
    with tarfile.open(path, "r:") as tar:
        for info in tar:
            f = tar.extractfile(info)
            out.append((info, f.read() if f else b""))
    return out


def write_members(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    """Write members (possibly crafted: links, odd names) as a tar, as an attacker could."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def sign_as(home: Path, fingerprint: str, data: bytes) -> bytes:
    """A binary detached signature of ``data`` made with plain gpg by ``fingerprint``."""
    out = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--local-user", fingerprint, "--detach-sign"],
        input=data,
        capture_output=True,
        check=True,
    )
    return out.stdout
