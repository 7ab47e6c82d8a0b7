"""A source's file name cannot disguise itself on the workstation: a name imported before
the server refused such names is shown with its hidden characters made visible, and a
file downloads under a neutral name, never the source's."""

from __future__ import annotations

import re
from pathlib import Path

from flask.testing import FlaskClient

from securedrop_wm.codenames import generate_codename
from securedrop_wm.desks import check_route
from securedrop_wm.drop import Drop
from securedrop_wm.sources import PendingFile, ReportFields, create_source, submit_report
from tests.workstation.fixtures import Station, export, import_through_ui, login

SPOOFED = "report\u202efdp.exe"  # shows as "reportexe.pdf"


def _report_with_a_stored_name(drop: Drop, name: str) -> None:
    """A report whose file name the server took without checking it, as a drop server
    from before the check did: start_file without check_filename."""
    source = create_source(drop, generate_codename(drop.settings.codename_words))
    writer = drop.gpg.start_encryption(
        drop.settings.responder_fingerprints, drop.store.new_temp_path()
    )
    writer.write(b"MZ\x90\x00")
    fields = ReportFields(what_happened="see file", category="harassment", urgency="routine")
    desks = check_route(drop.settings, None)  # the drop's only desk
    submit_report(drop, source, fields, [PendingFile(name, writer, desks=desks)])


def test_a_spoofed_name_is_shown_visibly_and_the_file_downloads_under_a_neutral_name(
    ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    # Given a report whose file name carries a right-to-left override, imported
    _report_with_a_stored_name(drop, SPOOFED)
    assert login(ws_client, station).status_code == 302
    import_through_ui(ws_client, export(drop, tmp_path))
    case_url = re.search(r'href="(/cases/\d+)"', ws_client.get("/").text)
    assert case_url
    # When the responder opens the case
    page = ws_client.get(case_url.group(1)).text
    # Then the override is shown as a marker, not obeyed, and the name is isolated
    assert "\u202e" not in page
    assert "<bdi>report⟨U+202E⟩fdp.exe</bdi>" in page
    # and the file downloads as an opaque attachment under a name that is not the source's
    file_url = re.search(r'href="(/files/([0-9a-f-]+))"', page)
    assert file_url
    download = ws_client.get(file_url.group(1))
    assert download.get_data() == b"MZ\x90\x00"
    download.close()
    disposition = download.headers["Content-Disposition"]
    assert disposition == f"attachment; filename=attachment-{file_url.group(2)}.bin"
    assert "exe" not in disposition and "pdf" not in disposition
