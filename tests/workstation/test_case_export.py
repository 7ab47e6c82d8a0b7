"""Case export for legal follow-up (docs/case-export.md): a real imported case (a message,
a file, a note, a reply that left), exported through the page, the command and the core,
then checked by running the doc's own command blocks with plain gpg in a fresh GnuPG
home and ``sha256sum -c``; tampering, a forged signature, encryption to a recipient,
refused keys, and the drop server's reply import refusing the package by its format."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from securedrop_wm.bundles import (
    BadSignatureError,
    BundleError,
    BundleFormatError,
    import_reply_bundle,
)
from securedrop_wm.drop import Drop
from securedrop_wm.workstation import audit, case_export, cases, importing, replies
from securedrop_wm.workstation.cli import workstation as ws_cli
from securedrop_wm.workstation.errors import CaseNotFoundError
from securedrop_wm.workstation.models import AuditEvent, Case, Submission
from tests.bundles.helpers import read_members, server_state, write_members
from tests.conftest import Responders, csrf_token, short_tempdir
from tests.workstation.fixtures import ADMIN, Station, export, login, source_reports

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "case-export.md"
CHECK = re.compile(r"^<!-- case-export-check: ([a-z]+) -->\n```sh\n(.*?)^```$", re.M | re.S)
MESSAGE = "They published my home address on a talk page, and my employer's name."
LINKS = "https://en.wikipedia.org/w/index.php?diff=1"
FILE = b"%PDF-1.4 a screenshot of the threat\x00\xff"
# A name from before the server refused hidden characters: it reads "threat-fdp.exe".
SPOOFED = "threat-\u202eexe.pdf"
NOTE = "Called the legal team; they want the diff."
REPLY = "We read your report and are on it."


def doc_blocks() -> dict[str, str]:
    """The doc's command blocks marked ``<!-- case-export-check: NAME -->``."""
    return {m.group(1): m.group(2) for m in CHECK.finditer(DOC.read_text())}


def run_block(name: str, folder: Path, gnupghome: Path) -> subprocess.CompletedProcess[str]:
    """Run a doc block as written, with bash ``set -eu``, plain gpg and ``GNUPGHOME``."""
    env = {"PATH": os.environ["PATH"], "GNUPGHOME": str(gnupghome), "LC_ALL": "C.UTF-8"}
    env["HOME"] = str(gnupghome)
    return subprocess.run(
        ["bash", "-c", "set -eu\n" + doc_blocks()[name]],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def fresh_home() -> Iterator[Path]:
    """An empty GnuPG home, as the recipient's machine has."""
    home = short_tempdir("sdwm-lawyer-")
    os.chmod(home, 0o700)
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
    shutil.rmtree(home, ignore_errors=True)


@dataclass(frozen=True)
class OutsideKeys:
    """Keys a recipient could hand over, made with plain gpg in a home of their own."""

    home: Path
    good: bytes
    good_fingerprint: str
    expired: bytes
    revoked: bytes
    sign_only: bytes
    secret: bytes


def _gpg(home: Path, *args: str) -> bytes:
    argv = ["gpg", "--homedir", str(home), "--batch", "--passphrase", "", *args]
    return subprocess.run(argv, capture_output=True, check=True).stdout


def _new_key(home: Path, uid: str, *spec: str) -> str:
    _gpg(home, "--quick-gen-key", uid, *spec)
    return _fpr(home, uid)


@pytest.fixture(scope="module")
def outside() -> Iterator[OutsideKeys]:
    home = short_tempdir("sdwm-keys-")
    good = _new_key(home, "Lawyer <l@example.org>", "future-default", "default", "never")
    old = ("--faked-system-time", "20200101T000000", "--quick-gen-key", "Old <o@example.org>")
    _gpg(home, *old, "future-default", "default", "2020-01-05")
    expired = _fpr(home, "Old <o@example.org>")
    revoked = _new_key(home, "Revoked <r@example.org>", "future-default", "default", "never")
    rev = (home / "openpgp-revocs.d" / f"{revoked}.rev").read_text().replace(":-----", "-----")
    (home / "rev.asc").write_text(rev)
    _gpg(home, "--import", str(home / "rev.asc"))
    signer = _new_key(home, "Signer <s@example.org>", "ed25519", "sign", "never")
    yield OutsideKeys(
        home,
        _gpg(home, "--armor", "--export", good),
        good,
        _gpg(home, "--armor", "--export", expired),
        _gpg(home, "--armor", "--export", revoked),
        _gpg(home, "--armor", "--export", signer),
        _gpg(home, "--armor", "--export-secret-keys", good),
    )
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
    shutil.rmtree(home, ignore_errors=True)


def _fpr(home: Path, uid: str) -> str:
    out = _gpg(home, "--with-colons", "--list-keys", uid).decode()
    return str(re.findall(r"^fpr:+([0-9A-F]{40}):", out, re.M)[0])


def imported_case(station: Station, drop: Drop, tmp_path: Path) -> int:
    """A case as a responder leaves it: imported, a note, a reply that left, triaged."""
    source_reports(drop, MESSAGE, files=[(FILE, "threat.pdf")], wiki="en", links=LINKS)
    importing.import_bundle(station.ws, ADMIN, export(drop, tmp_path))
    case_id = cases.list_cases(station.ws, cases.CaseFilter())[0].case.id
    cases.add_note(station.ws, ADMIN, case_id, NOTE)
    replies.queue_reply(station.ws, ADMIN, case_id, REPLY)
    replies.export_reply_bundle(station.ws, ADMIN)
    cases.set_status(station.ws, ADMIN, case_id, "escalated")
    return case_id


def unpack(package: Path, folder: Path) -> Path:
    folder.mkdir()
    subprocess.run(["tar", "-xf", str(package)], cwd=folder, check=True)
    return folder / case_export.FOLDER


def test_page_export_follows_the_doc(
    station: Station, drop: Drop, ws_client: FlaskClient, tmp_path: Path, fresh_home: Path
) -> None:
    case_id = imported_case(station, drop, tmp_path)
    with station.ws.write() as db:  # a name imported before the server refused such names
        sub = db.query(Submission).filter(Submission.kind == "file").one()
        sub.filename = SPOOFED
        designation = db.get(Case, case_id).designation  # type: ignore[union-attr]
    login(ws_client, station)
    page = ws_client.get(f"/cases/{case_id}")
    fingerprint = station.ws.signing_fingerprint()
    grouped = " ".join(fingerprint[i : i + 4] for i in range(0, 40, 4))
    assert "Export this case" in page.text and grouped in page.text
    # No CSRF token, no export.
    assert ws_client.post(f"/cases/{case_id}/export").status_code == 400
    got = ws_client.post(
        f"/cases/{case_id}/export",
        data={"csrf_token": csrf_token(page.text)},
        content_type="multipart/form-data",
    )
    assert got.status_code == 200
    name = re.search(r'filename="?([^";]+)', got.headers["Content-Disposition"]).group(1)  # type: ignore[union-attr]
    assert re.fullmatch(r"case-export-\d{4}-\d{2}-\d{2}-[0-9a-f]{8}\.tar", name)
    assert designation.split()[0] not in name
    assert list((station.ws.settings.data_dir / "exports").iterdir()) == []  # no copy kept
    folder = tmp_path / "lawyer"
    folder.mkdir()
    (folder / name).write_bytes(got.data)
    got.close()

    checked = run_block("verify", folder, fresh_home)
    assert checked.returncode == 0, checked.stderr + checked.stdout
    assert grouped.replace(" ", "") in checked.stdout.replace(" ", "")  # gpg --fingerprint
    assert checked.stderr.count("Good signature") == 2
    root = folder / case_export.FOLDER
    listed = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    sums = (root / "SHA256SUMS").read_text()
    for path in listed:
        if path not in ("SHA256SUMS", "SHA256SUMS.asc"):
            assert f"{path}: OK" in checked.stdout
            assert f"  {path}\n" in sums
    assert "FAILED" not in checked.stdout

    # What a lawyer reads.
    assert all("threat" not in p and "\u202e" not in p for p in listed)
    assert (root / "files" / "report-1-file-1.bin").read_bytes() == FILE
    report = (root / "reports" / "report-1.txt").read_text("utf-8")
    assert MESSAGE in report and LINKS in report and "Category: harassment" in report
    index = (root / "index.txt").read_text("utf-8")
    assert "threat-⟨U+202E⟩exe.pdf" in index and "\u202e" not in index
    assert NOTE in (root / "notes.txt").read_text()
    assert f"by {ADMIN}: sent, reply bundle 1\n{REPLY}" in (root / "replies.txt").read_text()
    assert "new -> escalated" in (root / "history.txt").read_text()
    assert not any(designation in (root / p).read_text("utf-8", "replace") for p in listed)
    _check_custody(station, (root / "custody.txt").read_text())
    _check_audit_excerpt(station, case_id, root, "not encrypted")
    manifest = json.loads((root / "manifest.json").read_text())
    assert (manifest["format"], manifest["schema"]) == ("sdwm-case-export", 1)
    assert {f["path"] for f in manifest["files"]} == set(listed) - {
        "manifest.json",
        "manifest.json.asc",
        "SHA256SUMS",
        "SHA256SUMS.asc",
    }


def _check_custody(station: Station, custody: str) -> None:
    """Each item's recorded hashes appear; an item without them says "not recorded"."""
    with station.ws.sessions() as db:
        for sub in db.query(Submission):
            for value in (sub.ciphertext_sha256, sub.plaintext_sha256):
                assert (value or case_export.NOT_RECORDED) in custody
            bundle = sub.imported_bundle
            if bundle is not None and bundle.manifest_sha256:
                assert bundle.manifest_sha256 in custody
    assert custody.count("report 1, message") == 1 and custody.count("report 1, file 1") == 1


def _check_audit_excerpt(station: Station, case_id: int, root: Path, detail: str) -> None:
    """Every event recomputes to its hash and is in the workstation's log; the export
    itself is the last one."""
    events = [json.loads(line) for line in (root / "audit.jsonl").read_text().splitlines()]
    with station.ws.sessions() as db:
        assert audit.verify_log(db) > len(events)
        for e in events:
            body = [e["prev_hash"], e["at"], e["actor"], e["action"], e["case_id"], e["detail"]]
            assert hashlib.sha256(json.dumps(body).encode()).hexdigest() == e["hash"]
            assert db.query(AuditEvent).filter(AuditEvent.hash == e["hash"]).count() == 1
    assert {e["case_id"] for e in events} == {case_id}
    assert {"case.note", "reply.queue", "case.status"} <= {e["action"] for e in events}
    last = events[-1]
    assert (last["action"], last["actor"], last["detail"]) == ("case.export", ADMIN, detail)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["audit_head"] == last["hash"]


def test_forged_signatures_fail_gpg_verify(
    station: Station, drop: Drop, tmp_path: Path, fresh_home: Path, responders: Responders
) -> None:
    case_id = imported_case(station, drop, tmp_path)
    folder = tmp_path / "lawyer"
    folder.mkdir()
    made = case_export.export_case(station.ws, ADMIN, case_id, folder / "case-export-x.tar")
    root = unpack(made.path, tmp_path / "work")
    # One file changed: the signature still holds, sha256sum -c fails.
    (root / "notes.txt").write_text("nothing to see\n")
    _retar(root, folder, made.path)
    changed = run_block("verify", folder, fresh_home)
    assert "Good signature" in changed.stderr
    assert changed.returncode != 0 and "notes.txt: FAILED" in changed.stdout
    # A forger writes SHA256SUMS to match: the signature no longer does.
    sums = (root / "SHA256SUMS").read_text().splitlines()
    digest = hashlib.sha256(b"nothing to see\n").hexdigest()
    sums = [f"{digest}  notes.txt" if s.endswith("  notes.txt") else s for s in sums]
    (root / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    _retar(root, folder, made.path)
    bad = run_block("verify", folder, fresh_home)
    assert bad.returncode != 0 and "BAD signature" in bad.stderr
    # Signed again, by another key (the second responder's): no good signature either.
    forged = subprocess.run(
        ["gpg", "--homedir", str(responders.home), "--batch", "--armor", "--detach-sign"]
        + ["--local-user", responders.second_fingerprint, "--output", "-"]
        + [str(root / "SHA256SUMS")],
        capture_output=True,
        check=True,
    ).stdout
    (root / "SHA256SUMS.asc").write_bytes(forged)
    _retar(root, folder, made.path)
    other = run_block("verify", folder, fresh_home)
    assert other.returncode != 0 and "Good signature" not in other.stderr


def _retar(root: Path, folder: Path, package: Path) -> None:
    shutil.rmtree(folder / case_export.FOLDER, ignore_errors=True)
    with tarfile.open(package, "w") as tar:
        tar.add(root, arcname=case_export.FOLDER)


def test_an_encrypted_export_opens_only_with_the_recipients_key(
    station: Station,
    drop: Drop,
    tmp_path: Path,
    fresh_home: Path,
    outside: OutsideKeys,
    responders: Responders,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case_id = imported_case(station, drop, tmp_path)
    (tmp_path / "lawyer.asc").write_bytes(outside.good)
    folder = tmp_path / "lawyer"
    folder.mkdir()
    monkeypatch.chdir(folder)  # the package lands here, under a neutral name
    result = CliRunner().invoke(
        ws_cli,
        ["export-case", "--config", str(station.path / "config.toml"), "--case", str(case_id)]
        + ["--by", ADMIN, "--recipient-key", str(tmp_path / "lawyer.asc")],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    made = Path(re.search(r"wrote (\S+)", result.output).group(1))  # type: ignore[union-attr]
    assert f"encrypted to {outside.good_fingerprint}" in result.output
    assert re.fullmatch(r"case-export-\d{4}-\d{2}-\d{2}-[0-9a-f]{8}\.tar\.gpg", made.name)
    assert MESSAGE.encode() not in (folder / made.name).read_bytes()
    # Not the workstation's team key, not a fresh home: only the recipient's.
    for home in (responders.home, fresh_home):
        nope = subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--decrypt", str(folder / made.name)],
            capture_output=True,
            check=False,
        )
        assert nope.returncode != 0 and b"case-export/" not in nope.stdout
    opened = run_block("decrypt", folder, outside.home)
    assert opened.returncode == 0, opened.stderr
    checked = run_block("verify", folder, fresh_home)
    assert checked.returncode == 0, checked.stderr + checked.stdout
    root = folder / case_export.FOLDER
    assert MESSAGE in (root / "reports" / "report-1.txt").read_text()
    _check_audit_excerpt(station, case_id, root, f"encrypted to {outside.good_fingerprint}")


REFUSALS = (
    ("expired", "has expired"),
    ("revoked", "is revoked"),
    ("sign_only", "cannot encrypt"),
    ("secret", "SECRET key"),
    ("garbage", "holds no OpenPGP key"),
)


def test_unusable_recipient_keys_are_refused(
    station: Station, drop: Drop, ws_client: FlaskClient, tmp_path: Path, outside: OutsideKeys
) -> None:
    case_id = imported_case(station, drop, tmp_path)
    login(ws_client, station)
    for which, reason in REFUSALS:
        page = ws_client.get(f"/cases/{case_id}")
        data = b"not a key" if which == "garbage" else getattr(outside, which)
        key = (io.BytesIO(data), "k.asc")
        got = ws_client.post(
            f"/cases/{case_id}/export",
            data={"csrf_token": csrf_token(page.text), "recipient_key": key},
            follow_redirects=True,
        )
        assert got.status_code == 200 and "The case was not exported" in got.text
        assert reason in got.text, which
        with pytest.raises(case_export.CaseExportError, match=reason):
            case_export.check_recipient(data)
    with station.ws.sessions() as db:
        assert not db.query(AuditEvent).filter(AuditEvent.action == "case.export").count()
    assert not list((station.ws.settings.data_dir / "exports").glob("*"))


def test_unknown_cases_and_accounts_are_refused(
    station: Station, drop: Drop, ws_client: FlaskClient, tmp_path: Path
) -> None:
    case_id = imported_case(station, drop, tmp_path)
    out = tmp_path / "p.tar"
    with pytest.raises(CaseNotFoundError):
        case_export.export_case(station.ws, ADMIN, case_id + 1, out)
    with pytest.raises(case_export.CaseExportError, match="not an active account"):
        case_export.export_case(station.ws, "mallory", case_id, out)
    assert not out.exists()
    out.write_bytes(b"someone else's file")
    with pytest.raises(case_export.CaseExportError, match="exists already"):
        case_export.export_case(station.ws, ADMIN, case_id, out)
    assert out.read_bytes() == b"someone else's file"
    with station.ws.sessions() as db:
        assert not db.query(AuditEvent).filter(AuditEvent.action == "case.export").count()
    login(ws_client, station)
    page = ws_client.get(f"/cases/{case_id}")
    missing = ws_client.post(
        f"/cases/{case_id + 1}/export", data={"csrf_token": csrf_token(page.text)}
    )
    assert missing.status_code == 404


def test_the_drop_refuses_a_case_export_as_a_reply_bundle_by_its_format(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    case_id = imported_case(station, drop, tmp_path)
    package = case_export.export_case(station.ws, ADMIN, case_id, tmp_path / "pkg.tar").path
    files = {i.name: data for i, data in read_members(package)}
    manifest = files["case-export/manifest.json"]
    signature = files["case-export/manifest.json.asc"]
    before = server_state(drop)

    def as_reply_bundle(name: str, manifest: bytes) -> Path:
        return write_members(
            tmp_path / name,
            [
                (tarfile.TarInfo("manifest.json"), manifest),
                (tarfile.TarInfo("manifest.json.sig"), signature),
            ],
        )

    # Its manifest and signature where a reply bundle has them: the signature is the
    # pinned workstation key's and good, and the manifest is refused for its format.
    with pytest.raises(BundleFormatError, match="not a sdwm-replies bundle.*'sdwm-case-export'"):
        import_reply_bundle(drop, as_reply_bundle("as-reply.tar", manifest))
    # (That the signature was checked, and passed, before: one changed byte fails it.)
    with pytest.raises(BadSignatureError):
        import_reply_bundle(drop, as_reply_bundle("changed.tar", manifest.replace(b"1", b"2", 1)))
    # The package itself, as it is.
    with pytest.raises(BundleError):
        import_reply_bundle(drop, package)
    assert server_state(drop) == before
