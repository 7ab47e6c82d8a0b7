"""Evidence handling on a case: export for legal follow-up, legal holds."""

from __future__ import annotations

import weakref
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _

from sdwm_web.services import WORKSTATION, service
from securedrop_wm.errors import SecureDropError
from securedrop_wm.workstation import case_export, retention
from securedrop_wm.workstation.errors import CaseNotFoundError
from securedrop_wm.workstation.services import Workstation

from .. import services
from ..errors import explain
from ..security import admin_required, current_account

bp = Blueprint("evidence", __name__)
#: Where the app keeps its purge schedule (retention.PurgeSchedule).
PURGE_SCHEDULE = "sdwm_purge_schedule"


# -- case export (docs/case-export.md) ------------------------------------------------


@bp.app_template_global()
def workstation_signing_fingerprint() -> str:
    """The workstation signing key's fingerprint in groups of four, as gpg shows it."""
    fingerprint = services().settings.signing_fingerprint or ""
    return " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))


@bp.post("/cases/<int:case_id>/export")
def export_case(case_id: int) -> Any:
    """Send the case's signed package (encrypted if a recipient key is given) under a
    neutral name; the package is removed from the workstation as it is sent."""
    ws = services()
    upload = request.files.get("recipient_key")
    try:
        recipient = None
        if upload is not None and upload.filename:
            data = upload.stream.read(case_export.MAX_RECIPIENT_KEY_BYTES + 1)
            recipient = case_export.check_recipient(data, ws.settings.gpg_binary)
        folder = ws.settings.data_dir / "exports"
        folder.mkdir(mode=0o700, exist_ok=True)
        name = case_export.download_name(ws.now(), recipient is not None)
        made = case_export.export_case(
            ws,
            current_account().username,
            case_id,
            folder / name,
            recipient=recipient,
            passphrase=request.form.get("passphrase") or None,
        )
    except CaseNotFoundError:
        abort(404)
    except SecureDropError as e:
        flash(_("The case was not exported: %(reason)s", reason=explain(e)), "error")
        return redirect(url_for("cases.case", case_id=case_id))
    package = made.path.open("rb")
    made.path.unlink()
    return send_file(
        package,
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=made.download_name,
    )


# -- legal hold, retention's purge and its schedule (docs/workstation.md) ------------


@bp.app_template_global()
def retention_days() -> int:
    """How many days after closing a case is purged."""
    return services().settings.retention_days


@bp.app_template_global()
def purge_interval_minutes() -> int:
    """How often the app runs the due purge (0: never)."""
    return services().settings.purge_interval_minutes


@bp.post("/cases/<int:case_id>/hold")
def place_hold(case_id: int) -> Any:
    """Any responder may place a legal hold (it destroys nothing)."""
    return _hold_action(case_id, retention.place_hold, _("Legal hold placed."))


@bp.post("/cases/<int:case_id>/hold/release")
def release_hold(case_id: int) -> Any:
    """Only an admin may release one (as only an admin may purge)."""
    return _hold_action(case_id, retention.release_hold, _("Legal hold released."))


def _hold_action(case_id: int, action: Any, done: str) -> Any:
    try:
        action(services(), current_account(), case_id, request.form.get("reason", ""))
        flash(done, "ok")
    except CaseNotFoundError:
        abort(404)
    except SecureDropError as e:
        flash(explain(e), "error")
    return redirect(url_for("cases.case", case_id=case_id))


@bp.get("/retention/purge")
@admin_required
def confirm_purge() -> Any:
    """The second step of a purge: what will go, and a box to tick."""
    ws = services()
    return render_template(
        "retention.html",
        schedule=retention.retention_schedule(ws),
        days=ws.settings.retention_days,
        confirming=True,
    )


@bp.post("/retention/purge")
@admin_required
def purge() -> Any:
    """Purge what is due, once the admin ticked the confirmation."""
    if request.form.get("confirm") != "yes":
        flash(_("Nothing was purged: tick the box to confirm."), "error")
        return redirect(url_for("evidence.confirm_purge"))
    purged = retention.purge_due(services(), current_account().username)
    flash(_("%(n)s closed case(s) purged.", n=len(purged)), "ok")
    return redirect(url_for("admin.retention_page"))


@bp.record_once
def _start_purge_schedule(state: BlueprintSetupState) -> None:
    """The app owns its purge schedule (``app.extensions``); it stops when the app goes."""
    app = state.app
    assert isinstance(app, Flask)
    schedule = retention.PurgeSchedule(service(app, WORKSTATION, Workstation))
    app.extensions[PURGE_SCHEDULE] = schedule
    weakref.finalize(app, schedule.stop)
    schedule.start()
