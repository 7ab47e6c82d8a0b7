"""Logging in and out, one's own password, and first-run setup."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from securedrop_wm.errors import SecureDropError
from securedrop_wm.workstation import accounts, keys
from securedrop_wm.workstation.errors import LoginError

from .. import services
from ..security import current_account

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    ws = services()
    if not accounts.has_accounts(ws):
        return redirect(url_for("auth.setup"))
    if request.method == "GET":
        return render_template("login.html")
    form = request.form
    try:
        account = accounts.authenticate(
            ws, form.get("username", ""), form.get("password", ""), form.get("code", "")
        )
    except LoginError:
        # One answer for every refusal (see accounts.authenticate): it must not tell an
        # unknown username or an account that waits from a wrong password.
        flash(
            _(
                "Wrong username, password or code. After several failures in a row, an "
                "account waits a few minutes before its next login is checked."
            ),
            "error",
        )
        return render_template("login.html", username=form.get("username", "")), 401
    # A new cookie for the new login: nothing from before it survives.
    session.clear()
    session["token"] = accounts.start_session(ws, account.id)
    return redirect(url_for("cases.index"))


@bp.post("/logout")
def logout() -> Any:
    token = session.get("token")
    if isinstance(token, str):
        accounts.end_session(services(), token)
    session.clear()
    flash(_("You are logged out."), "ok")
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
def account() -> Any:
    if request.method == "POST":
        form = request.form
        if form.get("new", "") != form.get("confirm", ""):
            flash(_("The two new passwords differ."), "error")
        else:
            try:
                token = session.get("token")
                accounts.change_password(
                    services(),
                    current_account().id,
                    form.get("current", ""),
                    form.get("new", ""),
                    keep_token=token if isinstance(token, str) else None,
                )
                flash(_("Your password is changed. Your other sessions are logged out."), "ok")
            except SecureDropError as e:
                flash(str(e), "error")
        return redirect(url_for("auth.account"))
    return render_template("account.html")


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> Any:
    """First run: keys, the pinned server key and the first admin, behind the setup token."""
    ws = services()
    if accounts.has_accounts(ws):
        return redirect(url_for("auth.login"))
    if request.method == "GET":
        return render_template("setup.html")
    form, files = request.form, request.files

    def upload(name: str) -> str | None:
        f = files.get(name)
        return f.read(1024 * 1024).decode("ascii", "replace") if f and f.filename else None

    try:
        result = keys.first_run(
            ws,
            token=form.get("token", ""),
            expected_token=keys.setup_token(ws),
            team=keys.KeyChoice(upload("team_key"), form.get("team_passphrase") or None),
            signing=keys.KeyChoice(upload("signing_key"), None),
            server_public_key=upload("server_key") or "",
            server_fingerprint=form.get("server_fingerprint", ""),
            admin_username=form.get("username", ""),
            admin_password=form.get("password", ""),
        )
    except SecureDropError as e:
        flash(str(e), "error")
        return render_template("setup.html"), 400
    s = result.settings
    return render_template(
        "setup_done.html",
        admin=result.admin,
        team_key=keys.public_key(ws, s.team_fingerprint or ""),
        signing_key=keys.public_key(ws, s.signing_fingerprint or ""),
    )
