"""A source's flow: codename, report, return with the codename, log out (the thread of
reports and replies, follow-ups and one-file uploads are in conversation.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    session,
    url_for,
)
from flask_babel import format_decimal, ngettext
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError

from sdwm_web.services import DROP, SETTINGS, service
from securedrop_wm.codenames import (
    Codename,
    available_languages,
    generate_codename,
    parse_codename,
)
from securedrop_wm.drop import Drop
from securedrop_wm.errors import (
    CodenameError,
    EmptyReportError,
    FileNameError,
    ReportError,
    ReportTooLargeError,
    SourceNotFoundError,
    SourceRemovedError,
)
from securedrop_wm.kdf import SourceId, SourcePassphrase
from securedrop_wm.settings import Settings
from securedrop_wm.sources import (
    ReportFields,
    SourceCollisionError,
    SourceLogin,
    abort_files,
    create_source,
    login_source,
    source_exists,
    submit_report,
)
from securedrop_wm.translations import N_, language_name
from securedrop_wm.vocabulary import Category, Urgency

from ..lanes import LANES, Busy, Lanes
from ..uploads import TooManyFilesError, form_value, pending_files, upload_errors

bp = Blueprint("source", __name__)

#: The report form's text fields: what a source typed, kept when a session expires.
REPORT_FIELDS = ("category", "what_happened", "urgency", "wiki", "links", "reply_language")


def report_from_request() -> dict[str, str]:
    """The report's text fields as posted. Line breaks are counted as one character, as
    the form's ``maxlength`` counts them (browsers send them as CR LF)."""
    return {k: form_value(k).replace("\r\n", "\n") for k in REPORT_FIELDS}


def had_files() -> bool:
    """Whether the posted form named any file (its bytes may have been discarded)."""
    from flask import request

    return request.form.get("had_files") == "1" or any(
        f.filename for f in request.files.getlist("files")
    )


def resumed_form() -> str:
    """Which form a posted text belongs to: ``"message"`` (the short form of a
    follow-up) or ``"report"`` (the report form)."""
    from flask import request

    if request.endpoint == "source.message" or request.form.get("resume_form") == "message":
        return "message"
    if request.endpoint == "source.switch_language" and request.args.get("form") == "message":
        return "message"
    return "report"


def _drop() -> Drop:
    return service(current_app, DROP, Drop)


def _lanes() -> Lanes:
    return service(current_app, LANES, Lanes)


def busy_message(busy: Busy) -> str:
    """Why a request was not served now, and when to try again."""
    return ngettext(
        "Many people are using the drop right now. Please try again in %(num)d second.",
        "Many people are using the drop right now. Please try again in %(num)d seconds.",
        busy.retry_after,
    )


def busy_response(body: str, busy: Busy) -> Any:
    """A 503 whose ``Retry-After`` says when the lane should have room."""
    response = current_app.make_response((body, 503))
    response.headers["Retry-After"] = str(busy.retry_after)
    return response


def busy_page(busy: Busy, retry_form: str | None = None) -> Any:
    """The light "busy, try again" page: a link back to this page, or a form posting to
    ``retry_form`` again (with a fresh token)."""
    from flask import request

    page = render_template(
        "busy.html",
        message=busy_message(busy),
        retry_form=retry_form,
        retry_url=request.full_path if request.method == "GET" else url_for("main.index"),
    )
    return busy_response(page, busy)


def _rotate_csrf() -> None:
    """Make every form single-use: a replayed token no longer matches the session."""
    session.pop("csrf_token", None)


def _login() -> SourceLogin:
    return SourceLogin(SourceId(session["sid"]), SourcePassphrase(session["pp"]))


def _start_session(login: SourceLogin) -> None:
    """A fresh session for a source; only the chosen language carries over."""
    lang = session.get("lang")
    session.clear()
    session.update(sid=login.source_id, pp=login.passphrase)
    if lang:
        session["lang"] = lang


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Send a visitor without a source session to the login page."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if "sid" not in session or not source_exists(_drop(), SourceId(session["sid"])):
            session.clear()
            flash(_("Please enter your codename to continue."), "info")
            return redirect(url_for("source.login"))
        return view(*args, **kwargs)

    return wrapped


# The source's words for each value, in the order the form offers them.
CATEGORY_LABELS: dict[Category, str] = {
    Category.HARASSMENT: N_("Harassment"),
    Category.DOXXING: N_("Doxxing (my identity or address was exposed)"),
    Category.THREATS: N_("Threats of violence"),
    Category.SURVEILLANCE: N_("Government surveillance or pressure"),
    Category.LEGAL: N_("Legal threat or lawsuit"),
    Category.ACCOUNT: N_("My account was compromised"),
    Category.OTHER: N_("Something else"),
}
URGENCY_LABELS: dict[Urgency, str] = {
    Urgency.ROUTINE: N_("Routine: an answer within days is fine"),
    Urgency.URGENT: N_("Urgent: I need help soon"),
    Urgency.DANGER: N_("I am in danger now"),
}


def category_labels() -> dict[str, str]:
    """Translated labels of the report categories."""
    return {value.value: _(label) for value, label in CATEGORY_LABELS.items()}


def urgency_labels() -> dict[str, str]:
    """Translated labels of the urgency levels."""
    return {value.value: _(label) for value, label in URGENCY_LABELS.items()}


@bp.get("/generate")
def generate() -> Any:
    """Show a new codename once, with advice on keeping it; ``?words=fr`` draws its
    words from another language's list (default: the page's language, else English)."""
    from flask import request
    from flask_babel import get_locale

    if "sid" in session:
        return redirect(url_for("source.submit"))
    settings = service(current_app, SETTINGS, Settings)
    offered = available_languages()
    language = request.args.get("words", "")
    if language not in offered:
        language = str(get_locale()) if str(get_locale()) in offered else "en"
    codename = generate_codename(settings.codename_words, language)
    session["pending_codename"] = codename
    return render_template(
        "generate.html",
        codename=codename,
        unused_days=_drop().settings.unused_source_days,
        codename_language=language,
        codename_languages={code: language_name(code) for code in offered},
    )


@bp.post("/create")
def create() -> Any:
    """Create the source for the codename shown on the previous page."""
    codename = session.pop("pending_codename", None)
    if not codename:
        flash(_("Your codename was not found. Here is a new one."), "error")
        return redirect(url_for("source.generate"))
    try:
        with _lanes().new_source.slot():
            login = create_source(_drop(), Codename(codename))
    except Busy as busy:
        # Not created: the same codename, which the source has written down, stays ready.
        session["pending_codename"] = codename
        _rotate_csrf()
        return busy_page(busy, retry_form=url_for("source.create"))
    except SourceCollisionError:
        # The same codename posted twice (a replayed form): it is someone's already.
        raise CSRFError("codename already created") from None
    _start_session(login)
    flash(_("Your codename is ready. Keep it safe: it is the only way back here."), "info")
    return redirect(url_for("source.submit"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Return with a codename."""
    from flask import request

    if request.method == "GET":
        return render_template("login.html")
    settings = service(current_app, SETTINGS, Settings)
    try:
        codename = parse_codename(form_value("codename"), settings.codename_words)
        with _lanes().returning.slot():
            found = login_source(_drop(), codename)
    except Busy as busy:
        _rotate_csrf()
        page = render_template("login.html", error=busy_message(busy), **_resumed_report())
        return busy_response(page, busy)
    except SourceRemovedError:
        _rotate_csrf()
        message = _(
            "The reports and replies of this codename were removed from the server after "
            "the retention period. You can start again with a new codename."
        )
        return render_template("login.html", error=message, **_resumed_report()), 401
    except (CodenameError, SourceNotFoundError):
        _rotate_csrf()
        return (
            render_template(
                "login.html",
                error=_("That codename was not recognized. Check each word and try again."),
                **_resumed_report(),
            ),
            401,
        )
    _start_session(found)
    resumed = _resumed_report()
    if resumed:
        # A report typed before the session expired: back in the form, not sent yet.
        context = {"categories": category_labels(), "urgencies": urgency_labels()}
        notice = _("You are logged in again. Your report is not sent yet: check it and send it.")
        template = "message.html" if resumed_form() == "message" else "submit.html"
        return render_template(
            template, **context, **resumed, notice=notice, form=resumed["report"]
        )
    return redirect(url_for("source.replies"))


def _resumed_report() -> dict[str, Any]:
    """The report carried through the login form after an expired session, if any."""
    from flask import request

    if request.form.get("resume") != "1":
        return {}
    return {"report": report_from_request(), "had_files": had_files()}


@bp.route("/submit", methods=["GET", "POST"])
@login_required
def submit() -> Any:
    """The report form, and storing a report."""
    from flask import request

    context = {"categories": category_labels(), "urgencies": urgency_labels()}
    if request.method == "GET":
        return render_template("submit.html", **context, form={})
    files = pending_files()
    form = report_from_request()
    errors = upload_errors()
    if errors:
        abort_files(files)
        return _form_error(context, form, _file_refusal(errors[0]), 400)
    fields = ReportFields(
        category=form["category"],
        what_happened=form["what_happened"],
        urgency=form["urgency"] or Urgency.ROUTINE,
        wiki=form["wiki"],
        links=form["links"],
        reply_language=form["reply_language"] or "en",
    )
    try:
        with _lanes().returning.slot():
            receipt = submit_report(_drop(), _login(), fields, files)
    except Busy as busy:
        abort_files(files)
        page, _code = _form_error(context, form, busy_message(busy), 503, had_files=bool(files))
        return busy_response(page, busy)
    except ReportTooLargeError:
        return _form_error(context, form, files_too_large_message(), 413)
    except EmptyReportError:
        return _form_error(
            context, form, _("Write what happened or attach at least one file."), 400
        )
    except ReportError:
        message = _(
            "Please check the form: choose a category and an urgency, "
            "and keep each field within its limit."
        )
        return _form_error(context, form, message, 400)
    _rotate_csrf()
    session["receipt"] = {"files": receipt.files, "danger": receipt.danger}
    return redirect(url_for("source.thanks"))


@bp.errorhandler(TooManyFilesError)
def too_many_files(e: TooManyFilesError) -> Any:
    """A report with more files than the drop takes: refused whole, at the first file
    too many (uploads.py), with the text the source typed and why; the one-file form
    refuses a second file the same way (conversation.py)."""
    from flask import request

    if request.endpoint == "source.send_file":
        from .conversation import file_form_error

        return file_form_error(_("Send one file at a time: nothing was kept."), 413)
    context = {"categories": category_labels(), "urgencies": urgency_labels()}
    form = {k: str(e.fields.get(k, "")).strip().replace("\r\n", "\n") for k in REPORT_FIELDS}
    return _form_error(context, form, too_many_files_message(e.limit), 413, had_files=True)


def too_many_files_message(limit: int) -> str:
    """Why a report's files were refused for their number, naming the limit."""
    return ngettext(
        "You attached more files than this drop accepts: at most %(num)d file in one "
        "report. Nothing was kept: send the others in another report.",
        "You attached more files than this drop accepts: at most %(num)d files in one "
        "report. Nothing was kept: send the others in another report.",
        limit,
    )


def files_too_large_message() -> str:
    """Why a report's files were refused for their size, naming the limit."""
    settings = service(current_app, SETTINGS, Settings)
    return _(
        "Your files are larger than this drop accepts: at most %(megabytes)s MB in one "
        "report. Send fewer or smaller files, or split your report in several parts.",
        megabytes=format_decimal(round(settings.max_report_bytes / 1_000_000, 1)),
    )


def _file_refusal(error: ReportError) -> str:
    """Why an attached file was refused, in the page's language."""
    if isinstance(error, FileNameError):
        if error.reason == "length":
            return _("A file name must have between 1 and 255 characters.")
        if error.reason == "control":
            return _("A file name must not contain control characters.")
        if error.reason == "path":
            return _("A file name must not contain a folder path.")
    return str(error)


def _form_error(
    context: dict[str, Any],
    form: dict[str, str],
    message: str,
    code: int,
    had_files: bool = False,
) -> tuple[str, int]:
    """The report form again, with what the source typed and why it was refused
    (``had_files``: and that the attached files must be attached again)."""
    _rotate_csrf()
    page = render_template("submit.html", **context, form=form, error=message, had_files=had_files)
    return page, code


@bp.get("/thanks")
@login_required
def thanks() -> Any:
    """Confirmation; immediate safety steps when the source is in danger now."""
    receipt = session.pop("receipt", None)
    if receipt is None:
        return redirect(url_for("source.submit"))
    return render_template("thanks.html", files=receipt["files"], danger=receipt["danger"])


@bp.post("/logout")
def logout() -> Any:
    """End the session, on the server too; advise closing Tor Browser's window."""
    session.clear()
    response = current_app.make_response(render_template("logged_out.html"))
    # Tor Browser forgets the cookie even if this response's Set-Cookie were lost.
    response.headers["Clear-Site-Data"] = '"cookies"'
    return response


__all__ = ["CATEGORY_LABELS", "REPORT_FIELDS", "URGENCY_LABELS", "bp", "resumed_form"]
