"""Canary: a marker sent in a report's text and inside a 20 MiB file ends up nowhere on disk.

Given a real server (gunicorn, real gpg) whose TMPDIR and working directory are ours,
when a source sends a report whose text and streamed file carry a unique marker,
then no file the server could have written holds the marker (not even an anonymous
temporary file held open mid-upload), and the stored ciphertexts decrypt with plain
gpg and the responders' key to exactly what was sent.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

import pytest

from tests.conftest import Responders

from .conftest import ContainedServer
from .scan import Finding, files_containing, open_files_containing, process_tree
from .source_http import HttpSource, stored_rows

MIB = 1024 * 1024
FILE_SIZE = 20 * MIB
PAUSE_AT = 16 * MIB
# Bytes still in flight when the client pauses (Werkzeug's read, the writer's queue of
# 1 MiB, the pipe into gpg) stay well under 2 MiB: by this much ciphertext, every marker
# up to 13 MiB has been through the whole server.
SEEN_THROUGH = 13 * MIB + MIB // 2


def canary_file(marker: bytes) -> bytes:
    """20 MiB of random bytes with the marker at the start, the end, across a 64 KiB
    chunk edge and at a few odd offsets in between."""
    data = bytearray(os.urandom(FILE_SIZE))
    offsets = [0, 65536 - 7, MIB + 3, 7 * MIB + 1, 13 * MIB + 12345, FILE_SIZE - len(marker)]
    for offset in offsets:
        data[offset : offset + len(marker)] = marker
    return bytes(data)


def store_temp_bytes(store: Path) -> int:
    """Bytes of ciphertext written so far to the store's in-progress files."""
    total = 0
    for p in store.glob(".tmp-*"):
        try:
            total += p.stat().st_size
        except FileNotFoundError:
            continue
    return total


@pytest.mark.slow
def test_marker_reaches_no_disk_and_ciphertext_decrypts_exactly(
    contained_server: ContainedServer, responders: Responders
) -> None:
    # Given: a server with its own temp dir and working directory, both scanned later.
    server, data_dir = contained_server.server, contained_server.data_dir
    marker = b"SDWM-CANARY-" + secrets.token_hex(16).encode()
    needles = {"marker": marker}
    content = canary_file(marker)
    text = f"They posted my address. Canary: {marker.decode()} (end)"
    mid_upload: list[Finding] = []
    checked_mid_upload: list[int] = []

    def look_mid_upload(sent: int) -> None:
        # While the request is still streaming, look at every file the server's
        # processes hold open: Werkzeug's spooling would use an unlinked temp file.
        if sent < PAUSE_AT or checked_mid_upload:
            return
        deadline = time.monotonic() + 20
        while store_temp_bytes(data_dir / "store") < SEEN_THROUGH:
            assert time.monotonic() < deadline, "the server stopped encrypting mid-upload"
            time.sleep(0.05)
        pids = process_tree(contained_server.pid)
        checked_mid_upload.append(len(pids))
        mid_upload.extend(open_files_containing(pids, needles))

    # When: a source sends the report with the streamed file.
    source = HttpSource(server.url, {})
    try:
        source.new_codename()
        response = source.submit(
            {"category": "doxxing", "urgency": "urgent", "what_happened": text},
            "evidence.bin",
            content,
            on_progress=look_mid_upload,
        )
    finally:
        source.close()
    assert response.status_code == 200, response.text
    assert response.url.endswith("/thanks")
    assert "1 file was encrypted" in response.text
    after_upload = open_files_containing(process_tree(contained_server.pid), needles)
    server.stop()

    # Then: nothing the server held open or wrote carries the marker.
    assert checked_mid_upload, "the upload was never inspected while in progress"
    assert checked_mid_upload[0] >= 4, "expected the master, two workers and gpg"
    assert mid_upload == []
    assert after_upload == []
    roots = contained_server.written_roots()
    assert files_containing(roots, needles, contained_server.started) == []

    # And the ciphertexts decrypt, as a responder would, to exactly what was sent.
    subs = {s["kind"]: s for s in stored_rows(data_dir, "submissions")}
    assert sorted(subs) == ["file", "message"]
    stored = responders.decrypt(data_dir / "store" / subs["file"]["store_name"])
    assert len(stored) == len(content)
    assert stored == content
    message = json.loads(responders.decrypt(data_dir / "store" / subs["message"]["store_name"]))
    assert message["what_happened"] == text
    assert message["files"] == [
        {"submission": subs["file"]["uuid"], "name": "evidence.bin", "size": FILE_SIZE}
    ]
    assert subs["file"]["size"] == FILE_SIZE
