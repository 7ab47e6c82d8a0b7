"""The workstation fixtures, for the journalist UI's routes."""

from tests.workstation.fixtures import desk, ws, ws_app, ws_client  # noqa: F401
