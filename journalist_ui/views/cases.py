"""The case list, search, and a case's page (one thread): reading, triage, notes,
labels, replies, files."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _

from securedrop_wm.errors import SecureDropError
from securedrop_wm.filenames import visible_name
from securedrop_wm.vocabulary import CaseStatus, Urgency
from securedrop_wm.workstation import cases as core
from securedrop_wm.workstation import clocks, replies, search, thread, viewing, wiki_links

from .. import services
from ..errors import explain
from ..security import current_account

bp = Blueprint("cases", __name__)
# A source's file name on a page, with controls, bidi overrides and zero-width characters
# shown as ⟨U+202E⟩: names imported before the server refused them cannot disguise
# themselves ("report\u202efdp.exe" as "reportexe.pdf").
bp.add_app_template_filter(visible_name, "visible_name")


@bp.get("/")
def index() -> Any:
    ws = services()
    me = current_account()
    args = request.args
    assignee, sort = args.get("assignee", ""), args.get("sort", "")
    mine = args.get("mine") == "1"
    if mine:
        assignee = str(me.id)
    filters = core.CaseFilter(
        status=args.get("status") or None,
        category=args.get("category") or None,
        urgency=args.get("urgency") or None,
        reply_language=args.get("reply_language") or None,
        assignee=int(assignee) if assignee.isdigit() else None,
        label=args.get("label") or None,
        include_closed=args.get("closed") == "1",
        sort=sort if sort in core.SORTS else "deadline",
        unread_only=args.get("unread") == "1",
    )
    rows = core.list_cases(ws, filters, reader=me.id)
    return render_template(
        "cases.html",
        rows=rows,
        filters=filters,
        mine=mine,
        choices=core.filter_choices(ws),
        statuses=list(CaseStatus),
        urgencies=list(Urgency),
        sorts=core.SORTS,
        people=core.responders(ws),
        outbox=replies.outbox(ws),
        now=ws.now(),
    )


@bp.get("/cases/<int:case_id>")
def case(case_id: int) -> Any:
    ws = services()
    try:
        found = core.read_case(ws, current_account().username, case_id)
    except SecureDropError:
        abort(404)
    # First view: each file is read in the sandbox (previews, metadata), then cached.
    uuids = [s.uuid for r in found.reports for s in r.submissions if s.kind == "file"]
    views = viewing.view_files(ws, uuids)
    return render_template(
        "case.html",
        case=found,
        entries=thread.case_thread(ws, found),
        due=clocks.due(ws.settings, found),
        reply_state=clocks.reply_state,
        now=ws.now(),
        statuses=list(CaseStatus),
        people=core.responders(ws),
        views=views,
        # Each report's links parsed (pages, diffs, users), shown as text, never as links.
        links={r.id: wiki_links.parse_links(r.links, r.text) for r in found.reports},
    )


def _act(case_id: int, action: Any, *args: Any, done: str) -> Any:
    """Run one core action on a case and come back to it with a message."""
    try:
        action(services(), current_account().username, case_id, *args)
        flash(done, "ok")
    except SecureDropError as e:
        flash(explain(e), "error")
    return redirect(url_for("cases.case", case_id=case_id))


@bp.post("/cases/<int:case_id>/status")
def status(case_id: int) -> Any:
    return _act(case_id, core.set_status, request.form.get("status", ""), done=_("Status set."))


@bp.post("/cases/<int:case_id>/assign")
def assign(case_id: int) -> Any:
    value = request.form.get("assignee", "")
    target = int(value) if value.isdigit() else None
    handover = request.form.get("handover", "")
    return _act(case_id, core.assign, target, handover, done=_("Assignment saved."))


@bp.post("/cases/<int:case_id>/note")
def note(case_id: int) -> Any:
    return _act(case_id, core.add_note, request.form.get("text", ""), done=_("Note added."))


@bp.post("/cases/<int:case_id>/label")
def label(case_id: int) -> Any:
    name = request.form.get("label", "")
    if request.form.get("remove"):
        return _act(case_id, core.remove_label, name, done=_("Label removed."))
    return _act(case_id, core.add_label, name, done=_("Label added."))


@bp.post("/cases/<int:case_id>/unread")
def unread(case_id: int) -> Any:
    try:
        core.mark_unread(services(), current_account().username, case_id)
    except SecureDropError:
        abort(404)
    return redirect(url_for("cases.index"))


def _search_problem(e: search.SearchError) -> str:
    """What went wrong with a search, in the responder's language."""
    message = str(e)
    if message == search.EMPTY_QUERY:
        return _("Type a word to search for.")
    if message == search.LONG_QUERY.format(n=search.MAX_QUERY_CHARS):
        return _("A search may have at most %(n)s characters.", n=search.MAX_QUERY_CHARS)
    return _("This search cannot be run. Type words, or a phrase in double quotes.")


@bp.get("/search")
def find() -> Any:
    """Search report text, wiki, links, file names, notes, labels and replies."""
    typed = request.args.get("q", "")
    results, problem = None, ""
    if typed.strip():
        try:
            results = search.search(services(), typed)
        except search.SearchError as e:
            problem = _search_problem(e)
    page = render_template("search.html", typed=typed, results=results, problem=problem)
    return page, 400 if problem else 200


@bp.post("/cases/<int:case_id>/reply")
def reply(case_id: int) -> Any:
    """Queue a reply, use a template, discard a draft, withdraw a queued reply."""
    from .replying import reply_action  # the reply form's actions (H8's module)

    return reply_action(case_id)


@bp.get("/files/<uuid>")
def download(uuid: str) -> Any:
    """Send a decrypted file as an opaque download: the app never opens or shows it."""
    try:
        path, _name = core.attachment(services(), current_account().username, uuid)
    except SecureDropError:
        abort(404)
    # A neutral name, never the source's: no extension for a file manager to open the
    # file by, nothing spoofed in a save dialog. The page shows the name the source gave.
    return send_file(
        path,
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=f"attachment-{uuid}.bin",
    )


@bp.get("/files/<uuid>/page/<int:page>.png")
def preview(uuid: str, page: int) -> Any:
    """A page of a file as a PNG this app drew from the sandbox's checked pixels."""
    try:
        path = viewing.preview_page(services(), uuid, page)
    except SecureDropError:
        abort(404)
    return send_file(path, mimetype="image/png")


@bp.get("/files/<uuid>/clean")
def clean_copy(uuid: str) -> Any:
    """Send the copy without metadata: an image re-encoded, or a PDF of page pictures."""
    try:
        path, suffix = viewing.clean_copy(services(), current_account().username, uuid)
    except SecureDropError:
        abort(404)
    mimetype = "application/pdf" if suffix == "pdf" else "image/png"
    return send_file(
        path, mimetype=mimetype, as_attachment=True, download_name=f"clean-copy-{uuid}.{suffix}"
    )
