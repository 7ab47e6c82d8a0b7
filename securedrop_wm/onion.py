"""Onion services through Tor's control port.

The one module that talks to Tor, through stem. It publishes the source UI as a v3
onion service and the transfer API as a second one with v3 client authorization,
manages the authorized clients, reports Tor's status and stops cleanly.

A service's keys live in a *key dir* (:mod:`securedrop_wm.onion_keys`, whose public
names are importable from here too); its defences are read by
:mod:`securedrop_wm.onion_defences` (``load_defences`` and ``DEFENCES_FILE`` are
importable from here too); stem and launched-tor helpers are in
:mod:`securedrop_wm.tor_process`. See ``docs/onion.md``.

Usage::

    with Onion.connect(9051) as onion:  # or Onion.launch(data_dir)
        service = onion.publish(key_dir, {80: 8080})
        print(service.address)
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import stem
import stem.connection
import stem.control
import stem.response
import stem.version

from .errors import (
    ClientKeyError,
    KeyFileError,
    OnionError,
    PublicationTimeoutError,
    TorAuthenticationError,
    TorLaunchError,
    TorNotRunningError,
    TorTooOldError,
)
from .onion_defences import DEFENCES_FILE, add_onion_arguments, load_defences
from .onion_keys import (
    AuthorizedClient,
    ClientKeypair,
    add_authorized_client,
    ensure_service_key,
    generate_client_keypair,
    list_authorized_clients,
    load_or_create_key,
    remove_authorized_client,
    service_address,
    write_public_files,
)
from .tor_process import (
    TorOutput,
    close_controller,
    connect_launched,
    probe,
    quiet_stem,
    start_tor,
    terminate,
    tor_errors,
)

__all__ = [
    "MIN_CLIENT_AUTH_VERSION",
    "MIN_TOR_VERSION",
    "DEFENCES_FILE",
    "AuthorizedClient",
    "ClientKeyError",
    "ClientKeypair",
    "KeyFileError",
    "Onion",
    "OnionError",
    "OnionService",
    "PublicationTimeoutError",
    "TorAuthenticationError",
    "TorLaunchError",
    "TorNotRunningError",
    "TorStatus",
    "TorTooOldError",
    "add_authorized_client",
    "ensure_service_key",
    "generate_client_keypair",
    "list_authorized_clients",
    "load_defences",
    "remove_authorized_client",
    "require_tor_version",
    "service_address",
]

#: Oldest tor that publishes v3 onion services reliably (first v3 stable series).
MIN_TOR_VERSION = "0.3.5.7"
#: Oldest tor whose ADD_ONION takes ``ClientAuthV3``.
MIN_CLIENT_AUTH_VERSION = "0.4.6.1"
_TARGET = re.compile(r"unix:/[^\s,]+|[A-Za-z0-9.\-]+:\d{1,5}|\[[0-9A-Fa-f:.]+\]:\d{1,5}")


@dataclass(frozen=True)
class OnionService:
    """An onion service published by an :class:`Onion`."""

    #: The address without ``.onion``: 56 base32 characters.
    service_id: str
    #: Where its keys (and authorized clients) are kept.
    key_dir: Path
    #: ``(virtual port, target)`` pairs, e.g. ``((80, "127.0.0.1:8080"),)``.
    ports: tuple[tuple[int, str], ...]
    #: Whether only authorized clients can reach it.
    client_auth: bool
    #: The defences it was published with (torrc option: value), see :func:`load_defences`.
    defences: Mapping[str, int] = field(default_factory=dict, hash=False)

    @property
    def address(self) -> str:
        return f"{self.service_id}.onion"

    @property
    def url(self) -> str:
        return f"http://{self.address}/"


@dataclass(frozen=True)
class TorStatus:
    """What :meth:`Onion.status` reports."""

    tor_version: str
    bootstrap_percent: int
    bootstrap_summary: str
    #: Service ids of this Onion's services whose descriptor tor has uploaded.
    published: frozenset[str]

    @property
    def bootstrapped(self) -> bool:
        return self.bootstrap_percent >= 100


def require_tor_version(
    version: str, minimum: str = MIN_TOR_VERSION, feature: str = "v3 onion services"
) -> None:
    """Check a tor version string against a minimum.

    :raises TorTooOldError: ``version`` is older than ``minimum``.
    """
    if stem.version.Version(version) < stem.version.Version(minimum):
        raise TorTooOldError(f"tor {version} is too old for {feature}: {minimum} or newer needed")


# -- tor ------------------------------------------------------------------------


class Onion:
    """A control connection to one tor, and the onion services published on it.

    Make one with :meth:`connect` (a tor that runs already) or :meth:`launch` (a
    tor of our own). Services are ephemeral (``ADD_ONION``): they go away when the
    connection closes, while their keys stay in their key dirs. Not meant to be
    shared between threads without a lock of the caller's.
    """

    def __init__(self, controller: Any, *, process: subprocess.Popen[bytes] | None = None) -> None:
        """Take over an authenticated stem controller (and the tor process, if ours).

        Use :meth:`connect` or :meth:`launch` rather than this.
        """
        self._controller = controller
        self._process = process
        self._services: dict[str, OnionService] = {}
        self._uploads: dict[str, float] = {}
        self._upload_starts: dict[tuple[str, str], float] = {}
        self._upload_failures: dict[str, str] = {}
        self._uploaded = threading.Condition()
        try:
            with tor_errors("report its version and descriptor uploads"):
                version = str(controller.get_version())
                controller.add_event_listener(self._on_hs_desc, stem.control.EventType.HS_DESC)
            self.tor_version = version
            require_tor_version(version)
        except BaseException:
            self.close()
            raise

    @classmethod
    def connect(
        cls,
        control_port: int = 9051,
        *,
        host: str = "127.0.0.1",
        socket_path: Path | None = None,
        password: str | None = None,
    ) -> Onion:
        """Connect to a running tor's control port (or socket) and authenticate,
        with the cookie tor names or with ``password``.

        :raises TorNotRunningError: nothing listens there.
        :raises TorAuthenticationError: tor refused the credentials.
        :raises TorTooOldError: tor cannot publish v3 onion services.
        """
        where = str(socket_path) if socket_path else f"{host}:{control_port}"
        try:
            probe(host, control_port, socket_path)
            with quiet_stem():
                if socket_path is not None:
                    controller = stem.control.Controller.from_socket_file(str(socket_path))
                else:
                    controller = stem.control.Controller.from_port(host, control_port)
        except (OSError, stem.SocketError) as exc:
            raise TorNotRunningError(f"no tor control port at {where}: {exc}") from exc
        try:
            controller.authenticate(password=password)
        except stem.connection.AuthenticationFailure as exc:
            close_controller(controller)
            raise TorAuthenticationError(f"tor at {where} refused authentication: {exc}") from exc
        except stem.SocketError as exc:
            close_controller(controller)
            raise TorNotRunningError(f"tor at {where} closed the connection: {exc}") from exc
        return cls(controller)

    @classmethod
    def launch(
        cls,
        data_dir: Path,
        *,
        tor_cmd: str = "tor",
        config: Mapping[str, str | Sequence[str]] | None = None,
        timeout: float = 120.0,
        wait_for_bootstrap: bool = True,
    ) -> Onion:
        """Start a tor of our own in ``data_dir`` and connect to it.

        The tor listens on a control socket in ``data_dir`` (cookie auth) and on no
        SOCKS port unless ``config`` says otherwise; it exits when this Onion is
        closed, and also if this process dies.

        :param config: extra torrc options; a list value repeats the option.
        :param timeout: seconds to wait for the control socket and, with
            ``wait_for_bootstrap``, for tor to be 100% bootstrapped.
        :raises TorLaunchError: tor would not start, or did not bootstrap in time.
        """
        process, socket_path, output = start_tor(data_dir, tor_cmd, config)
        try:
            controller = connect_launched(process, socket_path, output, timeout)
            onion = cls(controller, process=process)
        except BaseException:
            terminate(process)
            raise
        if wait_for_bootstrap:
            try:
                onion._wait_bootstrapped(timeout, output)
            except BaseException:
                onion.close()
                raise
        return onion

    # -- status -----------------------------------------------------------------

    def status(self) -> TorStatus:
        """Tor's version and bootstrap progress, and which services are published."""
        with tor_errors("report its bootstrap status"):
            phase = str(self._controller.get_info("status/bootstrap-phase"))
        progress = re.search(r"PROGRESS=(\d+)", phase)
        summary = re.search(r'SUMMARY="([^"]*)"', phase)
        with self._uploaded:
            published = frozenset(sid for sid in self._services if sid in self._uploads)
        return TorStatus(
            tor_version=self.tor_version,
            bootstrap_percent=int(progress.group(1)) if progress else 0,
            bootstrap_summary=summary.group(1) if summary else phase,
            published=published,
        )

    @property
    def services(self) -> list[OnionService]:
        """The services this Onion has published and not removed."""
        return list(self._services.values())

    # -- publishing -------------------------------------------------------------

    def publish(
        self,
        key_dir: Path,
        ports: Mapping[int, int | str],
        *,
        client_auth: bool = False,
        defences: Mapping[str, int] | None = None,
        await_publication: bool = True,
        timeout: float = 90.0,
    ) -> OnionService:
        """Publish the v3 onion service whose key is in ``key_dir``.

        The key is made (mode 0600) on first use, so the address survives restarts.
        With ``client_auth`` only the clients authorized in ``key_dir`` (see
        :meth:`add_client`) can reach it.

        :param ports: virtual port to target: a local port number, ``"host:port"``
            or ``"unix:/path"``.
        :param defences: Tor's onion-service defences, ``{torrc option: value}`` as
            :func:`load_defences` gives them: proof-of-work and stream limits go to tor
            with the service; the intro-point DoS defence, which ADD_ONION cannot
            carry, only in a torrc (production, docs/onion.md).
        :param await_publication: return only once tor has uploaded the descriptor.
        :raises KeyFileError: the key is unreadable, corrupt, too open, or does not
            match the address recorded in ``key_dir``.
        :raises ClientKeyError: ``client_auth`` without an authorized client, or
            authorized clients in a key dir published without ``client_auth``.
        :raises TorTooOldError: ``client_auth`` on a tor that cannot do it, or
            ``defences`` that its ADD_ONION does not take (an older tor).
        :raises PublicationTimeoutError: the descriptor was not uploaded in time.
        """
        key_dir = Path(key_dir)
        port_pairs = _port_pairs(ports)
        clients = list_authorized_clients(key_dir)
        if client_auth:
            require_tor_version(self.tor_version, MIN_CLIENT_AUTH_VERSION, "client authorization")
            if not clients:
                raise ClientKeyError(
                    f"no client is authorized in {key_dir}: the service would be public"
                )
        elif clients:
            raise ClientKeyError(
                f"{key_dir} has authorized clients: publish it with client_auth=True"
            )
        blob, known_address = load_or_create_key(key_dir)
        known_id = known_address.removesuffix(".onion") if known_address else None
        if known_id in self._services:
            raise OnionError(f"{known_address} is published already")
        defences = dict(defences or {})
        flags, keywords = add_onion_arguments(defences)
        command = [
            f"ADD_ONION ED25519-V3:{blob}",
            "Flags=" + ",".join(["DiscardPK", *(["V3Auth"] if client_auth else []), *flags]),
            *keywords,
            *(f"Port={virtual},{target}" for virtual, target in port_pairs),
            *(f"ClientAuthV3={c.public_key}" for c in clients if client_auth),
        ]
        started = time.monotonic()
        with tor_errors("publish the onion service"):
            reply = self._controller.msg(" ".join(command))
        if not reply.is_ok():
            if "Unrecognized keyword argument" in str(reply):
                raise TorTooOldError(
                    f"tor {self.tor_version} cannot publish an onion service with these "
                    f"defences ({reply}): use a newer tor (Debian's 0.4.9.11 takes them)"
                )
            raise OnionError(f"tor refused to publish the onion service from {key_dir}: {reply}")
        stem.response.convert("ADD_ONION", reply)
        service_id = str(reply.service_id)
        service = OnionService(service_id, key_dir, port_pairs, client_auth, defences)
        self._services[service_id] = service
        try:
            if known_id is not None and known_id != service_id:
                raise KeyFileError(
                    f"the key in {key_dir} is for {service_id}.onion, "
                    f"not {known_address} as its hostname file says"
                )
            write_public_files(key_dir, service_id)
            if await_publication:
                self._wait_uploaded(service_id, started, timeout)
        except BaseException:
            self.unpublish(service)
            raise
        return service

    def unpublish(self, service: OnionService) -> None:
        """Take a service down. Its keys stay in its key dir."""
        self._services.pop(service.service_id, None)
        with self._uploaded:
            self._uploads.pop(service.service_id, None)
        with contextlib.suppress(stem.ControllerError, stem.SocketError):
            self._controller.msg(f"DEL_ONION {service.service_id}")
            # DEL_ONION leaves clients that are connected already connected (their
            # rendezvous circuits stay up): cut them, so that taking a service down
            # or revoking a client takes effect now.
            for circuit in self._controller.get_circuits([]):
                if (
                    circuit.purpose == "HS_SERVICE_REND"
                    and circuit.rend_query == service.service_id
                ):
                    self._controller.close_circuit(circuit.id)

    # -- client authorization ---------------------------------------------------

    def list_clients(self, service: OnionService) -> list[AuthorizedClient]:
        """The clients authorized to reach ``service``."""
        return list_authorized_clients(service.key_dir)

    def add_client(
        self, service: OnionService, name: str, public_key: str, *, timeout: float = 90.0
    ) -> OnionService:
        """Authorize a client, persist it in the key dir, and republish the service
        (same address) so that its descriptor includes the client.

        :raises ClientKeyError: malformed name or key, or the name is taken.
        """
        self._require_authorized(service)
        add_authorized_client(service.key_dir, name, public_key)
        return self._republish(service, timeout)

    def remove_client(
        self, service: OnionService, name: str, *, timeout: float = 90.0
    ) -> OnionService:
        """Revoke a client's authorization, persist that, and republish the service.

        The new descriptor cannot be decrypted with the removed key, and the old
        introduction points are gone.

        :raises ClientKeyError: no such client, or it is the last one (the service
            would be public without one; unpublish it instead).
        """
        self._require_authorized(service)
        clients = list_authorized_clients(service.key_dir)
        if [c.name for c in clients] == [name]:
            raise ClientKeyError(f"{name!r} is the last authorized client of {service.address}")
        remove_authorized_client(service.key_dir, name)
        return self._republish(service, timeout)

    def _require_authorized(self, service: OnionService) -> None:
        if not service.client_auth:
            raise ClientKeyError(f"{service.address} does not use client authorization")

    def _republish(self, service: OnionService, timeout: float) -> OnionService:
        if service.service_id not in self._services:
            return service  # not live: the key dir change is all there is to do
        self.unpublish(service)
        return self.publish(
            service.key_dir,
            dict(service.ports),
            client_auth=True,
            defences=service.defences,
            timeout=timeout,
        )

    # -- stopping ---------------------------------------------------------------

    def close(self) -> None:
        """Remove this Onion's services, close the connection, and stop our own tor."""
        for service in list(self._services.values()):
            self.unpublish(service)
        close_controller(self._controller)
        if self._process is not None:
            # Closing the owning control connection makes our tor exit by itself.
            terminate(self._process)

    def __enter__(self) -> Onion:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals --------------------------------------------------------------

    def _on_hs_desc(self, event: Any) -> None:
        # Runs in stem's event thread. An upload counts only if it was started after
        # the publication we wait for: right after a republication, uploads of the
        # previous descriptor to the same HSDirs may still be finishing.
        address, hsdir = str(event.address), str(event.directory_fingerprint)
        now = time.monotonic()
        with self._uploaded:
            if event.action == stem.HSDescAction.UPLOAD:
                self._upload_starts[(address, hsdir)] = now
            elif event.action == stem.HSDescAction.UPLOADED:
                started = self._upload_starts.get((address, hsdir), now)
                self._uploads[address] = max(self._uploads.get(address, started), started)
                self._uploaded.notify_all()
            elif event.action == stem.HSDescAction.FAILED:
                self._upload_failures[address] = str(event.reason)

    def _wait_uploaded(self, service_id: str, since: float | None, timeout: float) -> None:
        """Wait for an upload of ``service_id``'s descriptor (after ``since``, if given)."""
        deadline = time.monotonic() + timeout
        with self._uploaded:
            while (uploaded := self._uploads.get(service_id)) is None or (
                since is not None and uploaded < since
            ):
                left = deadline - time.monotonic()
                if left <= 0 or not self._controller.is_alive():
                    why = self._upload_failures.get(service_id)
                    raise PublicationTimeoutError(
                        f"{service_id}.onion was not published within {timeout:g}s"
                        + (f" (last upload failure: {why})" if why else "")
                    )
                self._uploaded.wait(min(left, 1.0))

    def _wait_bootstrapped(self, timeout: float, output: TorOutput) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                status = self.status()
            except TorNotRunningError:
                raise TorLaunchError(
                    f"tor exited while bootstrapping: {output.last_words()}"
                ) from None
            if status.bootstrapped:
                return
            if time.monotonic() > deadline:
                raise TorLaunchError(
                    f"tor did not bootstrap within {timeout:g}s: stuck at "
                    f"{status.bootstrap_percent}% ({status.bootstrap_summary})"
                )
            time.sleep(0.2)


def _port_pairs(ports: Mapping[int, int | str]) -> tuple[tuple[int, str], ...]:
    if not ports:
        raise ValueError("an onion service needs at least one port")
    pairs = []
    for virtual, target in sorted(ports.items()):
        if not 0 < virtual < 65536:
            raise ValueError(f"invalid virtual port {virtual}")
        text = f"127.0.0.1:{target}" if isinstance(target, int) else target
        if not _TARGET.fullmatch(text):
            raise ValueError(f"invalid port target {target!r}")
        pairs.append((virtual, text))
    return tuple(pairs)
