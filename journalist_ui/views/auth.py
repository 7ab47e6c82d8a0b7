"""Logging in and out, enrolment, one's own password and authenticator, first-run setup,
and a reply carried through the login that follows an expired session."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from flask_wtf.csrf import validate_csrf
from itsdangerous import BadData, URLSafeTimedSerializer

from securedrop_wm.errors import SecureDropError
from securedrop_wm.workstation import accounts, enrolment, keys, replies
from securedrop_wm.workstation.errors import LoginError
from securedrop_wm.workstation.models import Account

from .. import services
from ..core_messages import say
from ..security import current_account

bp = Blueprint("auth", __name__)
# What an account that must enrol may still reach; every other page leads to enrolment.
ENROLMENT_ENDPOINTS = {"auth.enrol", "auth.logout", "static"}
# A reply carried through the login form is signed with the app's key for this purpose
# only, and kept for at most this long (a responder who comes back the next day).
CARRIED_SALT = "sdwm-expired-reply"
CARRIED_MAX_AGE = 12 * 3600


@bp.record_once
def _install_before_login_check(state: BlueprintSetupState) -> None:
    """Run :func:`_carry_expired_reply` before the login check of security.py, which
    would answer an expired session with a redirect that drops the form."""
    state.app.before_request_funcs.setdefault(None, []).insert(0, _carry_expired_reply)


def _carrier() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=CARRIED_SALT)


def _carry_expired_reply() -> Any:
    """A reply posted into a session that has just expired comes back as the login page,
    the text in a signed hidden field, to become a draft once that same account logs in
    again (:func:`_keep_carried_reply`); it is never queued by itself.

    Only a request that proves it comes from the browser that held the session carries
    anything: it has the session's cookie (SameSite=Strict: no other site's page sends
    it), the session existed and expired, and the form's CSRF token is that session's.
    A POST without them gets the usual redirect to the login page and nothing is kept.
    """
    if request.method != "POST" or request.endpoint != "cases.reply":
        return None
    token, text = session.get("token"), request.form.get("text", "")
    if not isinstance(token, str) or not text.strip() or len(text) > replies.MAX_REPLY_CHARS:
        return None
    try:
        validate_csrf(request.form.get("csrf_token"), time_limit=CARRIED_MAX_AGE)
    except ValueError:  # wtforms' ValidationError: missing, expired or not this session's
        return None
    account_id = accounts.expired_session_account(services(), token)
    if account_id is None:
        return None
    case_id = (request.view_args or {}).get("case_id")
    carried = _carrier().dumps({"account": account_id, "case": case_id, "text": text})
    session.clear()
    flash(
        _(
            "Your session expired while you wrote a reply. Log in again: your reply will "
            "be kept as a draft on the case, not sent."
        ),
        "error",
    )
    return render_template("login.html", carried=carried), 401


def _keep_carried_reply(account: Account, carried: str) -> int | None:
    """Keep the carried reply as the account's draft if the expired session was this
    account's; return the case it belongs to."""
    try:
        data = _carrier().loads(carried, max_age=CARRIED_MAX_AGE)
    except BadData:
        return None
    if not isinstance(data, dict) or data.get("account") != account.id:
        return None
    case_id, text = data.get("case"), data.get("text")
    if not isinstance(case_id, int) or not isinstance(text, str):
        return None
    try:
        replies.save_draft(services(), account, case_id, text, "expired", append=True)
    except SecureDropError:
        return None
    return case_id


@bp.before_app_request
def _enrolment_gate() -> Any:
    """An account whose password an admin made, or without an authenticator, reaches
    nothing but its enrolment page until it is done."""
    account = getattr(g, "account", None)
    if account is None or request.endpoint in ENROLMENT_ENDPOINTS:
        return None
    if enrolment.needs_enrolment(account):
        return redirect(url_for("auth.enrol"))
    return None


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    ws = services()
    if not accounts.has_accounts(ws):
        return redirect(url_for("auth.setup"))
    if request.method == "GET":
        return render_template("login.html")
    form = request.form
    carried = form.get("carried", "")
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
        return render_template(
            "login.html", username=form.get("username", ""), carried=carried
        ), 401
    # A new cookie for the new login: nothing from before it survives.
    session.clear()
    session["token"] = accounts.start_session(ws, account.id)
    case_id = _keep_carried_reply(account, carried) if carried else None
    if enrolment.needs_enrolment(account):
        return redirect(url_for("auth.enrol"))
    if case_id is not None:
        flash(
            _(
                "Your reply is kept as a draft below, not sent: read it, then queue it "
                "or discard it."
            ),
            "ok",
        )
        return redirect(url_for("cases.case", case_id=case_id, _anchor="reply"))
    return redirect(url_for("cases.index"))


@bp.post("/logout")
def logout() -> Any:
    token = session.get("token")
    if isinstance(token, str):
        accounts.end_session(services(), token)
    session.clear()
    flash(_("You are logged out."), "ok")
    return redirect(url_for("auth.login"))


def _token() -> str | None:
    token = session.get("token")
    return token if isinstance(token, str) else None


@bp.route("/account/enrol", methods=["GET", "POST"])
def enrol() -> Any:
    """First login after an admin created or reset the account: a password of one's own
    and an authenticator confirmed by a current code."""
    ws, account = services(), current_account()
    if not enrolment.needs_enrolment(account):
        return redirect(url_for("cases.index"))
    if request.method == "POST":
        form = request.form
        if account.must_change_password and form.get("new", "") != form.get("confirm", ""):
            flash(_("The two new passwords differ."), "error")
            return redirect(url_for("auth.enrol"))
        try:
            enrolment.finish_enrolment(
                ws, account.id, form.get("new", ""), form.get("code", ""), keep_token=_token()
            )
        except SecureDropError as e:
            flash(say(e), "error")
            return redirect(url_for("auth.enrol"))
        flash(_("Your account is ready: your password is your own, your authenticator works."))
        return redirect(url_for("cases.index"))
    totp = None if account.totp_secret else enrolment.start_totp(ws, account.id)
    return render_template(
        "account_enrol.html", must_change=account.must_change_password, totp=totp
    )


@bp.route("/account", methods=["GET", "POST"])
def account() -> Any:
    if request.method == "POST":
        form = request.form
        if form.get("new", "") != form.get("confirm", ""):
            flash(_("The two new passwords differ."), "error")
        else:
            try:
                accounts.change_password(
                    services(),
                    current_account().id,
                    form.get("current", ""),
                    form.get("new", ""),
                    keep_token=_token(),
                )
                flash(_("Your password is changed. Your other sessions are logged out."), "ok")
            except SecureDropError as e:
                flash(say(e), "error")
        return redirect(url_for("auth.account"))
    return render_template("account.html")


@bp.route("/account/totp", methods=["GET", "POST"])
def replace_totp() -> Any:
    """A new authenticator: the old one works until a code of the new one is typed."""
    ws, me = services(), current_account()
    if request.method == "POST":
        try:
            enrolment.confirm_totp(ws, me.id, request.form.get("code", ""))
        except SecureDropError as e:
            flash(say(e), "error")
            return redirect(url_for("auth.replace_totp"))
        flash(_("Your new authenticator is the one a login needs now."), "ok")
        return redirect(url_for("auth.account"))
    return render_template("account_totp.html", totp=enrolment.start_totp(ws, me.id))


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
            drop_team_fingerprint=form.get("drop_team_fingerprint", ""),
            new_drop=form.get("new_drop") == "1",
        )
    except SecureDropError as e:
        flash(say(e), "error")
        return render_template("setup.html", form=form), 400
    s = result.settings
    uri = result.admin.provisioning_uri
    return render_template(
        "setup_done.html",
        admin=result.admin,
        qr=enrolment.qr_svg(uri),
        new_team_key=form.get("new_drop") == "1" and not form.get("drop_team_fingerprint"),
        team_key=keys.public_key(ws, s.team_fingerprint or ""),
        signing_key=keys.public_key(ws, s.signing_fingerprint or ""),
    )
