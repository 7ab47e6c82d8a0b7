"""No logs: a whole source session leaves no address, browser or secret in any file.

Given a real server, when a source connects from an address nothing else uses, with a
distinctive User-Agent and an ``X-Forwarded-For`` header, gets a codename, reports with
a file, fails a login, logs out, logs in again and reads a reply, then neither the
server's output nor any file in its data dir (database included) nor any file written
in the temp dirs names the address, the forwarded address, the User-Agent, the
codenames typed or the marker the report carried.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

from .conftest import ContainedServer
from .scan import files_containing
from .source_http import HttpSource

IPV4 = re.compile(rb"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")


def test_source_session_leaves_no_trace(contained_server: ContainedServer) -> None:
    # Given: a client whose every identifying detail is unique to this test.
    server = contained_server.server
    client_ip = "127." + ".".join(str(secrets.randbelow(200) + 20) for _ in range(3))
    forwarded_ip = f"203.0.113.{secrets.randbelow(250) + 2}"
    user_agent = f"Mozilla/5.0 (NoLogsProbe {secrets.token_hex(8)}) Gecko/20100101"
    marker = "SDWM-NOLOG-" + secrets.token_hex(12)
    wrong_codename = f"wrong{secrets.token_hex(4)} guess codename"
    source = HttpSource(
        server.url,
        {"User-Agent": user_agent, "X-Forwarded-For": forwarded_ip},
        source_address=client_ip,
    )

    # When: the whole session happens.
    try:
        assert source.get("/").status_code == 200
        codename = source.new_codename()
        source.get("/submit")
        thanks = source.submit(
            {"category": "threats", "urgency": "routine", "what_happened": f"text {marker}"},
            f"photo-{marker}.jpg",
            os.urandom(200_000) + marker.encode(),
        )
        assert thanks.url.endswith("/thanks"), thanks.text
        source.logout()
        assert source.login(wrong_codename).status_code == 401
        reply = _add_reply(contained_server, "We read your report and will help.")
        assert source.login(codename).url.endswith("/replies")
        assert reply in source.page
    finally:
        source.close()
    server.stop()

    # Then: none of it is anywhere the server writes.
    needles = {
        "client address": client_ip.encode(),
        "forwarded address": forwarded_ip.encode(),
        "User-Agent": user_agent.encode(),
        "User-Agent token": user_agent.split()[2].encode(),
        "codename": codename.encode(),
        "wrong codename": wrong_codename.encode(),
        "marker": marker.encode(),
    }
    assert files_containing([contained_server.data_dir], needles, since=0) == []
    roots = contained_server.written_roots()
    assert files_containing(roots, needles, contained_server.started) == []
    # The only address the server's output may name is the one it listens on.
    output = server.stdout_path.read_bytes()
    assert output, "the server wrote no start-up line: is its output captured?"
    listening = f"127.0.0.1:{server.port}".encode()
    for match in IPV4.finditer(output):
        assert output[match.start() :].startswith(listening), output


def _add_reply(contained: ContainedServer, text: str) -> str:
    """Add a reply to the only source with the real CLI, as a responder would."""
    config = str(contained.data_dir / "config.toml")
    cli = [sys.executable, "-m", "securedrop_wm", "--config", config]
    listing = subprocess.run(
        [*cli, "list-sources"], capture_output=True, text=True, check=True
    ).stdout
    (designation,) = [line.split("\t")[0] for line in listing.splitlines()]
    subprocess.run([*cli, "add-reply", designation, "-m", text], check=True, capture_output=True)
    return text
