"""Bundles: import an export bundle from removable media; export the reply bundle."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _

from securedrop_wm.errors import SecureDropError
from securedrop_wm.workstation import clocks, importing, replies
from securedrop_wm.workstation.errors import ReplyError

from .. import services
from ..errors import explain
from ..security import current_account

bp = Blueprint("transfer", __name__)
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


def _incoming(upload_id: str) -> Path:
    if not _UPLOAD_ID.match(upload_id):
        abort(404)
    folder = services().settings.data_dir / "incoming"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / f"{upload_id}.tar"


def _discard(path: Path) -> None:
    """Remove an upload and the pull time kept beside it."""
    path.unlink(missing_ok=True)
    clocks.pulled_path(path).unlink(missing_ok=True)


def _keep_pull_time(path: Path) -> None:
    """Keep the optional ``.pulled`` file beside the upload, where the import reads it
    (a pull time that is larger than one line is not kept: the import time counts)."""
    f = request.files.get("pulled")
    if f is not None and f.filename:
        data = f.stream.read(clocks.MAX_PULLED_BYTES + 1)
        if len(data) <= clocks.MAX_PULLED_BYTES:
            clocks.pulled_path(path).write_bytes(data)


@bp.get("/import")
def start() -> Any:
    return render_template("import.html", imported=importing.imported_bundles(services()))


@bp.post("/import")
def upload() -> Any:
    """Keep the chosen bundle aside, verify it, and show what it holds."""
    f = request.files.get("bundle")
    if f is None or not f.filename:
        flash(_("Choose a bundle file."), "error")
        return redirect(url_for("transfer.start"))
    upload_id = secrets.token_hex(16)
    path = _incoming(upload_id)
    f.save(path)
    _keep_pull_time(path)
    try:
        preview = importing.preview_bundle(services(), path)
    except SecureDropError as e:
        _discard(path)
        flash(explain(e), "error")
        return redirect(url_for("transfer.start"))
    return render_template("import_preview.html", preview=preview, upload_id=upload_id)


@bp.post("/import/<upload_id>")
def confirm(upload_id: str) -> Any:
    path = _incoming(upload_id)
    if request.form.get("cancel"):
        _discard(path)
        flash(_("Nothing was imported."), "ok")
        return redirect(url_for("transfer.start"))
    if not path.is_file():
        flash(_("This upload is gone: choose the bundle again."), "error")
        return redirect(url_for("transfer.start"))
    passphrase = request.form.get("passphrase") or None
    try:
        result = importing.import_bundle(services(), current_account().username, path, passphrase)
    except SecureDropError as e:
        flash(explain(e), "error")
        preview = None
        try:
            preview = importing.preview_bundle(services(), path)
        except SecureDropError:
            _discard(path)
            return redirect(url_for("transfer.start"))
        return (
            render_template("import_preview.html", preview=preview, upload_id=upload_id),
            400,
        )
    _discard(path)
    if result.already_imported:
        flash(_("This bundle was imported before: nothing changed."), "ok")
    else:
        flash(
            _(
                "Imported bundle %(seq)s: %(reports)s report(s), %(files)s file(s), "
                "%(cases)s new case(s).",
                seq=result.sequence,
                reports=result.reports,
                files=result.files,
                cases=result.new_cases,
            ),
            "ok",
        )
    return redirect(url_for("cases.index"))


@bp.get("/outbox")
def outbox() -> Any:
    ws = services()
    return render_template(
        "outbox.html", pending=replies.outbox(ws), bundles=replies.reply_bundles(ws)
    )


@bp.post("/outbox")
def export() -> Any:
    try:
        made = replies.export_reply_bundle(
            services(), current_account().username, request.form.get("passphrase") or None
        )
    except SecureDropError as e:
        flash(explain(e), "error")
        return redirect(url_for("transfer.outbox"))
    flash(
        _(
            "Reply bundle %(seq)s written: %(replies)s reply(ies), %(acks)s acknowledgement(s). "
            "Download it and carry it to the transfer machine.",
            seq=made.sequence,
            replies=made.replies,
            acks=made.acknowledgements,
        ),
        "ok",
    )
    return redirect(url_for("transfer.outbox"))


@bp.get("/outbox/<int:sequence>.tar")
def download(sequence: int) -> Any:
    try:
        path = replies.bundle_path(services(), sequence)
    except ReplyError:
        abort(404)
    return send_file(path, mimetype="application/x-tar", as_attachment=True)
