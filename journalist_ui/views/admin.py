"""Admin: responders' accounts, keys, reply templates; everyone: the audit log and
retention."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from securedrop_wm.errors import SecureDropError
from securedrop_wm.workstation import accounts, audit, keys, reply_templates, retention

from .. import services
from ..core_messages import say
from ..security import admin_required, current_account
from .replying import reply_form_state

bp = Blueprint("admin", __name__)
bp.add_app_template_global(reply_form_state, "reply_form_state")
AUDIT_PAGE_SIZE = 100


@bp.get("/admin/accounts")
@admin_required
def account_list() -> Any:
    return render_template("accounts.html", people=accounts.list_accounts(services()))


@bp.post("/admin/accounts")
@admin_required
def add_account() -> Any:
    form = request.form
    try:
        made = accounts.invite_account(
            services(), current_account(), form.get("username", ""), admin=form.get("admin") == "1"
        )
    except SecureDropError as e:
        flash(say(e), "error")
        return redirect(url_for("admin.account_list"))
    return render_template("account_created.html", made=made, reset=False)


@bp.post("/admin/accounts/<int:account_id>/reset")
@admin_required
def reset_account(account_id: int) -> Any:
    """A new one-time password and no authenticator: its owner enrols again."""
    try:
        made = accounts.reset_account(services(), current_account(), account_id)
    except SecureDropError as e:
        flash(say(e), "error")
        return redirect(url_for("admin.account_list"))
    return render_template("account_created.html", made=made, reset=True)


@bp.post("/admin/accounts/<int:account_id>/remove")
@admin_required
def remove_account(account_id: int) -> Any:
    try:
        name = accounts.deactivate_account(services(), current_account(), account_id)
        flash(_("%(name)s can no longer log in.", name=name), "ok")
    except SecureDropError as e:
        flash(say(e), "error")
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


def _day(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


@bp.get("/audit")
def audit_log() -> Any:
    args = request.args
    page = max(0, args.get("page", 0, type=int) or 0)
    case = args.get("case", "").strip().lstrip("#")
    filters = audit.AuditFilter(
        actor=args.get("who") or None,
        action=args.get("what") or None,
        case_id=int(case) if case.isdigit() else None,
        since=_day(args.get("since")),
        until=_day(args.get("until")),
    )
    log = audit.read_log(
        services(), limit=AUDIT_PAGE_SIZE, offset=page * AUDIT_PAGE_SIZE, filters=filters
    )
    # The filter's values, to keep in the page links.
    kept = {k: v for k, v in args.items() if k != "page" and v}
    return render_template(
        "audit.html",
        events=log.events,
        intact=log.intact,
        chained=log.chained,
        problem=log.problem,
        count=log.count,
        matching=log.matching,
        actors=log.actors,
        actions=log.actions,
        filters=filters,
        kept=kept,
        page=page,
        pages=max(1, -(-log.matching // AUDIT_PAGE_SIZE)),
    )


@bp.get("/admin/templates")
@admin_required
def template_list() -> Any:
    return render_template(
        "reply_templates.html", templates=reply_templates.list_templates(services()), editing=None
    )


@bp.get("/admin/templates/<int:template_id>")
@admin_required
def template_edit(template_id: int) -> Any:
    ws = services()
    try:
        editing = reply_templates.get_template(ws, template_id)
    except SecureDropError:
        return render_template("error.html", message=_("There is no such reply template.")), 404
    return render_template(
        "reply_templates.html", templates=reply_templates.list_templates(ws), editing=editing
    )


@bp.post("/admin/templates")
@admin_required
def template_save() -> Any:
    """Create a template, or change the one ``template_id`` names."""
    form = request.form
    raw_id = form.get("template_id", "")
    try:
        reply_templates.save_template(
            services(),
            current_account(),
            form.get("name", ""),
            form.get("language", ""),
            form.get("text", ""),
            template_id=int(raw_id) if raw_id.isdigit() else None,
        )
        flash(_("Template saved."), "ok")
    except SecureDropError as e:
        flash(say(e), "error")
        if raw_id.isdigit():
            return redirect(url_for("admin.template_edit", template_id=int(raw_id)))
    return redirect(url_for("admin.template_list"))


@bp.post("/admin/templates/<int:template_id>/delete")
@admin_required
def template_delete(template_id: int) -> Any:
    try:
        name = reply_templates.delete_template(services(), current_account(), template_id)
        flash(_("Template %(name)s deleted.", name=name), "ok")
    except SecureDropError as e:
        flash(say(e), "error")
    return redirect(url_for("admin.template_list"))


@bp.get("/retention")
def retention_page() -> Any:
    ws = services()
    return render_template(
        "retention.html",
        schedule=retention.retention_schedule(ws),
        days=ws.settings.retention_days,
    )
