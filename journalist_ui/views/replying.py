"""The reply form of a case: queue a reply, put a template into it, keep or discard a
draft, withdraw a queued reply. One endpoint (``cases.reply``), one submit button per
action, no JavaScript: "Use template" fills the text on the server and shows the form
again with it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from securedrop_wm.errors import SecureDropError
from securedrop_wm.workstation import replies, reply_templates
from securedrop_wm.workstation.models import OutgoingReply, ReplyDraft, ReplyTemplate

from .. import services
from ..core_messages import say
from ..security import current_account


@dataclass(frozen=True)
class ReplyFormState:
    """What the reply form of a case shows the logged-in responder."""

    draft: ReplyDraft | None
    templates: Sequence[ReplyTemplate]
    queued: Sequence[OutgoingReply]


def reply_form_state(case_id: int, language: str | None = None) -> ReplyFormState:
    """The responder's draft on the case, the templates (those in ``language`` first)
    and the replies still queued (template global of case_reply_form.html)."""
    ws = services()
    return ReplyFormState(
        draft=replies.draft_of(ws, current_account().id, case_id),
        templates=reply_templates.list_templates(ws, language),
        queued=replies.queued_replies(ws, case_id),
    )


def _back(case_id: int) -> Any:
    return redirect(url_for("cases.case", case_id=case_id, _anchor="reply"))


def reply_action(case_id: int) -> Any:
    """Do what the reply form's pressed button asks, and come back to the case."""
    ws, me, form = services(), current_account(), request.form
    action, text = form.get("action", "queue"), form.get("text", "")
    try:
        if action == "template":
            template_id = form.get("template", "")
            if not template_id.isdigit():
                flash(_("Choose a template first."), "error")
                if text.strip():
                    replies.save_draft(ws, me, case_id, text, "template")
                return _back(case_id)
            template = reply_templates.get_template(ws, int(template_id))
            combined = f"{text.rstrip()}\n\n{template.text}" if text.strip() else template.text
            replies.save_draft(ws, me, case_id, combined, "template")
        elif action == "discard":
            replies.discard_draft(ws, me, case_id)
            flash(_("Draft discarded."), "ok")
        elif action == "withdraw":
            replies.withdraw_reply(ws, me, case_id, form.get("reply", ""))
            flash(_("Reply withdrawn: it will not be sent. Its text is your draft below."), "ok")
        else:
            try:
                replies.queue_reply(ws, me.username, case_id, text)
            except SecureDropError:
                if text.strip() and len(text) <= replies.MAX_REPLY_CHARS:
                    replies.save_draft(ws, me, case_id, text, "unsent")
                raise
            flash(
                _(
                    "Reply encrypted and queued for the next reply bundle: it leaves, and "
                    "meets the deadline, when that bundle is written."
                ),
                "ok",
            )
    except SecureDropError as e:
        flash(say(e), "error")
    return _back(case_id)
