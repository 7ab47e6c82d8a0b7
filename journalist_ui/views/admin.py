"""Admin: responders' accounts, keys; everyone: the audit log and retention."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from securedrop_wm.errors import SecureDropError
from securedrop_wm.workstation import accounts, audit, keys, retention

from .. import services
from ..security import admin_required, current_account

bp = Blueprint("admin", __name__)


@bp.get("/admin/accounts")
@admin_required
def account_list() -> Any:
    return render_template("accounts.html", people=accounts.list_accounts(services()))


@bp.post("/admin/accounts")
@admin_required
def add_account() -> Any:
    form = request.form
    try:
        made = accounts.add_account(
            services(),
            current_account().username,
            form.get("username", ""),
            form.get("password", ""),
            admin=form.get("admin") == "1",
        )
    except SecureDropError as e:
        flash(str(e), "error")
        return redirect(url_for("admin.account_list"))
    return render_template("account_created.html", made=made)


@bp.post("/admin/accounts/<int:account_id>/remove")
@admin_required
def remove_account(account_id: int) -> Any:
    try:
        name = accounts.deactivate_account(services(), current_account(), account_id)
        flash(_("%(name)s can no longer log in.", name=name), "ok")
    except SecureDropError as e:
        flash(str(e), "error")
    return redirect(url_for("admin.account_list"))


@bp.get("/keys")
def key_list() -> Any:
    s = services().settings
    return render_template("keys.html", settings=s)


@bp.get("/keys/<which>.asc")
def public_key(which: str) -> Any:
    s = services().settings
    fingerprint = {"team": s.team_fingerprint, "workstation": s.signing_fingerprint}.get(which)
    if fingerprint is None:
        return render_template("error.html", message=_("There is no such key.")), 404
    armored = keys.public_key(services(), fingerprint)
    return Response(
        armored,
        mimetype="application/pgp-keys",
        headers={"Content-Disposition": f"attachment; filename={which}.asc"},
    )


@bp.get("/audit")
def audit_log() -> Any:
    page = max(0, request.args.get("page", 0, type=int) or 0)
    log = audit.read_log(services(), limit=100, offset=page * 100)
    return render_template(
        "audit.html",
        events=log.events,
        intact=log.intact,
        chained=log.chained,
        problem=log.problem,
        count=log.count,
        page=page,
    )


@bp.get("/retention")
def retention_page() -> Any:
    ws = services()
    return render_template(
        "retention.html",
        schedule=retention.retention_schedule(ws),
        days=ws.settings.retention_days,
    )


@bp.post("/retention")
@admin_required
def purge() -> Any:
    purged = retention.purge_due(services(), current_account().username)
    flash(_("%(n)s closed case(s) purged.", n=len(purged)), "ok")
    return redirect(url_for("admin.retention_page"))
