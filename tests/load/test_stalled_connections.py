"""Slow and stalled connections against the real server (securedrop_wm.connections).

The attacks of the availability audit, on loopback: connections that send half a head,
or a whole head announcing a body that never comes, held open while a real source files
a report; a body dripped a byte at a time; and the rules themselves on a real socket pair
with short limits, so that a steady slow upload is seen to survive where a drip is cut.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from securedrop_wm.connections import ConnectionLimits, PacedSocket, head_is_ready
from tests.headers.checks import headers_problems
from tests.live import LiveServer
from tests.load.client import RandomFile, SourceClient, accepted

HALF_HEAD = b"POST /login HTTP/1.1\r\nHost: drop.onion\r\nContent-Ty"
BODY_NEVER_SENT = (
    b"POST /login HTTP/1.1\r\nHost: drop.onion\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
)
PRODUCTION = ConnectionLimits()


@contextmanager
def stalled(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections, half with half a head, half with a head and no body."""
    with ExitStack() as stack:
        socks = []
        for i in range(count):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
            sock.sendall(HALF_HEAD if i % 2 else BODY_NEVER_SENT)
            socks.append(sock)
        yield socks


def closed_by_server(sock: socket.socket, within: float) -> tuple[bool, bytes]:
    """Whether the server closes ``sock`` within ``within`` seconds, and what it sent."""
    sock.settimeout(within)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        return False, received
    except ConnectionResetError:
        pass
    return True, received


@pytest.mark.slow
def test_two_hundred_stalled_connections_do_not_stop_a_report(
    live_server: LiveServer,
) -> None:
    # Before: 2 workers x 4 threads, each thread blocked reading a head or a body that
    # never came; the source's first request hung until the stalls were closed.
    with stalled(live_server.port, 200) as socks:
        time.sleep(1)  # every stall has reached the server
        source = SourceClient(live_server.url, timeout=15)
        started = time.monotonic()
        codename, _ = source.new_codename()
        assert codename is not None
        assert accepted(source.report("Someone posted my address.", RandomFile("a.pdf", 200_000)))
        assert time.monotonic() - started < 10
        source.close()
        # The stalls themselves are answered 408 and closed when their time is up.
        answers = [closed_by_server(s, PRODUCTION.head_seconds + 5) for s in socks[:4]]
    for closed, received in answers:
        assert closed
        head, _, body = received.partition(b"\r\n\r\n")
        status, *lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines)
        assert (status, body) == ("HTTP/1.1 408 Request Timeout", b"408 Request Timeout\n")
        assert "Server" not in headers
        assert headers_problems(headers, [], html_csp=False) == []


@pytest.mark.slow
def test_a_body_dripped_a_byte_at_a_time_is_cut(live_server: LiveServer) -> None:
    # A per-read timeout alone keeps this alive for ever: one byte every 50 seconds is
    # well within any sane read timeout. The minimum rate cuts it after the grace time.
    with socket.create_connection(("127.0.0.1", live_server.port)) as sock:
        sock.sendall(BODY_NEVER_SENT + b"c")
        started = time.monotonic()
        closed, _ = closed_by_server(sock, 50)
        waited = time.monotonic() - started
    assert closed
    assert PRODUCTION.grace_seconds - 2 < waited < PRODUCTION.grace_seconds + 5


def test_a_head_waits_for_its_first_body_byte() -> None:
    assert not head_is_ready(b"GET / HTTP/1.1\r\nHost: x\r\n", 1024)
    assert head_is_ready(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1024)
    assert not head_is_ready(BODY_NEVER_SENT, 1024)
    assert head_is_ready(BODY_NEVER_SENT + b"c", 1024)
    chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert not head_is_ready(chunked, 1024)
    # A client that waits for "100 Continue" sends no body before it.
    assert head_is_ready(chunked[:-2] + b"Expect: 100-continue\r\n\r\n", 1024)
    # A head too large for the parser is handed over, which refuses it.
    assert head_is_ready(b"GET /" + b"a" * 2000, 1024)


SHORT = ConnectionLimits(grace_seconds=1.0, max_stall_seconds=1.5, min_rate=4000)


def _receive_all(
    limits: ConnectionLimits, sender: threading.Thread, peer: socket.socket
) -> tuple[int, bool, float]:
    """Read through a PacedSocket until it returns nothing: the bytes received, whether
    the reader cut the connection, and when the reading ended."""
    paced = PacedSocket(peer, limits)
    started = time.monotonic()
    sender.start()
    total = 0
    while data := paced.recv(65536):
        total += len(data)
    ended = time.monotonic() - started
    sender.join()
    return total, paced.cut, ended


def _send(sock: socket.socket, chunk: int, pause: float, count: int) -> None:
    try:
        for _ in range(count):
            sock.sendall(b"x" * chunk)
            time.sleep(pause)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # cut by the reader


def test_a_steady_slow_body_survives_and_a_drip_is_cut() -> None:
    # Real sockets, short limits: 2,000 bytes every 0.25 s is twice the minimum rate and
    # lasts four times the grace; a byte every 0.6 s is far below it.
    for chunk, pause, count, survives in ((2000, 0.25, 16, True), (1, 0.6, 10, False)):
        ours, theirs = socket.socketpair()
        with ours, theirs:
            sender = threading.Thread(target=_send, args=(theirs, chunk, pause, count))
            received, cut, _ = _receive_all(SHORT, sender, ours)
        assert (received == chunk * count) is survives, (chunk, received)
        assert cut is not survives


def test_a_fast_body_may_pause_but_not_for_ever() -> None:
    # Credit earned by sending fast is capped: a pause longer than max_stall is cut.
    ours, theirs = socket.socketpair()
    with ours, theirs:

        def burst_then_stall() -> None:
            theirs.sendall(b"x" * 400_000)
            time.sleep(SHORT.max_stall_seconds + 1.5)
            _send(theirs, 10, 0, 1)

        sender = threading.Thread(target=burst_then_stall)
        received, cut, ended = _receive_all(SHORT, sender, ours)
    assert (received, cut) == (400_000, True)
    assert SHORT.max_stall_seconds - 0.2 < ended < SHORT.max_stall_seconds + 1
