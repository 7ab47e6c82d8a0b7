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
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_wtf.csrf import CSRFError

from sdwm_web.services import DROP, SETTINGS, service
from securedrop_wm import codenames
from securedrop_wm.codenames import Codename, parse_codename
from securedrop_wm.drop import Drop
from securedrop_wm.errors import (
    CodenameError,
    EmptyReportError,
    ReportError,
    ReportTooLargeError,
    SourceNotFoundError,
    SourceRemovedError,
    UnknownDeskError,
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
from securedrop_wm.translations import language_name
from securedrop_wm.vocabulary import Urgency

from ..lanes import LANES, Busy, Lanes
from ..uploads import (
    TooManyFilesError,
    form_value,
    pending_files,
    report_desks,
    upload_errors,
)
from .refusals import (
    desk_refusal,
    field_refusal,
    file_refusal,
    files_too_large_message,
    too_many_files_message,
)
from .report_form import report_form_context

bp = Blueprint("source", __name__)

#: The report form's text fields: what a source typed, kept when a session expires.
#: (``wiki`` is no longer on the form, which asks for ``project``; a form from before
#: that change still sends it.)
REPORT_FIELDS = (
    "desk",
    "also_central",
    "category",
    "place",
    "project",
    "region",
    "what_happened",
    "urgency",
    "wiki",
    "links",
    "reply_language",
)


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


@bp.get("/generate")
def generate() -> Any:
    """Show the codename drawn for this visitor, with advice on keeping it.

    The codename is drawn once and kept in the (encrypted, expiring) session until
    "Continue" creates the source: a reload or a change of the page's language shows the
    same one. Its words are by default from the list for the page's language; when the
    page's language (or ``?words=fr``) asks for another list, the page offers a new
    codename in that list (a form: :func:`new_codename`) and says the old one would be
    void, never swapping it silently.
    """
    from flask import request

    from ..i18n import language_in_page, request_locale

    if "sid" in session:
        return redirect(url_for("source.submit"))
    settings = service(current_app, SETTINGS, Settings)
    offered = codenames.available_wordlists()
    asked = request.args.get("words", "")
    page_words = codenames.wordlist_language_for(request_locale())
    codename, words = _pending_codename()
    if codename is None:
        words = asked if asked in offered else page_words
        codename = codenames.draw_codename(words, settings.codename_words).codename
        session.update(pending_codename=codename, pending_words=words)
    offer = asked if asked in offered else page_words
    return render_template(
        "generate.html",
        codename=codenames.shown_codename(codename, words),
        unused_days=_drop().settings.unused_source_days,
        codename_language=words,
        codename_language_name=language_in_page(words),
        codename_dir=codenames.direction(words),
        codename_languages={code: language_name(code) for code in offered},
        offer_words=offer if offer != words and offer in offered else None,
        offer_name=language_in_page(offer),
    )


def _pending_codename() -> tuple[Codename | None, str]:
    """The codename already shown to this visitor and the language of its words."""
    codename = session.get("pending_codename")
    if not isinstance(codename, str) or not codename:
        return None, ""
    words = session.get("pending_words")
    if words not in codenames.available_wordlists():
        # Drawn before the session noted its list: the first list that has every word.
        parts = codename.split()
        words = next(
            (
                w
                for w in codenames.available_wordlists()
                if all(p in codenames.load_wordlist(w).index for p in parts)
            ),
            "en",
        )
    return Codename(codename), str(words)


@bp.post("/generate")
def new_codename() -> Any:
    """Replace the codename shown by a new one whose words are in the language asked
    for; the page that follows says that the old codename is void."""
    from flask import abort, request

    if "sid" in session:
        return redirect(url_for("source.submit"))
    words = request.form.get("words", "")
    if words not in codenames.available_wordlists():
        abort(400)
    settings = service(current_app, SETTINGS, Settings)
    replaced = _pending_codename()[0] is not None
    codename = codenames.draw_codename(words, settings.codename_words).codename
    session.update(pending_codename=codename, pending_words=words)
    if replaced:
        flash(
            _(
                "This is your new codename. The one shown before is void: it will never "
                "work, do not keep it."
            ),
            "info",
        )
    return redirect(url_for("source.generate"))


@bp.post("/create")
def create() -> Any:
    """Create the source for the codename shown on the previous page."""
    codename = session.pop("pending_codename", None)
    words = session.pop("pending_words", None)
    if not codename:
        flash(_("Your codename was not found. Here is a new one."), "error")
        return redirect(url_for("source.generate"))
    try:
        with _lanes().new_source.slot():
            login = create_source(_drop(), Codename(codename))
    except Busy as busy:
        # Not created: the same codename, which the source has written down, stays ready.
        session.update(pending_codename=codename, pending_words=words)
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
        context = report_form_context()
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
    """The report form, and storing a report for the desks the source chose."""
    from flask import request

    context = report_form_context()
    if request.method == "GET":
        return render_template("submit.html", **context, form={})
    files = pending_files()
    form = report_from_request()
    try:
        desks = report_desks(form["desk"], form["also_central"])
    except UnknownDeskError:
        abort_files(files)
        return _form_error(context, form, desk_refusal(form["desk"]), 400, had_files())
    errors = upload_errors()
    if errors:
        abort_files(files)
        return _form_error(context, form, file_refusal(errors[0]), 400)
    fields = ReportFields(
        category=form["category"],
        what_happened=form["what_happened"],
        urgency=form["urgency"] or Urgency.ROUTINE,
        wiki=form["wiki"],
        links=form["links"],
        reply_language=form["reply_language"] or "en",
        place=form["place"],
        project=form["project"],
        region=form["region"],
    )
    try:
        with _lanes().returning.slot():
            receipt = submit_report(_drop(), _login(), fields, files, desks=desks)
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
    except UnknownDeskError:
        # The files were encrypted for other desks than the form names (a form whose
        # desk fields came after its files): nothing was kept.
        return _form_error(context, form, desk_refusal(form["desk"]), 400, bool(files))
    except ReportError:
        return _form_error(context, form, field_refusal(fields), 400, bool(files))
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
    context = report_form_context()
    form = {k: str(e.fields.get(k, "")).strip().replace("\r\n", "\n") for k in REPORT_FIELDS}
    return _form_error(context, form, too_many_files_message(e.limit), 413, had_files=True)


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
    """End the session, on the server too; make the browser forget this site's cookies;
    then the goodbye page, which advises closing Tor Browser's window.

    ``Clear-Site-Data: "cookies"`` removes every cookie of the site, the language cookie
    too, and a browser ignores a cookie set by the same response. So the response is a
    redirect: through the language link (which sets the language cookie again) when the
    source had chosen a language, so the goodbye page and the next visit keep it.
    """
    from ..i18n import chosen_language

    language = chosen_language()
    session.clear()
    goodbye = url_for("main.logged_out")
    if language is not None:
        goodbye = url_for("main.choose_language", lang=language, next=goodbye)
    response = redirect(goodbye, 303)
    # Tor Browser forgets the session cookie even if this response's Set-Cookie were lost.
    response.headers["Clear-Site-Data"] = '"cookies"'
    return response


__all__ = ["REPORT_FIELDS", "bp", "resumed_form"]
