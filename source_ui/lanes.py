"""Bounded lanes for the expensive work of a request: Argon2id derivations, key creation.

Each worker process has two lanes, kept on its app (``app.extensions[LANES]``):

- ``new_source``: creating a source (Argon2id, then an OpenPGP key);
- ``returning``: the work of a source who has a codename (logging in, sending a report,
  reading replies).

A lane runs at most ``concurrency`` jobs at once and lets at most ``queue`` more wait, first
come first served, each for at most ``wait_seconds``. A request beyond that is refused at
once with :class:`Busy`, which says when to try again: the lane's measured cost per job
times the jobs ahead. A flood of new codenames fills only its own lane, so a returning
source never waits behind it. Behind Tor every request comes from tor's one socket: the
lanes are fair between requests, in the order they arrive, not between people
(docs/server.md, "Bounded work per request").
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from securedrop_wm.settings import Settings

#: The key the lanes are kept under in ``app.extensions``.
LANES = "source_ui.lanes"
#: Seconds a Retry-After may say, at least and at most.
MIN_RETRY_SECONDS = 2
MAX_RETRY_SECONDS = 120


class Busy(Exception):  # noqa: N818 - a state, not a failure of the code
    """A lane is full: try again in ``retry_after`` seconds."""

    def __init__(self, lane: str, retry_after: int) -> None:
        super().__init__(f"the {lane} lane is full")
        self.lane = lane
        self.retry_after = retry_after


class Lane:
    """At most ``concurrency`` jobs at once, at most ``queue`` waiting, in arrival order."""

    def __init__(
        self,
        name: str,
        concurrency: int,
        queue: int,
        wait_seconds: float,
        initial_cost: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.concurrency = concurrency
        self.queue = queue
        self.wait_seconds = wait_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._running = 0
        # Each waiter's event; a finishing job hands its place to the first one directly,
        # so a request arriving meanwhile cannot jump the queue.
        self._waiting: deque[threading.Event] = deque()
        self._cost = initial_cost

    @property
    def cost(self) -> float:
        """Seconds a job of this lane took lately (a moving average)."""
        return self._cost

    def retry_after(self) -> int:
        """Seconds after which a refused request may find room: the jobs ahead of it
        times their cost, shared by the jobs that run at once."""
        ahead = self._running + len(self._waiting)
        seconds = math.ceil(self._cost * max(ahead, 1) / self.concurrency)
        return min(max(seconds, MIN_RETRY_SECONDS), MAX_RETRY_SECONDS)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Run the body in this lane.

        :raises Busy: when the lane and its queue are full, or the wait ran out.
        """
        self._enter()
        started = self._clock()
        try:
            yield
        finally:
            self._leave(self._clock() - started)

    def _enter(self) -> None:
        with self._lock:
            if self._running < self.concurrency and not self._waiting:
                self._running += 1
                return
            if len(self._waiting) >= self.queue:
                raise Busy(self.name, self.retry_after())
            turn = threading.Event()
            self._waiting.append(turn)
        if turn.wait(self.wait_seconds):
            return  # the place was handed over: _running already counts this job
        with self._lock:
            if turn.is_set():
                return
            self._waiting.remove(turn)
            raise Busy(self.name, self.retry_after())

    def _leave(self, elapsed: float) -> None:
        with self._lock:
            self._cost = 0.7 * self._cost + 0.3 * elapsed
            if self._waiting:
                self._waiting.popleft().set()  # its place, passed on: _running unchanged
            else:
                self._running -= 1


@dataclass(frozen=True)
class Lanes:
    """The lanes of one worker process."""

    new_source: Lane
    returning: Lane

    @classmethod
    def from_settings(cls, settings: Settings) -> Lanes:
        wait = settings.lane_wait_seconds
        return cls(
            new_source=Lane(
                "new-source", settings.new_source_concurrency, settings.new_source_queue, wait
            ),
            returning=Lane(
                "returning",
                settings.returning_source_concurrency,
                settings.returning_source_queue,
                wait,
            ),
        )
