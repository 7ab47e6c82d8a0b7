"""Bundles: import an export bundle from removable media; export the reply bundle."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _

from securedrop_wm.errors import SecureDropError
from securedrop_wm.workstation import importing, replies
from securedrop_wm.workstation.errors import ReplyError

from .. import services
from ..security import current_account

bp = Blueprint("transfer", __name__)
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


def _incoming(upload_id: str) -> Path:
    if not _UPLOAD_ID.match(upload_id):
        abort(404)
    folder = services().settings.data_dir / "incoming"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / f"{upload_id}.tar"


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
    try:
        preview = importing.preview_bundle(services(), path)
    except SecureDropError as e:
        path.unlink(missing_ok=True)
        flash(str(e), "error")
        return redirect(url_for("transfer.start"))
    return render_template("import_preview.html", preview=preview, upload_id=upload_id)


@bp.post("/import/<upload_id>")
def confirm(upload_id: str) -> Any:
    path = _incoming(upload_id)
    if request.form.get("cancel"):
        path.unlink(missing_ok=True)
        flash(_("Nothing was imported."), "ok")
        return redirect(url_for("transfer.start"))
    if not path.is_file():
        flash(_("This upload is gone: choose the bundle again."), "error")
        return redirect(url_for("transfer.start"))
    passphrase = request.form.get("passphrase") or None
    try:
        result = importing.import_bundle(services(), current_account().username, path, passphrase)
    except SecureDropError as e:
        flash(str(e), "error")
        preview = None
        try:
            preview = importing.preview_bundle(services(), path)
        except SecureDropError:
            path.unlink(missing_ok=True)
            return redirect(url_for("transfer.start"))
        return (
            render_template("import_preview.html", preview=preview, upload_id=upload_id),
            400,
        )
    path.unlink(missing_ok=True)
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
        flash(str(e), "error")
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
