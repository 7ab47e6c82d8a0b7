"""Why the source UI refused a report, a field or a file, in the page's language (the
routes in source.py and conversation.py say it on the form they give back)."""

from __future__ import annotations

from flask import current_app
from flask_babel import format_decimal, ngettext
from flask_babel import gettext as _

from sdwm_web.services import SETTINGS, service
from securedrop_wm.errors import FileNameError, ReportError, UnknownDeskError
from securedrop_wm.settings import Settings
from securedrop_wm.sources import MAX_SHORT_CHARS, ReportFields
from securedrop_wm.vocabulary import Category, Place, Urgency


def desk_refusal(chosen: str) -> str:
    """Why the report form's desk choice was refused, in the page's language."""
    if not chosen:
        return _("Choose who should read your report: it is encrypted for them only.")
    return _("The team you chose is not on this drop. Choose one of the teams listed on the form.")


def field_refusal(fields: ReportFields) -> str:
    """Why the core refused a report's fields, for the first field a source can fix."""
    if not Category.has(fields.category):
        return _("Choose what kind of incident it is.")
    if not Urgency.has(fields.urgency):
        return _("Choose how urgent it is.")
    if fields.place and not Place.has(fields.place):
        return _("Choose where it happened from the list, or leave it as it is.")
    if len(fields.project) > MAX_SHORT_CHARS:
        return _(
            "The name of the project is too long: write at most %(num)d characters.",
            num=MAX_SHORT_CHARS,
        )
    if len(fields.region) > MAX_SHORT_CHARS:
        return _(
            "The country or region is too long: write at most %(num)d characters.",
            num=MAX_SHORT_CHARS,
        )
    return _(
        "Please check the form: choose a category and an urgency, "
        "and keep each field within its limit."
    )


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


def file_refusal(error: ReportError) -> str:
    """Why an attached file was refused, in the page's language."""
    if isinstance(error, FileNameError):
        if error.reason == "length":
            return _("A file name must have between 1 and 255 characters.")
        if error.reason == "control":
            return _("A file name must not contain control characters.")
        if error.reason == "path":
            return _("A file name must not contain a folder path.")
    if isinstance(error, UnknownDeskError):
        # Files came before the desk choice (the form sends it first): none was kept.
        return desk_refusal("")
    return str(error)


__all__ = [
    "desk_refusal",
    "field_refusal",
    "file_refusal",
    "files_too_large_message",
    "too_many_files_message",
]
