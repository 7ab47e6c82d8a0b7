"""Fixtures shared by every test tier: real GnuPG homes, a real data dir made by the real
``securedrop-wm init``, fast KDF settings, and an app per test (flaskr style)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import TestResponse, encode_multipart

from securedrop_wm.cli import main as cli
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop, open_drop
from securedrop_wm.settings import Settings, load_settings
from source_ui import create_app
from tests.live import LiveServer, free_port

# Fixture modules shared by several tiers; pytest reads pytest_plugins only here.
pytest_plugins = ["tests.fixtures.bundles", "tests.fixtures.workstation"]

# Argon2id parameters for tests only: the production ones cost ~0.2 s per derivation.
FAST_KDF = ("--kdf-memory-kib", "1024", "--kdf-time-cost", "1")


def short_tempdir(prefix: str) -> Path:
    """A temp dir with a short path: gpg-agent's socket path must fit in 108 bytes."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@dataclass
class Responders:
    """The responders' side of the keys: a GnuPG home holding the team's secret key."""

    home: Path
    team_fingerprint: str
    team_public: Path
    second_fingerprint: str
    second_public: Path
    workstation_fingerprint: str
    workstation_public: Path

    def decrypt(self, path: Path) -> bytes:
        """Decrypt with plain ``gpg`` and the team key, as a responder would."""
        out = subprocess.run(
            ["gpg", "--homedir", str(self.home), "--batch", "--quiet", "--decrypt", str(path)],
            capture_output=True,
            check=True,
        )
        return out.stdout


@pytest.fixture(scope="session")
def responders() -> Iterator[Responders]:
    """A team key, a second responder key and a workstation signing key, made once."""
    home = short_tempdir("sdwm-resp-")
    gpg = GnuPG(home)
    team = gpg.create_key("Response team", None)
    second = gpg.create_key("Responder two", None)
    workstation = gpg.create_key("Responder workstation", None)
    paths = {}
    for name, fpr in (("team", team), ("second", second), ("workstation", workstation)):
        paths[name] = home / f"{name}.asc"
        paths[name].write_text(gpg.export_public_key(fpr))
    yield Responders(
        home, team, paths["team"], second, paths["second"], workstation, paths["workstation"]
    )
    gpg.close()
    shutil.rmtree(home, ignore_errors=True)


def init_data_dir(data_dir: Path, responders: Responders, *extra: str) -> Path:
    """Run the real ``securedrop-wm init`` and return the config path."""
    result = CliRunner().invoke(
        cli,
        [
            "init",
            "--data-dir",
            str(data_dir),
            "--responder-key",
            str(responders.team_public),
            "--responder-key",
            str(responders.second_public),
            "--workstation-key",
            str(responders.workstation_public),
            *FAST_KDF,
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return data_dir / "config.toml"


@pytest.fixture
def data_dir(responders: Responders) -> Iterator[Path]:
    """An initialized data dir in a short temp path, removed afterwards."""
    base = short_tempdir("sdwm-")
    path = base / "data"
    init_data_dir(path, responders)
    yield path
    for home in ("gnupg", "signing"):
        subprocess.run(
            ["gpgconf", "--homedir", str(path / home), "--kill", "gpg-agent"], check=False
        )
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return load_settings(data_dir / "config.toml", environ={})


@pytest.fixture
def drop(settings: Settings) -> Iterator[Drop]:
    d = open_drop(settings)
    yield d
    d.close()


@pytest.fixture
def app(settings: Settings, drop: Drop) -> Flask:
    return create_app(settings, drop)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
CODENAME_RE = re.compile(r'id="codename"[^>]*>([^<]+)<')


def csrf_token(html: str) -> str:
    """The CSRF token of the first form in a page."""
    match = CSRF_RE.search(html)
    assert match, "page has no form with a CSRF token"
    return match.group(1)


def new_source(client: FlaskClient) -> str:
    """Walk through getting a codename; return the codename, leaving the source logged in."""
    page = client.get("/generate")
    codename = CODENAME_RE.search(page.text)
    assert codename
    response = client.post("/create", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 302
    return codename.group(1)


def store_files(data_dir: Path) -> set[str]:
    """Names of the ciphertext files in the store."""
    return {p.name for p in (data_dir / "store").iterdir()}


@pytest.fixture
def live_server(data_dir: Path) -> Iterator[LiveServer]:
    """The real server (gunicorn) on a loopback port, over this test's data dir."""
    with LiveServer(data_dir / "config.toml", free_port()) as server:
        yield server


def post_multipart(client: FlaskClient, url: str, fields: dict[str, object]) -> TestResponse:
    """POST a multipart form whose files are ``(bytes, name)`` tuples (or lists of them).

    The body is built in memory: the test client's own builder spools large bodies to an
    unclosed temp file on the client side, which filterwarnings=error would flag.
    """
    values = MultiDict()
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, tuple):
                values.add(key, FileStorage(io.BytesIO(item[0]), filename=item[1]))
            else:
                values.add(key, str(item))
    boundary, body = encode_multipart(values)
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")
