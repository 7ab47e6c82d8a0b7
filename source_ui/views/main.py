"""Pages anyone can read: landing, safety guidance, language choice."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

bp = Blueprint("main", __name__)


@bp.get("/")
def index() -> Any:
    """What this drop is, who reads reports, how to stay safe."""
    return render_template("index.html")


@bp.get("/safety")
def safety() -> Any:
    """How to report safely, and what to do in immediate danger."""
    return render_template("safety.html")


@bp.get("/language/<lang>")
def choose_language(lang: str) -> Any:
    """Remember a language for this session only, then go back to a page of ours."""
    if lang in current_app.config["SDWM_LANGUAGES"]:
        session["lang"] = lang
    target = request.args.get("next", "")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = url_for("main.index")
    return redirect(target)
