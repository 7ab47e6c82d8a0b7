"""Coverage-guided fuzzing of the source UI's report and login forms, through the Flask
test client of a real app (real gpg, real SQLite): any body gets an answer below 500
without a traceback, and a refused report leaves the store as it was.

Run: python -m fuzz.source_forms [-max_total_time=SECONDS] [CORPUS_DIR]
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["source_ui", "securedrop_wm", "werkzeug.sansio"]):
    from source_ui import create_app

from fuzz.common import run, throwaway_drop
from tests.conftest import csrf_token, new_source

DROP, _ = throwaway_drop()
CLIENT = create_app(DROP.settings, DROP).test_client()
new_source(CLIENT)
BOUNDARY = "fuzzboundary"


def _stored() -> set[str]:
    return {p.name for p in DROP.store.root.iterdir()}


def test(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 2)
    before = _stored()
    if mode == 2:
        token = csrf_token(CLIENT.get("/login").text)
        codename = fdp.ConsumeUnicodeNoSurrogates(300)
        response = CLIENT.post("/login", data={"csrf_token": token, "codename": codename})
        if response.status_code != 401:
            raise AssertionError(f"login answered {response.status_code}")
        return
    token = csrf_token(CLIENT.get("/submit").text)
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
    ).encode()
    if mode == 1:  # valid fields first, so that the fuzzed part reaches the report code
        head += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="category"\r\n\r\nthreats\r\n'
        ).encode()
    body = head + fdp.ConsumeBytes(fdp.remaining_bytes())
    response = CLIENT.post(
        "/submit", data=body, content_type=f"multipart/form-data; boundary={BOUNDARY}"
    )
    text = response.get_data(as_text=True)
    if response.status_code >= 500 or "Traceback" in text:
        raise AssertionError(f"server error {response.status_code} for {body[:200]!r}")
    if response.status_code != 302 and _stored() != before:
        raise AssertionError("a refused report left files in the store")


if __name__ == "__main__":
    run(test)
