"""The three endpoints: status, export download, reply upload; each the token's desk's
only (desks.py)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.wsgi import wrap_file

from sdwm_web.services import DROP, service
from securedrop_wm.bundles import BundleError, ReplayError, import_reply_bundle
from securedrop_wm.bundles.server import latest_export
from securedrop_wm.drop import Drop
from securedrop_wm.errors import SecureDropError
from securedrop_wm.transfer import transfer_status

from .security import error, token_desk

bp = Blueprint("transfer", __name__)
_CHUNK = 256 * 1024


def _drop() -> Drop:
    return service(current_app, DROP, Drop)


def _temp_path(drop: Drop, suffix: str) -> Path:
    """A fresh file name in the data dir's tmp folder: bundles hold only ciphertext."""
    folder = drop.settings.data_dir / "tmp"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / f".{suffix}-{secrets.token_hex(16)}.tar"


@bp.get("/status")
def status() -> Any:
    """Per urgency level, how many reports wait for the workstation and how many ever
    arrived at the token's desk: ``{"levels": {"routine": {"pending": P, "arrived": A},
    ...}}``, nothing else."""
    return jsonify(transfer_status(_drop(), token_desk()).to_json())


@bp.get("/export")
def export() -> Any:
    """Stream the export bundle of what is pending: the last one again if nothing changed
    (same sequence, same bytes), else a new one (``latest_export``)."""
    try:
        bundle = latest_export(_drop(), token_desk())
    except SecureDropError as e:
        return error(503, type(e).__name__, str(e))
    f = bundle.file
    response = Response(
        wrap_file(request.environ, f, _CHUNK),
        mimetype="application/x-tar",
        direct_passthrough=True,
    )
    response.content_length = os.fstat(f.fileno()).st_size
    response.headers["Content-Disposition"] = f'attachment; filename="export-{bundle.sequence}.tar"'
    response.headers["X-SDWM-Sequence"] = str(bundle.sequence)
    response.headers["X-SDWM-Items"] = str(bundle.items)
    return response


@bp.post("/replies")
def replies() -> Any:
    """Receive a reply bundle into a temp file, then verify and import it all or nothing."""
    drop = _drop()
    path = _temp_path(drop, "replies")
    try:
        with path.open("xb") as out:
            stream = request.stream
            while chunk := stream.read(_CHUNK):
                out.write(chunk)
        if path.stat().st_size == 0:
            return error(400, "EmptyBody", "send the reply bundle as the request body")
        result = import_reply_bundle(drop, path, desk=token_desk())
    except ReplayError as e:
        return error(409, "ReplayError", str(e))
    except BundleError as e:
        return error(422, type(e).__name__, str(e))
    except SecureDropError as e:
        return error(503, type(e).__name__, str(e))
    finally:
        path.unlink(missing_ok=True)
    return jsonify(
        already_imported=result.already_imported,
        sequence=result.sequence,
        replies_stored=result.replies_stored,
        replies_skipped=result.replies_skipped,
        acknowledged=result.acknowledged,
        acknowledged_unknown=result.acknowledged_unknown,
        purged=result.purged,
    )
