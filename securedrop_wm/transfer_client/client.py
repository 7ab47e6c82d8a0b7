"""The transfer client: requests through tor, downloads written whole or not at all."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

import requests

from ..bundles import EXPORT_FORMAT, REPLIES_FORMAT, REPLY_LIMITS
from ..files import fsync_dir, write_atomically
from ..status_counts import TransferStatus
from .errors import (
    BundleRefusedError,
    OnionUnreachableError,
    OutputError,
    TorUnavailableError,
    TransferError,
    TransferInterruptedError,
    TransferProtocolError,
    _causes,
    _clean,
    _http_error,
    _json_body,
    _socks_error,
)
from .settings import TransferSettings

#: ``(bytes done, bytes in all)``: called with 0 when an attempt starts, then per chunk.
Progress = Callable[[int, int], None]

_CHUNK = 256 * 1024
_MAX_DELAY = 30.0
_GREETING_TIMEOUT = 10.0
_SEQUENCE = re.compile(r"[0-9]{1,18}")
_T = TypeVar("_T")

# -- results --------------------------------------------------------------------------


#: What ``GET /status`` says: per urgency level, reports waiting for the workstation and
#: reports ever filed (``status.levels["danger"].pending``); the server's own dataclass.
ServerStatus = TransferStatus


@dataclass(frozen=True)
class PulledBundle:
    """An export bundle written completely to ``path``."""

    path: Path
    sequence: int
    items: int
    size: int
    sha256: str


@dataclass(frozen=True)
class PushResult:
    """What the server did with a reply bundle."""

    sequence: int
    already_imported: bool
    replies_stored: int
    replies_skipped: int
    acknowledged: int
    acknowledged_unknown: int
    purged: int


# -- the client -----------------------------------------------------------------------


class TransferClient:
    """Talks to one transfer API through tor; retries what may succeed later.

    :param on_retry: called as ``on_retry(attempt, error, delay)`` before each retry.
    :param sleep: how to wait between attempts (a test may pass its own).
    """

    def __init__(
        self,
        settings: TransferSettings,
        *,
        on_retry: Callable[[int, TransferError, float], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._on_retry = on_retry
        self._sleep = sleep
        self._http = requests.Session()
        # No proxy, .netrc or CA settings from the environment: nothing may bypass tor.
        self._http.trust_env = False
        self._http.proxies = {"http": settings.proxy_url, "https": settings.proxy_url}
        self._http.headers.update(
            {
                "Authorization": f"Bearer {settings.token}",
                "User-Agent": "securedrop-wm-transfer",
                "Accept-Encoding": "identity",
            }
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TransferClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def status(self) -> ServerStatus:
        """Per urgency level, how many reports wait for the workstation and how many
        ever arrived."""
        return self._retrying(self._status_once)

    def pull(self, output_dir: Path, progress: Progress | None = None) -> PulledBundle:
        """Download the next export bundle into ``output_dir`` as ``export-<seq>.tar``.

        :raises OutputError: the folder is missing, not writable, too full, or another
            pull writes into it.
        :raises TransferInterruptedError: the download broke (after the retries);
            nothing is left in ``output_dir``.
        """
        folder = Path(output_dir)
        with _locked_folder(folder):
            # Left by a pull that was killed: never a bundle, only a fragment of one.
            for stale in folder.glob(".export-*.part"):
                stale.unlink(missing_ok=True)
            return self._retrying(lambda: self._pull_once(folder, progress))

    def push(self, bundle: Path, progress: Progress | None = None) -> PushResult:
        """Upload a reply bundle; the server verifies and imports it all or nothing.

        Sending the same bundle twice is safe: the second time it is "already imported".

        :raises BundleRefusedError: refused here (not a reply bundle, empty, too large)
            or by the server, with its reason.
        :raises ReplayRefusedError: the server has imported a newer bundle.
        """
        size = _check_reply_bundle(Path(bundle))
        return self._retrying(lambda: self._push_once(Path(bundle), size, progress))

    # -- one attempt each ----------------------------------------------------------

    def _status_once(self) -> ServerStatus:
        with self._request("GET", "/status") as response:
            body = _json_body(response)
        try:
            return ServerStatus.from_json(body)
        except ValueError:
            raise TransferProtocolError("the status answer lacks its counts") from None

    def _pull_once(self, folder: Path, progress: Progress | None) -> PulledBundle:
        with self._request("GET", "/export", stream=True) as response:
            length = _header_int(response, "Content-Length")
            sequence = response.headers.get("X-SDWM-Sequence", "")
            if length is None or not _SEQUENCE.fullmatch(sequence):
                raise TransferProtocolError(
                    "the export answer has no length or sequence number: is this the transfer API?"
                )
            items = _header_int(response, "X-SDWM-Items") or 0
            _check_free_space(folder, length)
            part = folder / f".export-{sequence}-{secrets.token_hex(8)}.part"
            try:
                digest = _receive(response, part, length, progress)
                final = _name_final(part, folder, f"export-{sequence}")
            finally:
                part.unlink(missing_ok=True)
        _record_pull_time(final)
        return PulledBundle(final, int(sequence), items, length, digest)

    def _push_once(self, bundle: Path, size: int, progress: Progress | None) -> PushResult:
        try:
            f = bundle.open("rb")
        except OSError as e:
            raise OutputError(f"cannot read {bundle}: {e.strerror}") from None
        with (
            f,
            self._request(
                "POST",
                "/replies",
                data=_ProgressReader(f, size, progress),
                headers={"Content-Type": "application/x-tar", "Content-Length": str(size)},
            ) as response,
        ):
            body = _json_body(response)
        try:
            return PushResult(
                sequence=_count(body, "sequence"),
                already_imported=bool(body["already_imported"]),
                replies_stored=_count(body, "replies_stored"),
                replies_skipped=_count(body, "replies_skipped"),
                acknowledged=_count(body, "acknowledged"),
                acknowledged_unknown=_count(body, "acknowledged_unknown"),
                purged=_count(body, "purged"),
            )
        except (KeyError, ValueError):
            raise TransferProtocolError("the reply upload's answer lacks its counts") from None

    # -- plumbing ------------------------------------------------------------------

    def _retrying(self, attempt: Callable[[], _T]) -> _T:
        for n in range(self.settings.retries + 1):
            try:
                return attempt()
            except TransferError as e:
                if not e.retryable or n == self.settings.retries:
                    raise
                delay = min(self.settings.retry_delay * 2**n, _MAX_DELAY)
                if self._on_retry is not None:
                    self._on_retry(n + 1, e, delay)
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def _request(self, method: str, path: str, **kwargs: Any) -> Iterator[requests.Response]:
        timeout = self.settings.timeout
        self._check_socks()
        try:
            response = self._http.request(
                method,
                self.settings.base_url + path,
                timeout=(timeout, timeout),
                allow_redirects=False,
                **kwargs,
            )
        except requests.RequestException as e:
            raise self._network_error(e) from None
        with response:
            if response.status_code != 200:
                raise _http_error(response, self.settings.onion)
            yield response

    @property
    def _socks(self) -> str:
        return f"{self.settings.socks_host}:{self.settings.socks_port}"

    def _check_socks(self) -> None:
        """Greet the SOCKS port before each request, so that "tor is not running" and
        "that is not tor" are told apart from "the onion cannot be reached"."""
        try:
            with socket.create_connection(
                (self.settings.socks_host, self.settings.socks_port), timeout=_GREETING_TIMEOUT
            ) as sock:
                sock.sendall(b"\x05\x01\x00")  # SOCKS5, one method: no authentication
                reply = sock.recv(2)
        except ConnectionRefusedError:
            raise TorUnavailableError(
                f"tor is not running at {self._socks} (connection refused): start tor, "
                "or give its SocksPort with --socks"
            ) from None
        except TimeoutError:
            reply = b""
        except OSError as e:
            raise TorUnavailableError(f"cannot connect to tor at {self._socks}: {e}") from None
        if reply != b"\x05\x00":
            raise TorUnavailableError(
                f"{self._socks} does not answer as a SOCKS5 proxy: is it tor's SocksPort?"
            )

    def _network_error(self, exc: BaseException) -> TransferError:
        """Say in words why a request through tor failed."""
        for cause in _causes(exc):
            name = type(cause).__name__
            if name == "ProxyConnectionError":
                return TorUnavailableError(f"tor at {self._socks} went away: is it running?")
            if name == "SOCKS5Error":
                match = re.match(r"0x([0-9a-fA-F]{2})", str(getattr(cause, "msg", "")))
                if match:
                    return _socks_error(int(match.group(1), 16), self.settings.onion, self._socks)
            if isinstance(cause, TimeoutError | requests.Timeout):
                return OnionUnreachableError(
                    f"no answer from {self.settings.onion} through tor within "
                    f"{self.settings.timeout:g} s"
                )
        return TransferInterruptedError(
            f"the connection to {self.settings.onion} broke: {_clean(str(exc), 200)}"
        )


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count(body: Mapping[str, Any], name: str) -> int:
    value = body[name]
    if not _is_count(value):
        raise ValueError(name)
    return int(value)


def _header_int(response: requests.Response, name: str) -> int | None:
    value = response.headers.get(name, "")
    return int(value) if re.fullmatch(r"[0-9]{1,15}", value) else None


# -- files ----------------------------------------------------------------------------


@contextlib.contextmanager
def _locked_folder(folder: Path) -> Iterator[None]:
    """Hold ``folder`` for one pull: two pulls writing into it would trip over each
    other's parts."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise OutputError(f"the output folder {folder} does not exist") from None
    except OSError as e:
        raise OutputError(f"cannot open the output folder {folder}: {e.strerror}") from None
    try:
        if not os.access(folder, os.W_OK):
            raise OutputError(f"cannot write into the output folder {folder}")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(f"another pull is writing into {folder}") from None
        yield
    finally:
        os.close(fd)


def _check_free_space(folder: Path, length: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < length:
        raise OutputError(
            f"not enough space in {folder} for the export bundle: "
            f"{_mib(length)} needed, {_mib(free)} free"
        )


def _receive(
    response: requests.Response,
    part: Path,
    length: int,
    progress: Progress | None,
) -> str:
    """Stream the body into ``part`` (made here, 0600); return its SHA-256.

    :raises TransferInterruptedError: fewer or more bytes than ``length``.
    """
    digest = hashlib.sha256()
    received = 0
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise OutputError(f"cannot write into {part.parent}: {e.strerror}") from None
    with os.fdopen(fd, "wb") as out:
        if progress is not None:
            progress(0, length)
        try:
            for chunk in response.iter_content(_CHUNK):
                received += len(chunk)
                if received > length:
                    raise TransferInterruptedError(
                        f"the server sent more than the {length} bytes it announced"
                    )
                _write(out, chunk, part)
                digest.update(chunk)
                if progress is not None:
                    progress(received, length)
        except requests.RequestException:
            pass  # told below, with what arrived
        if received != length:
            raise TransferInterruptedError(
                f"the download broke after {_mib(received)} of {_mib(length)}; nothing was kept"
            )
        try:
            out.flush()
            os.fsync(out.fileno())
        except OSError as e:
            raise _write_error(e, part) from None
    return digest.hexdigest()


def _write(out: IO[bytes], chunk: bytes, part: Path) -> None:
    try:
        out.write(chunk)
    except OSError as e:
        raise _write_error(e, part) from None


def _write_error(e: OSError, part: Path) -> OutputError:
    if e.errno == errno.ENOSPC:
        return OutputError(f"the disk under {part.parent} is full; nothing was kept")
    return OutputError(f"cannot write into {part.parent}: {e.strerror}")


def _name_final(part: Path, folder: Path, stem: str) -> Path:
    """Give the complete ``part`` its final name, never replacing a file."""
    for n in range(100):
        final = folder / (f"{stem}.tar" if n == 0 else f"{stem}.{n}.tar")
        try:
            os.link(part, final)
        except FileExistsError:
            continue
        except OSError:
            # No hard links here (FAT on a USB stick): the folder lock keeps other
            # pulls away while we look and rename.
            if final.exists():
                continue
            try:
                os.rename(part, final)
            except OSError as e:
                raise _write_error(e, part) from None
        with contextlib.suppress(OSError):  # not every file system syncs folders
            fsync_dir(folder)
        return final
    raise OutputError(f"too many {stem} bundles in {folder} already")


def _record_pull_time(bundle: Path) -> None:
    """Write the UTC time of the pull beside ``bundle`` (``export-7.tar.pulled``), for the
    workstation's deadlines. Best effort: without it the workstation counts from its
    import, so a folder too full for one line leaves the pulled bundle as it is."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + "\n"
    with contextlib.suppress(OSError):
        write_atomically(bundle.with_name(bundle.name + ".pulled"), stamp)


def _check_reply_bundle(path: Path) -> int:
    """Refuse here what the server would refuse anyway; return the size to send."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise OutputError(f"{path} is not a file")
        with tarfile.open(path, mode="r:") as tar:
            first = tar.next()
            manifest = tar.extractfile(first) if first and first.name == "manifest.json" else None
            head = json.loads(manifest.read(REPLY_LIMITS.max_manifest_bytes)) if manifest else {}
    except FileNotFoundError:
        raise OutputError(f"{path} does not exist") from None
    except OSError as e:
        raise OutputError(f"cannot read {path}: {e.strerror}") from None
    except (tarfile.TarError, ValueError, UnicodeDecodeError):
        head = {}
    kind = head.get("format") if isinstance(head, dict) else None
    if kind == EXPORT_FORMAT:
        raise _local_refusal(f"{path} is an export bundle from the server, not a reply bundle")
    if kind != REPLIES_FORMAT:
        raise _local_refusal(f"{path} is not a reply bundle (made by the workstation)")
    if size > REPLY_LIMITS.max_total_bytes:
        raise _local_refusal(f"{path} is larger than a reply bundle may be ({_mib(size)})")
    return size


def _local_refusal(message: str) -> BundleRefusedError:
    return BundleRefusedError(f"{message}; nothing was sent", 0, "NotSent", message)


class _ProgressReader:
    """A file to upload that reports how much of it has been read (so: sent)."""

    def __init__(self, f: IO[bytes], size: int, progress: Progress | None) -> None:
        self._f, self._size, self._progress, self._done = f, size, progress, 0
        if progress is not None:
            progress(0, size)

    def __len__(self) -> int:
        return self._size

    def read(self, n: int = -1) -> bytes:
        chunk = self._f.read(n if 0 <= n <= _CHUNK else _CHUNK)
        self._done += len(chunk)
        if self._progress is not None and chunk:
            self._progress(self._done, self._size)
        return chunk


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"
