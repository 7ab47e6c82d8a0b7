"""File names that would read as other names on the workstation are refused at the
source, with a reason in the page's language, and nothing is kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from securedrop_wm.errors import FileNameError
from securedrop_wm.sources import check_filename
from tests.conftest import csrf_token, new_source, post_multipart, store_files

SPOOFING = [
    pytest.param("report\u202efdp.exe", id="RLO: reportexe.pdf"),
    pytest.param("report\u202dfdp.exe", id="LRO"),
    pytest.param("report\u202a.pdf", id="LRE"),
    pytest.param("invoice\u2067fdp.exe\u2069", id="RLI...PDI"),
    pytest.param("invoice\u200b.pdf", id="zero-width space"),
    pytest.param("invo\u200cice.pdf", id="ZWNJ between ASCII letters"),
    pytest.param("\u200fnotes.txt", id="RLM"),
    pytest.param("notes\u2060.txt", id="word joiner"),
    pytest.param("\ufeffnotes.txt", id="BOM"),
    pytest.param("notes\x85.txt", id="C1 NEL"),
    pytest.param("notes\x9b31m.txt", id="C1 CSI"),
    pytest.param("notes\u2028.txt", id="line separator"),
]


def _post_file(client: FlaskClient, name: str) -> TestResponse:
    token = csrf_token(client.get("/submit").text)
    data = {
        "csrf_token": token,
        "category": "harassment",
        "urgency": "routine",
        "what_happened": "with a file",
        "files": [(b"ok", "good.txt"), (b"data", name)],
    }
    return post_multipart(client, "/submit", data)


@pytest.mark.parametrize("name", SPOOFING)
def test_a_name_that_reads_as_another_is_refused(name: str) -> None:
    with pytest.raises(FileNameError) as refused:
        check_filename(name)
    assert refused.value.reason == "control"


@pytest.mark.parametrize(
    "name",
    [
        "صورة الشاشة.png",
        "می\u200cخواهم.pdf",  # Persian needs its zero-width non-joiner
        "पत्\u200dर.jpg",  # and Devanagari its joiner
        "👩\u200d💻.png",  # an emoji sequence
    ],
)
def test_names_in_every_script_are_still_accepted(name: str) -> None:
    assert check_filename(name) == name


def test_a_bidi_override_upload_is_refused_in_the_page_language(
    client: FlaskClient, data_dir: Path
) -> None:
    # Given a source whose page is French, sending "reportexe.pdf" that is really an .exe
    client.get("/language/fr")
    new_source(client)
    response = _post_file(client, "report\u202efdp.exe")
    # Then the report is refused, they are told why in French, and nothing is stored
    assert response.status_code == 400
    assert "Un nom de fichier ne doit pas contenir de caractères de contrôle." in response.text
    assert store_files(data_dir) == set()
