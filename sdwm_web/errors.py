"""Quiet HTML error pages: a message in the visitor's language, never a traceback."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException

# An error page's body and status; the template is the app's own ``error.html``.
Page = tuple[str, int]


def init_error_pages(
    app: Flask,
    *,
    messages: Callable[[], Mapping[int, str]],
    fallback: Callable[[], str],
    unexpected: Callable[[], str],
    title: Callable[[], str] | None = None,
    template: str = "error.html",
) -> None:
    """Answer HTTP errors and unexpected exceptions of ``app`` with ``template``.

    The texts are functions, called while a request is handled, so that they are
    translated into the request's language.

    :param messages: the message for each status code the app words itself.
    :param fallback: the message for any other status code.
    :param unexpected: the message for an exception no handler expected (a 500).
    :param title: the page's title, if its template shows one.
    """

    def page(message: str, code: int) -> Page:
        extra = {"title": title()} if title is not None else {}
        return render_template(template, message=message, **extra), code

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException) -> Page:
        code = e.code or 500
        return page(messages().get(code, fallback()), code)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception) -> Page:
        # No traceback in the page or the log: it could quote a source's message.
        return page(unexpected(), 500)
