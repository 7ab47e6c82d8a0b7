"""What the responders receive, read back the way they read it, to compare with what
sources sent: through the signed export bundle, or straight from the database and store."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from securedrop_wm.bundles import verify_export_bundle
from securedrop_wm.crypto import GnuPG
from securedrop_wm.settings import load_settings


@dataclass
class Sent:
    """One report as a source sent it: its text is unique to it and names it."""

    text: str
    files: dict[str, str] = field(default_factory=dict)  # name -> SHA-256 of the bytes


@dataclass(frozen=True)
class Received:
    """One report as the responders decrypt it."""

    report_id: str
    text: str
    files: tuple[tuple[str, str], ...]  # (name, SHA-256 of the decrypted bytes)


def decrypt_sha256(gpg_home: Path, path: Path) -> str:
    """SHA-256 of the plaintext of ``path``, decrypted by plain ``gpg`` and streamed."""
    digest = hashlib.sha256()
    with subprocess.Popen(
        ["gpg", "--homedir", str(gpg_home), "--batch", "--quiet", "--decrypt", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as gpg:
        assert gpg.stdout is not None
        while chunk := gpg.stdout.read(1 << 20):
            digest.update(chunk)
        err = gpg.stderr.read() if gpg.stderr else b""
    if gpg.returncode != 0:
        raise AssertionError(f"{path.name} does not decrypt: {err.decode(errors='replace')}")
    return digest.hexdigest()


def decrypt_json(gpg_home: Path, path: Path) -> dict[str, object]:
    """A report's message, decrypted with plain ``gpg``."""
    out = subprocess.run(
        ["gpg", "--homedir", str(gpg_home), "--batch", "--quiet", "--decrypt", str(path)],
        capture_output=True,
        check=True,
    )
    message: dict[str, object] = json.loads(out.stdout)
    return message


def _assemble(
    gpg_home: Path, reports: dict[str, dict[str, list[tuple[str, Path]]]]
) -> list[Received]:
    """Decrypt each report's message and files (two gpg at a time) and pair them up."""
    files = [(sub, path) for r in reports.values() for sub, path in r.get("file", [])]
    with ThreadPoolExecutor(2) as pool:
        hashes = dict(
            zip(
                (s for s, _ in files),
                pool.map(lambda f: decrypt_sha256(gpg_home, f[1]), files),
                strict=True,
            )
        )
    out = []
    for report_id, kinds in reports.items():
        messages = kinds.get("message", [])
        assert len(messages) == 1, f"report {report_id} has {len(messages)} messages"
        message = decrypt_json(gpg_home, messages[0][1])
        listed = message["files"]
        assert isinstance(listed, list)
        assert sorted(f["submission"] for f in listed) == sorted(
            s for s, _ in kinds.get("file", [])
        )
        out.append(
            Received(
                report_id,
                str(message["what_happened"]),
                tuple(sorted((f["name"], hashes[f["submission"]]) for f in listed)),
            )
        )
    return out


def read_store(data_dir: Path, gpg_home: Path, only: Iterable[str] | None = None) -> list[Received]:
    """Every report the database refers to, decrypted from the store (``only``: these
    report ids). A referenced file that is missing or does not decrypt fails."""
    rows = db_rows(data_dir)
    wanted = set(only) if only is not None else None
    reports: dict[str, dict[str, list[tuple[str, Path]]]] = {}
    for report_id, kind, sub, name in rows:
        if wanted is None or report_id in wanted:
            kinds = reports.setdefault(report_id, {})
            kinds.setdefault(kind, []).append((sub, data_dir / "store" / name))
    return _assemble(gpg_home, reports)


def db_rows(data_dir: Path) -> list[tuple[str, str, str, str]]:
    """(report uuid, kind, submission uuid, store name) of every stored submission."""
    db = sqlite3.connect(f"file:{data_dir / 'db.sqlite'}?mode=ro", uri=True)
    try:
        return list(
            db.execute(
                "SELECT reports.uuid, kind, submissions.uuid, store_name FROM submissions "
                "JOIN reports ON reports.id = submissions.report_id ORDER BY submissions.id"
            )
        )
    finally:
        db.close()


def read_export(data_dir: Path, gpg_home: Path, workdir: Path) -> list[Received]:
    """Write an export bundle with the real CLI, verify it against the pinned server key
    as the workstation does, and decrypt every item from the verified copy."""
    config = data_dir / "config.toml"
    settings = load_settings(config, environ={})
    bundle = workdir / "export.tar"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "securedrop_wm",
            "--config",
            str(config),
            "export",
            "-o",
            str(bundle),
        ],
        check=True,
        capture_output=True,
    )
    server = GnuPG(settings.gpg_home)
    responders = GnuPG(gpg_home)
    try:
        responders.import_keys(server.export_public_key(settings.signing_fingerprint))
        with verify_export_bundle(bundle, responders, settings.signing_fingerprint, workdir) as v:
            reports: dict[str, dict[str, list[tuple[str, Path]]]] = {}
            for item in v.manifest.items:
                kinds = reports.setdefault(item.report_id, {})
                kinds.setdefault(item.kind, []).append((item.id, v.item_path(item.id)))
            return _assemble(gpg_home, reports)
    finally:
        server.close()
        bundle.unlink(missing_ok=True)


def compare(
    accepted: Iterable[Sent], received: Iterable[Received], maybe: Iterable[Sent] = ()
) -> list[str]:
    """What differs between what sources were told was stored and what responders got.

    :param maybe: reports whose outcome the source never learned (the server died while
        answering): each may be received, but then exactly as sent.
    """
    problems = []
    sent = {s.text: s for s in accepted}
    unsure = {s.text: s for s in maybe}
    seen: set[str] = set()
    for r in received:
        expected = sent.get(r.text) or unsure.get(r.text)
        if expected is None:
            problems.append(f"report {r.report_id} matches nothing that was sent")
        elif r.text in seen:
            problems.append(f"report {r.text[:40]!r} was stored twice")
        elif dict(r.files) != expected.files or len(r.files) != len(expected.files):
            problems.append(f"report {r.text[:40]!r}: files differ from what was sent")
        seen.add(r.text)
    problems += [f"accepted report {t[:40]!r} is missing" for t in sent if t not in seen]
    return problems
