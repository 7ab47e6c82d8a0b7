"""``transfer watch``'s core: what is sent when, driven by times passed in (no waiting)."""

from __future__ import annotations

import json

from securedrop_wm.status_counts import LevelCounts, TransferStatus
from securedrop_wm.transfer_client.alerts import ALERT_SIZE, AlertCore, AlertKind, AlertPolicy

from .receivers import ALERT_KEYS


def status(danger: tuple[int, int] = (0, 0), routine: tuple[int, int] = (0, 0)) -> TransferStatus:
    """A status with ``(pending, arrived)`` for danger and routine (urgent: none)."""
    return TransferStatus(
        {
            "routine": LevelCounts(*routine),
            "urgent": LevelCounts(0, 0),
            "danger": LevelCounts(*danger),
        }
    )


def kinds(core: AlertCore, now: float) -> list[AlertKind]:
    return [a.kind for a in core.due(now)]


def test_the_digest_comes_at_a_fixed_interval_whatever_happens() -> None:
    core = AlertCore(AlertPolicy(interval=900), start=0)
    core.polled(10, status())
    assert kinds(core, 10) == []
    core.polled(300, status(danger=(1, 1)))  # a danger report: still nothing until 900
    assert kinds(core, 300) == []
    (digest,) = core.due(900)
    assert digest.kind == AlertKind.DIGEST
    assert digest.status.level("danger") == LevelCounts(1, 1)
    assert digest.new["danger"] == 1
    assert kinds(core, 1000) == []
    # Nothing changed: the digest comes all the same, and says nothing is new.
    (second,) = core.due(1800)
    assert second.kind == AlertKind.DIGEST and second.new["danger"] == 0
    # After a suspend: one digest, not one per missed interval; the schedule holds.
    assert kinds(core, 5000) == [AlertKind.DIGEST]
    assert core.next_digest == 5400


def test_immediate_danger_alerts_are_coalesced_to_one_per_interval() -> None:
    core = AlertCore(AlertPolicy(interval=900, immediate_danger=True), start=0)
    core.polled(0, status())
    assert kinds(core, 0) == []
    sent = []
    # A flood: one fake danger report every 10 seconds for 25 minutes.
    for n in range(1, 151):
        now = n * 10.0
        core.polled(now, status(danger=(n, n)))
        sent += [(now, a.kind, a.new["danger"]) for a in core.due(now)]
    # The first at once, then one when the interval is over (not one per report); "new"
    # counts what came since the previous message.
    assert sent == [
        (10.0, AlertKind.DANGER, 1),
        (900.0, AlertKind.DIGEST, 89),
        (910.0, AlertKind.DANGER, 1),
    ]


def test_danger_waiting_at_start_is_news_and_routine_ones_are_not_danger() -> None:
    core = AlertCore(AlertPolicy(interval=60, immediate_danger=True), start=0)
    core.polled(0, status(danger=(2, 7), routine=(5, 9)))
    (alert,) = core.due(0)
    assert alert.kind == AlertKind.DANGER and alert.new == {"routine": 5, "urgent": 0, "danger": 2}
    core.polled(30, status(danger=(2, 7), routine=(6, 10)))
    assert kinds(core, 30) == []


def test_re_alert_while_danger_stays_pending_and_not_after_acknowledgement() -> None:
    policy = AlertPolicy(interval=900, immediate_danger=True, realert_after=3600)
    core = AlertCore(policy, start=0)
    core.polled(0, status())
    core.polled(100, status(danger=(1, 1)))
    assert AlertKind.DANGER in kinds(core, 100)
    realerts = []
    for now in range(200, 8000, 100):
        core.polled(now, status(danger=(1, 1)))
        realerts += [now for a in core.due(now) if a.kind == AlertKind.DANGER]
    assert realerts == [3700, 7300]  # every realert_after while it waits
    core.polled(8000, status(danger=(0, 1)))  # the workstation acknowledged it
    assert AlertKind.DANGER not in kinds(core, 8000 + 4000)


def test_digest_only_never_sends_off_schedule_but_says_danger_is_overdue() -> None:
    core = AlertCore(AlertPolicy(interval=900, realert_after=1200), start=0)
    core.polled(0, status())
    times = []
    for now in range(50, 4000, 50):
        core.polled(now, status(danger=(3, 3)))
        times += [(now, a) for a in core.due(now)]
    assert [t for t, _ in times] == [900, 1800, 2700, 3600]
    assert all(a.kind == AlertKind.DIGEST for _, a in times)
    assert [a.danger_overdue for _, a in times] == [False, True, True, True]  # since 50


def test_unreachable_after_n_failed_polls_then_again_after_the_realert_time() -> None:
    policy = AlertPolicy(interval=900, realert_after=600, unreachable_after=3)
    core = AlertCore(policy, start=0)
    core.polled(0, status(routine=(2, 2)))
    core.poll_failed(60)
    core.poll_failed(120)
    assert kinds(core, 120) == []
    core.poll_failed(180)
    (alert,) = core.due(180)
    assert alert.kind == AlertKind.UNREACHABLE and not alert.reachable
    assert alert.failed_polls == 3 and alert.status.level("routine") == LevelCounts(2, 2)
    core.poll_failed(240)
    assert kinds(core, 240) == []
    assert kinds(core, 780) == [AlertKind.UNREACHABLE]
    digest = core.due(900)[0]
    assert digest.kind == AlertKind.DIGEST and not digest.reachable
    core.polled(960, status(routine=(2, 2)))  # back: no more unreachable alerts
    assert kinds(core, 1500) == []
    assert core.due(1800)[0].reachable


def test_every_alert_has_the_same_size_and_holds_counts_only() -> None:
    small = AlertCore(AlertPolicy(interval=1), start=0)
    small.polled(0, status())
    big = AlertCore(AlertPolicy(interval=1, realert_after=1), start=0)
    big.polled(0, status(danger=(123456789, 987654321), routine=(10**12, 10**13)))
    big.poll_failed(0.5)
    (a,) = small.due(1)
    (b,) = big.due(5)
    assert len(a.text().encode()) == len(b.text().encode()) == ALERT_SIZE
    assert len(a.json().encode()) == len(b.json().encode()) == ALERT_SIZE
    body = json.loads(b.json())
    assert set(body) == ALERT_KEYS
    assert body["levels"]["danger"] == {
        "pending": 123456789,
        "arrived": 987654321,
        "new": 123456789,
    }
    assert body["danger_overdue"] is True
