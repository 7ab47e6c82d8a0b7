"""Coverage-guided fuzzing of export bundle verification (what the workstation runs on
whatever the transfer machine hands it): any bytes are refused with a BundleError and
nothing kept, or verify to exactly the genuine manifest.

The input either is the bundle (raw mode) or edits a genuine bundle made at start-up
(mutation mode), which reaches the signature, manifest and member checks.

Run: python -m fuzz.bundles [-max_total_time=SECONDS] [CORPUS_DIR]
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["securedrop_wm.bundles", "tarfile"]):
    from securedrop_wm.bundles import BundleError, export_bundle, verify_export_bundle

from fuzz.common import folder_is_empty, run, throwaway_drop
from securedrop_wm.crypto import GnuPG
from tests.bundles.helpers import submit

DROP, RESPONDERS = throwaway_drop()
WORK = DROP.settings.data_dir.parent / "work"  # removed with the throwaway drop
WORK.mkdir()
submit(DROP, {"photo.jpg": bytes(range(256)) * 8})
GENUINE_PATH = WORK / "genuine.tar"
GENUINE = export_bundle(DROP, GENUINE_PATH)
GENUINE_BYTES = GENUINE_PATH.read_bytes()
READER = GnuPG(RESPONDERS.home)  # the workstation side: pins the server's public key
READER.import_keys(DROP.gpg.export_public_key(DROP.settings.signing_fingerprint))
KEEP = WORK / "keep"
KEEP.mkdir()


def test(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        bundle = fdp.ConsumeBytes(fdp.remaining_bytes())
    else:
        buf = bytearray(GENUINE_BYTES)
        for _ in range(fdp.ConsumeIntInRange(1, 4)):
            at = fdp.ConsumeIntInRange(0, len(buf))
            what = fdp.ConsumeIntInRange(0, 2)
            chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 32))
            if what == 0:
                buf[at : at + len(chunk)] = chunk
            elif what == 1:
                buf[at:at] = chunk
            else:
                del buf[at : at + len(chunk) * 16]
        bundle = bytes(buf)
    path = WORK / "input.tar"
    path.write_bytes(bundle)
    try:
        with verify_export_bundle(
            path, READER, DROP.settings.signing_fingerprint, KEEP
        ) as verified:
            if verified.manifest != GENUINE:
                raise AssertionError("a changed bundle verified as something else")
    except BundleError:
        pass
    if not folder_is_empty(KEEP):
        raise AssertionError("a refused bundle left files behind")


if __name__ == "__main__":
    run(test)
