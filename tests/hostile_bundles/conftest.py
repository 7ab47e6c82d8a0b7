"""The workstation fixtures (a real ``workstation init`` pinned to the test's server)."""

from tests.workstation.fixtures import desk, ws, ws_app, ws_client  # noqa: F401
