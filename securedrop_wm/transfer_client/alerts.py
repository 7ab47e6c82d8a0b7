"""What ``transfer watch`` sends, and when: a pure core driven by the times passed in.

The drop's status is counts per urgency level (pending, and arrived ever). The core
turns the polls' outcomes into alerts: a **digest** at a fixed interval whatever
happened (the default, so that the time of a message says nothing about the time of
a report), an **immediate danger alert** if opted in (at most one per interval, and
again while danger reports stay pending past ``realert_after``), and **unreachable**
after ``unreachable_after`` failed polls in a row. Alerts hold levels and counts only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..status_counts import LevelCounts, TransferStatus
from ..vocabulary import Urgency

#: Bytes of every rendered alert (text and JSON), whatever its counts.
ALERT_SIZE = 1024


class AlertKind(StrEnum):
    """Why an alert is sent."""

    DIGEST = "digest"
    DANGER = "danger"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class AlertPolicy:
    """When to send what (seconds, except ``unreachable_after``: failed polls)."""

    interval: float = 900.0
    immediate_danger: bool = False
    realert_after: float = 3600.0
    unreachable_after: int = 3


@dataclass(frozen=True)
class Alert:
    """One message to the on-call: levels and counts, never anything a report holds."""

    kind: AlertKind
    #: The last figures the drop gave (all zero before its first answer).
    status: TransferStatus
    #: Per level, the reports that arrived since the previous alert.
    new: Mapping[str, int]
    #: False once ``unreachable_after`` polls in a row failed (the figures are then
    #: the last known ones).
    reachable: bool
    failed_polls: int
    #: Danger reports have been pending for longer than ``realert_after``.
    danger_overdue: bool

    def as_dict(self) -> dict[str, Any]:
        """The alert as JSON-ready data (webhook, local command)."""
        return {
            "kind": self.kind.value,
            "levels": {
                name: {"pending": c.pending, "arrived": c.arrived, "new": self.new[name]}
                for name, c in self.status.levels.items()
            },
            "drop_reachable": self.reachable,
            "failed_polls": self.failed_polls,
            "danger_overdue": self.danger_overdue,
        }

    def text(self) -> str:
        """Plain text for mail, padded to :data:`ALERT_SIZE` bytes."""
        title = {
            AlertKind.DIGEST: "digest",
            AlertKind.DANGER: "DANGER: a source reported being in danger",
            AlertKind.UNREACHABLE: "the drop cannot be reached",
        }[self.kind]
        lines = [f"securedrop-wm watch: {title}", ""]
        if not self.reachable:
            lines += [f"The drop did not answer the last {self.failed_polls} polls.", ""]
        lines += ["level      pending  arrived  new since last alert"]
        lines += [
            f"{name:<10} {c.pending:>7}  {c.arrived:>7}  {self.new[name]:>7}"
            for name, c in self.status.levels.items()
        ]
        if self.danger_overdue:
            lines += ["", "Danger reports have been waiting longer than the re-alert time."]
        lines += ["", "Pull the reports with `securedrop-wm transfer pull`.", ""]
        return pad("\n".join(lines), "\n")

    def json(self) -> str:
        """JSON, padded to :data:`ALERT_SIZE` bytes with a ``padding`` field."""
        body = self.as_dict()
        body["padding"] = ""
        raw = json.dumps(body, separators=(",", ":"))
        body["padding"] = " " * max(0, ALERT_SIZE - len(raw.encode()))
        return json.dumps(body, separators=(",", ":"))


def pad(text: str, end: str = "") -> str:
    """``text`` with spaces after it up to :data:`ALERT_SIZE` bytes (then ``end``).

    :raises ValueError: ``text`` is longer (counts beyond any real drop's).
    """
    room = ALERT_SIZE - len(end.encode()) - len(text.encode())
    if room < 0:
        raise ValueError("the alert is longer than its fixed size")
    return text + " " * room + end


class AlertCore:
    """The watcher's state: fed each poll's outcome, asked what is due now."""

    def __init__(self, policy: AlertPolicy, start: float) -> None:
        self.policy = policy
        #: When the next digest is due (fixed steps of ``interval`` from ``start``).
        self.next_digest = start + policy.interval
        self._status = TransferStatus({str(u): LevelCounts(0, 0) for u in Urgency})
        self._told: dict[str, int] = {}  # per level, the arrivals the last alert counted
        self._polled = False
        self._failures = 0
        self._danger_told = 0  # danger arrivals an immediate alert has covered
        self._danger_alert_at: float | None = None
        self._danger_pending_since: float | None = None
        self._unreachable_alert_at: float | None = None

    def polled(self, now: float, status: TransferStatus) -> None:
        """A poll succeeded with these figures."""
        danger = status.level(Urgency.DANGER)
        if not self._polled:
            # Reports already waiting when the watcher starts are news to it.
            self._danger_told = danger.arrived - danger.pending
            self._told = {n: c.arrived - c.pending for n, c in status.levels.items()}
            self._polled = True
        if danger.pending == 0:
            self._danger_pending_since = None
        elif self._danger_pending_since is None:
            self._danger_pending_since = now
        self._status = status
        self._failures = 0
        self._unreachable_alert_at = None

    def poll_failed(self, now: float) -> None:
        """A poll failed (tor, the onion or the server)."""
        self._failures += 1

    @property
    def reachable(self) -> bool:
        return self._failures < self.policy.unreachable_after

    def due(self, now: float) -> list[Alert]:
        """The alerts to send at ``now`` (each is then counted as sent)."""
        policy = self.policy
        alerts: list[Alert] = []
        if not self.reachable and (
            self._unreachable_alert_at is None
            or now >= self._unreachable_alert_at + policy.realert_after
        ):
            self._unreachable_alert_at = now
            alerts.append(self._alert(AlertKind.UNREACHABLE, now))
        if policy.immediate_danger and self._danger_due(now):
            self._danger_alert_at = now
            self._danger_told = self._status.level(Urgency.DANGER).arrived
            alerts.append(self._alert(AlertKind.DANGER, now))
        if now >= self.next_digest:
            while self.next_digest <= now:  # after a suspend: one digest, not a burst
                self.next_digest += policy.interval
            alerts.append(self._alert(AlertKind.DIGEST, now))
        return alerts

    def _danger_due(self, now: float) -> bool:
        danger = self._status.level(Urgency.DANGER)
        last = self._danger_alert_at
        if danger.arrived > self._danger_told:
            # Coalesced: one alert per interval, however many reports came.
            return last is None or now >= last + self.policy.interval
        since = self._danger_pending_since
        if danger.pending == 0 or since is None:
            return False
        return now >= (since if last is None else max(since, last)) + self.policy.realert_after

    def _alert(self, kind: AlertKind, now: float) -> Alert:
        levels = self._status.levels
        new = {n: max(0, c.arrived - self._told.get(n, c.arrived)) for n, c in levels.items()}
        if self._polled:
            self._told = {n: c.arrived for n, c in levels.items()}
        since = self._danger_pending_since
        return Alert(
            kind=kind,
            status=self._status,
            new=new,
            reachable=self.reachable,
            failed_polls=self._failures,
            danger_overdue=since is not None and now >= since + self.policy.realert_after,
        )
