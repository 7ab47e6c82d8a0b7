"""Reply templates: texts the team answers with often, one per name and language, kept
by admins and offered in a case's reply form (those of the case's reply language first)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .accounts import require_admin
from .errors import ReplyError
from .models import Account, ReplyTemplate
from .replies import MAX_REPLY_CHARS
from .services import Workstation

MAX_NAME_CHARS = 80
# A language tag as the reply language is given: "en", "pt-BR", "zh-Hant" (BCP 47 form).
LANGUAGE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,2}$")
# What template changes raise; the web layer shows each in the user's language.
NO_TEMPLATE = "there is no such reply template"
BAD_NAME = f"a template needs a name of 1 to {MAX_NAME_CHARS} characters"
BAD_LANGUAGE = "a template's language is a language code such as en, fr or pt-BR"
EMPTY_TEMPLATE = "a template needs a text"
LONG_TEMPLATE = f"a template may have at most {MAX_REPLY_CHARS} characters"
TAKEN = "a template of that name exists already in that language"


def _checked(name: str, language: str, text: str) -> tuple[str, str, str]:
    name, language = " ".join(name.split()), language.strip().replace("_", "-")
    text = text.replace("\r\n", "\n").strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise ReplyError(BAD_NAME)
    if not LANGUAGE.match(language):
        raise ReplyError(BAD_LANGUAGE)
    if not text:
        raise ReplyError(EMPTY_TEMPLATE)
    if len(text) > MAX_REPLY_CHARS:
        raise ReplyError(LONG_TEMPLATE)
    return name, language, text


def _taken(db: Session, name: str, language: str, other_than: int | None) -> bool:
    query = select(ReplyTemplate.id).where(
        ReplyTemplate.name == name, ReplyTemplate.language == language
    )
    found = db.scalar(query)
    return found is not None and found != other_than


def save_template(
    ws: Workstation,
    actor: Account,
    name: str,
    language: str,
    text: str,
    *,
    template_id: int | None = None,
) -> int:
    """Create a template, or change template ``template_id``; return its id.

    :raises PermissionDeniedError: the actor is not an admin.
    :raises ReplyError: a bad name, language or text, a name taken in that language, or
        no such template.
    """
    require_admin(actor)
    name, language, text = _checked(name, language, text)
    with ws.write() as db:
        if _taken(db, name, language, template_id):
            raise ReplyError(TAKEN)
        now = ws.now()
        if template_id is None:
            template = ReplyTemplate(
                name=name, language=language, text=text, updated_at=now, updated_by=actor.username
            )
            db.add(template)
            action = "template.create"
        else:
            found = db.get(ReplyTemplate, template_id)
            if found is None:
                raise ReplyError(NO_TEMPLATE)
            template = found
            template.name, template.language, template.text = name, language, text
            template.updated_at, template.updated_by = now, actor.username
            action = "template.edit"
        db.flush()
        audit.record(db, now, actor.username, action, detail=f"{name} ({language})")
        return template.id


def delete_template(ws: Workstation, actor: Account, template_id: int) -> str:
    """Delete a template; return its name.

    :raises PermissionDeniedError: the actor is not an admin.
    :raises ReplyError: no such template.
    """
    require_admin(actor)
    with ws.write() as db:
        template = db.get(ReplyTemplate, template_id)
        if template is None:
            raise ReplyError(NO_TEMPLATE)
        name = f"{template.name} ({template.language})"
        db.delete(template)
        audit.record(db, ws.now(), actor.username, "template.delete", detail=name)
    return template.name


def list_templates(ws: Workstation, language: str | None = None) -> Sequence[ReplyTemplate]:
    """Every template by language and name; with ``language``, those whose language is
    it (or its base: "pt" for "pt-BR") first."""
    with ws.sessions() as db:
        found = list(
            db.scalars(select(ReplyTemplate).order_by(ReplyTemplate.language, ReplyTemplate.name))
        )
    if language:
        base = language.replace("_", "-").split("-")[0].lower()
        found.sort(key=lambda t: t.language.split("-")[0].lower() != base)
    return found


def get_template(ws: Workstation, template_id: int) -> ReplyTemplate:
    """:raises ReplyError: no such template."""
    with ws.sessions() as db:
        template = db.get(ReplyTemplate, template_id)
    if template is None:
        raise ReplyError(NO_TEMPLATE)
    return template
