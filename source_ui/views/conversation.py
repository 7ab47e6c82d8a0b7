"""A logged-in source's conversation: the thread of what they sent and the replies, a
message without the report form, files one request each, deleting a reply (after a
confirmation), and the report and message forms shown again in another language with
what was typed (its token checked, not spent)."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import format_decimal, refresh
from flask_babel import gettext as _

from sdwm_web.services import SETTINGS, service
from securedrop_wm.conversation import ReportStatus, load_thread, send_follow_up
from securedrop_wm.errors import EmptyReportError, ReportError, ReportTooLargeError
from securedrop_wm.settings import Settings
from securedrop_wm.sources import abort_files, delete_reply, reply_day
from securedrop_wm.translations import N_
from securedrop_wm.vocabulary import Urgency

from ..lanes import Busy
from ..uploads import pending_files, upload_errors
from .refusals import file_refusal, files_too_large_message
from .report_form import category_labels, report_form_context, urgency_labels
from .source import (
    _drop,
    _lanes,
    _login,
    _rotate_csrf,
    bp,
    busy_message,
    busy_page,
    busy_response,
    had_files,
    login_required,
    report_from_request,
)

#: The source's words for a report's status.
STATUS_LABELS: dict[ReportStatus, str] = {
    ReportStatus.SENT: N_("sent: on the server, waiting for the team to collect it"),
    ReportStatus.RECEIVED: N_("received by the team"),
    ReportStatus.ANSWERED: N_("answered"),
}


@bp.app_context_processor
def _limits() -> dict[str, Any]:
    """The limits a source should know where they matter: the size of what one request
    may carry, how many files a report takes, how long a quiet session lasts."""
    settings = service(current_app, SETTINGS, Settings)
    return {
        "limit_megabytes": format_decimal(round(settings.max_report_bytes / 1_000_000, 1)),
        "limit_files": settings.max_files_per_report,
        "session_minutes": settings.session_minutes,
    }


def file_size(size: int) -> str:
    """A file's size in the page's language, in KB or MB."""
    if size < 1_000_000:
        return _("%(kilobytes)s KB", kilobytes=format_decimal(round(max(size, 1) / 1000, 1)))
    return _("%(megabytes)s MB", megabytes=format_decimal(round(size / 1_000_000, 1)))


@bp.get("/replies")
@login_required
def replies() -> Any:
    """The thread: the source's reports (from their receipts) and the replies,
    decrypted for this source only, on the fly."""
    try:
        with _lanes().returning.slot():
            thread = load_thread(_drop(), _login())
    except Busy as busy:
        return busy_page(busy)
    statuses = {value.value: _(label) for value, label in STATUS_LABELS.items()}
    return render_template(
        "replies.html",
        thread=thread,
        categories=category_labels(),
        urgencies=urgency_labels(),
        statuses=statuses,
        file_size=file_size,
        deleted_replies=session.get("deleted_replies", False),
    )


@bp.get("/replies/<reply_uuid>/delete")
@login_required
def confirm_delete(reply_uuid: str) -> Any:
    """Ask before deleting a reply for good."""
    day = reply_day(_drop(), _login(), reply_uuid)
    if day is None:
        flash(_("That reply no longer exists."), "error")
        return redirect(url_for("source.replies"))
    return render_template("delete_reply.html", reply_uuid=reply_uuid, day=day)


@bp.post("/replies/<reply_uuid>/delete")
@login_required
def delete(reply_uuid: str) -> Any:
    """Delete a reply for real, once the source confirmed it; the session (not the
    server) remembers that they did, so the thread does not say none came."""
    _rotate_csrf()
    day = reply_day(_drop(), _login(), reply_uuid)
    if day is None:
        flash(_("That reply no longer exists."), "error")
        return redirect(url_for("source.replies"))
    if request.form.get("confirm") != "yes":
        return render_template("delete_reply.html", reply_uuid=reply_uuid, day=day)
    if delete_reply(_drop(), _login(), reply_uuid):
        session["deleted_replies"] = True
        flash(_("The reply was deleted."), "info")
    else:
        flash(_("That reply no longer exists."), "error")
    return redirect(url_for("source.replies"))


@bp.route("/message", methods=["GET", "POST"])
@login_required
def message() -> Any:
    """A message without the report form: text and an urgency, filed as a follow-up
    under the previous report's category, for the same team."""
    context = {"urgencies": urgency_labels()}
    if request.method == "GET":
        return render_template("message.html", **context, form={})
    form = report_from_request()
    urgency = form["urgency"] or Urgency.ROUTINE
    if not form["what_happened"]:
        return _message_error(form, _("Write your message before you send it."), 400)
    try:
        with _lanes().returning.slot():
            receipt = send_follow_up(_drop(), _login(), form["what_happened"], urgency)
    except Busy as busy:
        page, _code = _message_error(form, busy_message(busy), 503)
        return busy_response(page, busy)
    except EmptyReportError:
        return _message_error(form, _("Write your message before you send it."), 400)
    except ReportError:
        message = _(
            "Please check the form: choose an urgency, and keep your message within its limit."
        )
        return _message_error(form, message, 400)
    _rotate_csrf()
    session["receipt"] = {"files": 0, "danger": receipt.danger}
    return redirect(url_for("source.thanks"))


def _message_error(form: dict[str, str], error: str, code: int) -> tuple[str, int]:
    """The message form again, with what the source typed and why it was refused."""
    _rotate_csrf()
    page = render_template("message.html", urgencies=urgency_labels(), form=form, error=error)
    return page, code


@bp.route("/files", methods=["GET", "POST"])
@login_required
def send_file() -> Any:
    """One file per request, each stored at once as its own follow-up, and confirmed on
    the page: a dropped connection loses the file being sent, nothing else."""
    if request.method == "GET":
        return render_template("files.html")
    files = pending_files()
    errors = upload_errors()
    if errors:
        abort_files(files)
        return file_form_error(file_refusal(errors[0]), 400)
    if not files:
        return file_form_error(_("Choose a file to send."), 400)
    try:
        with _lanes().returning.slot():
            send_follow_up(_drop(), _login(), "", Urgency.ROUTINE, files, files[0].desks)
    except Busy as busy:
        abort_files(files)
        page, _code = file_form_error(busy_message(busy), 503)
        return busy_response(page, busy)
    except ReportTooLargeError:
        return file_form_error(files_too_large_message(), 413)
    _rotate_csrf()
    flash(_("%(name)s was received and stored encrypted.", name=files[0].filename), "info")
    return redirect(url_for("source.send_file"))


def file_form_error(error: str, code: int) -> tuple[str, int]:
    """The one-file form again, saying why the file was not kept."""
    _rotate_csrf()
    return render_template("files.html", error=error), code


@bp.post("/form-language")
@login_required
def switch_language() -> Any:
    """The report (or message) form again in another language, filled with what was
    typed; attached files were discarded unread (this is no upload endpoint) and must be
    attached again. The form's token is checked but not spent (security.py)."""
    from flask import g

    language = request.form.get("form_language", "")
    if language in current_app.config["SDWM_LANGUAGES"]:
        session["lang"] = language
        g.sdwm_locale = language
        refresh()
    form = report_from_request()
    if request.args.get("form") == "message":
        return render_template("message.html", urgencies=urgency_labels(), form=form)
    context = report_form_context()
    return render_template("submit.html", **context, form=form, had_files=had_files())


__all__ = ["STATUS_LABELS", "file_form_error", "file_size"]
