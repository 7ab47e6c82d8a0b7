"""``transfer watch``: poll the drop's status at a jittered interval and send the alerts
:class:`.alerts.AlertCore` says are due through every configured channel."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence

from ..status_counts import TransferStatus
from .alerts import Alert, AlertCore
from .channels import AlertDeliveryError, Channel
from .errors import TransferError
from .watch_settings import WatchSettings

_JITTER = random.SystemRandom()


class Watcher:
    """The polling loop; ``run`` returns once ``stop`` is set.

    :param status: one poll (``TransferClient.status``).
    :param report: told each failure, in words that name no report (stderr).
    :param clock: monotonic seconds; ``jitter(low, high)``: a random number between.
    """

    def __init__(
        self,
        settings: WatchSettings,
        status: Callable[[], TransferStatus],
        channels: Sequence[Channel],
        *,
        stop: threading.Event | None = None,
        report: Callable[[str], None] = lambda message: None,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[float, float], float] = _JITTER.uniform,
    ) -> None:
        self.settings = settings
        self.stop = stop or threading.Event()
        self._status, self._channels = status, list(channels)
        self._report, self._clock, self._jitter = report, clock, jitter

    def run(self) -> None:
        """Poll, send what is due, wait; until ``stop`` is set."""
        settings = self.settings
        core = AlertCore(settings.policy, self._clock())
        next_poll = self._clock()
        while not self.stop.is_set():
            now = self._clock()
            # A digest carries fresh figures: poll right before it, too.
            if now >= next_poll or now >= core.next_digest:
                self._poll(core)
                spread = settings.poll_jitter
                next_poll = self._clock() + settings.poll_interval + self._jitter(-spread, spread)
            for alert in core.due(self._clock()):
                self._send(alert)
            self.stop.wait(max(0.0, min(next_poll, core.next_digest) - self._clock()))

    def _poll(self, core: AlertCore) -> None:
        try:
            status = self._status()
        except TransferError as e:
            core.poll_failed(self._clock())
            self._report(f"the drop's status could not be read: {e}")
        else:
            core.polled(self._clock(), status)

    def _send(self, alert: Alert) -> None:
        for channel in self._channels:
            try:
                channel.send(alert)
            except AlertDeliveryError as e:
                # Which kind of alert failed is left out: the journal keeps times.
                self._report(f"an alert could not be sent by {channel.name}: {e}")
