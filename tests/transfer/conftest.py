"""Fixtures for the transfer API: an app per test over the test's drop, and a token."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from securedrop_wm.drop import Drop
from securedrop_wm.settings import Settings
from securedrop_wm.transfer import create_token
from transfer_api import create_app


@pytest.fixture
def api(settings: Settings, drop: Drop) -> Flask:
    return create_app(settings, drop)


@pytest.fixture
def api_client(api: Flask) -> FlaskClient:
    return api.test_client()


@pytest.fixture
def token(drop: Drop) -> str:
    return create_token(drop, "on-call")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def levels(
    routine: tuple[int, int] = (0, 0),
    urgent: tuple[int, int] = (0, 0),
    danger: tuple[int, int] = (0, 0),
) -> dict[str, object]:
    """The body ``GET /status`` answers, each level given as ``(pending, arrived)``."""
    given = {"routine": routine, "urgent": urgent, "danger": danger}
    return {
        "levels": {
            level: {"pending": pending, "arrived": arrived}
            for level, (pending, arrived) in given.items()
        }
    }
