"""The source pages tell the truth about alerts: they promise that the on-call responder
is alerted only where the deployment says so (``alerts_configured``); otherwise they say
what happens and how long it usually takes (``usual_response_hours``)."""

from __future__ import annotations

import dataclasses
import re
import time
from html.parser import HTMLParser

import pytest
from flask import Flask

from securedrop_wm.drop import Drop
from securedrop_wm.settings import Settings
from source_ui import create_app
from tests.conftest import csrf_token, new_source, post_multipart
from tests.i18n.catalogs import ROOT, read_catalog

ALERTED = "The on-call responder is alerted to reports marked urgent or in danger."
# Words that promise someone is woken: none may reach a source where nobody is.
PROMISE = re.compile(r"alert|on-call|notif|wake|woken", re.IGNORECASE)
# The pages that say what happens to a report marked "I am in danger now".
DANGER_PAGES = ("safety", "thanks-danger")
TEMPLATES = ROOT / "source_ui" / "templates"


class _Text(HTMLParser):
    """The text a reader sees: no markup, no attribute (``role="alert"`` is none)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._hidden += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """The text of ``html`` as one line of words."""
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def _app(settings: Settings, drop: Drop, now: list[float], **changes: object) -> Flask:
    return create_app(dataclasses.replace(settings, **changes), drop, clock=lambda: now[0])


def every_page(
    settings: Settings, drop: Drop, lang: str = "en", **changes: object
) -> dict[str, str]:
    """Every source page a visitor and a logged-in source reach, in ``lang``, as the
    text a reader sees, with ``changes`` to the settings."""
    now = [time.time()]
    client = _app(settings, drop, now, **changes).test_client()
    client.get(f"/language/{lang}")
    pages: dict[str, str] = {}

    def keep(name: str, response: object, status: int = 200) -> str:
        assert response.status_code == status, name  # type: ignore[attr-defined]
        html: str = response.text  # type: ignore[attr-defined]
        pages[name] = visible_text(html)
        return html

    for name, path in (("landing", "/"), ("safety", "/safety"), ("generate", "/generate")):
        keep(name, client.get(path))
    login = keep("login", client.get("/login"))
    form = {"csrf_token": csrf_token(login), "codename": "not a codename at all"}
    keep("login-error", client.post("/login", data=form), 401)
    keep("not-found", client.get("/no-such-page"), 404)
    new_source(client)
    for urgency in ("routine", "danger"):
        submit = keep("submit", client.get("/submit"))
        fields = {"csrf_token": csrf_token(submit), "category": "threats", "urgency": urgency}
        sent = post_multipart(client, "/submit", {**fields, "what_happened": "They came."})
        assert sent.status_code == 302, urgency
        keep("thanks" if urgency == "routine" else "thanks-danger", client.get("/thanks"))
    replies = keep("replies", client.get("/replies"))
    logout = {"csrf_token": csrf_token(replies)}
    keep("logged-out", client.post("/logout", data=logout, follow_redirects=True))
    new_source(client)
    now[0] += settings.session_minutes * 60 + 1
    keep("session-expired", client.get("/replies"), 401)
    return pages


def test_no_page_promises_an_alert_when_alerting_is_not_configured(
    settings: Settings, drop: Drop
) -> None:
    # Given a deployment without alerting (the default)
    assert settings.alerts_configured is False and settings.usual_response_hours == 48
    # When a visitor and a source walk every page
    pages = every_page(settings, drop)
    # Then no page promises that anyone is alerted
    assert {
        name: PROMISE.findall(text) for name, text in pages.items() if PROMISE.search(text)
    } == {}
    # and the danger pages say what happens instead, and how long it usually takes
    usual = (
        "The response team checks for new reports regularly and usually answers within 48 hours."
    )
    for name in DANGER_PAGES:
        assert usual in pages[name], name
    # while their immediate, local safety steps stay
    assert "contact local emergency services or someone you trust nearby" in pages["safety"]
    assert "contact local emergency services or someone you trust." in pages["thanks-danger"]
    assert 'Send a report marked "I am in danger now".' in pages["safety"]


def test_the_danger_pages_promise_an_alert_when_alerting_is_configured(
    settings: Settings, drop: Drop
) -> None:
    pages = every_page(settings, drop, alerts_configured=True)
    for name in DANGER_PAGES:
        assert ALERTED in pages[name], name
        assert "usually answers within" not in pages[name]
    assert "contact local emergency services" in pages["thanks-danger"]


@pytest.mark.parametrize(
    ("hours", "english"),
    [
        (1, "usually answers within 1 hour."),
        (2, "usually answers within 2 hours."),
        (720, "usually answers within 720 hours."),
    ],
)
def test_the_usual_response_time_is_the_setting_in_english(
    settings: Settings, drop: Drop, hours: int, english: str
) -> None:
    pages = every_page(settings, drop, usual_response_hours=hours)
    assert english in pages["safety"] and english in pages["thanks-danger"]


ARABIC_NO_ALERT = "يتفقد فريق الاستجابة البلاغات الجديدة بانتظام ويرد عادةً خلال "


@pytest.mark.parametrize(
    ("hours", "within"),
    [(1, "ساعة واحدة"), (2, "ساعتين"), (3, "3 ساعات"), (48, "48 ساعة"), (100, "100 ساعة")],
)
def test_arabic_pages_take_the_plural_form_of_the_hours(
    settings: Settings, drop: Drop, hours: int, within: str
) -> None:
    # Arabic has six plural forms: one hour, two hours, 3 to 10 hours, 11 to 99, 100 and up
    now = [time.time()]
    client = _app(settings, drop, now, usual_response_hours=hours).test_client()
    client.get("/language/ar")
    html = client.get("/safety").text
    assert '<html lang="ar" dir="rtl">' in html
    assert ARABIC_NO_ALERT + within + "." in visible_text(html)
    assert "المستجيب المناوب" not in html


def test_arabic_pages_promise_the_alert_only_when_configured(
    settings: Settings, drop: Drop
) -> None:
    alerted = "يتلقى المستجيب المناوب تنبيهًا بالبلاغات العاجلة وبلاغات الخطر."
    with_alerts = every_page(settings, drop, "ar", alerts_configured=True)
    without = every_page(settings, drop, "ar")
    for name in DANGER_PAGES:
        assert alerted in with_alerts[name] and ARABIC_NO_ALERT not in with_alerts[name]
        assert ARABIC_NO_ALERT + "48 ساعة." in without[name]
    assert not any(alerted in text or "تنبيه" in text for text in without.values())


def test_only_the_alerting_branch_of_the_templates_speaks_of_alerts() -> None:
    # Pages the walk cannot reach (busy) included: the one message that promises an alert
    # is shown by _response.html, and only under alerts_configured.
    promising = {m.id for m in read_catalog(ROOT / "source_ui" / "translations" / "messages.pot")}
    promising = {i for i in promising if isinstance(i, str) and PROMISE.search(i)}
    assert promising == {ALERTED}
    using = [p.name for p in TEMPLATES.glob("*.html") if ALERTED in p.read_text()]
    assert using == ["_response.html"]
    branch = (TEMPLATES / "_response.html").read_text()
    assert re.search(r"\{%-? if alerts_configured -?%\}\s*\{\{ _\(\"" + re.escape(ALERTED), branch)
