"""What the transfer API's ``GET /status`` says, on the server and the transfer machine
alike: per urgency level, how many reports wait and how many ever arrived.

The JSON form is fixed (docs/bundles.md), exactly
``{"levels": {"routine": {"pending": P, "arrived": A}, "urgent": {...}, "danger": {...}}}``.
Counts only: nothing here says anything about what a report holds or who sent it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .vocabulary import Urgency

#: The ``error`` of the transfer API's 403 to a status-only token anywhere but the status.
STATUS_ONLY_ERROR = "StatusOnlyToken"


@dataclass(frozen=True)
class LevelCounts:
    """One level's figures: reports not yet acknowledged, and reports ever filed (a
    counter that never goes down)."""

    pending: int
    arrived: int


@dataclass(frozen=True)
class TransferStatus:
    """Every urgency level's counts, keyed by the level's stored value."""

    levels: Mapping[str, LevelCounts]

    def __post_init__(self) -> None:
        if set(self.levels) != set(Urgency):
            raise ValueError(f"a status has the levels {', '.join(Urgency)}")

    def level(self, urgency: str) -> LevelCounts:
        """The counts of ``urgency`` (``Urgency.DANGER``, ...)."""
        return self.levels[urgency]

    def lines(self) -> list[str]:
        """One line per level, the most urgent first: ``danger: 1 waiting, 3 arrived in all``."""
        return [
            f"{u}: {self.levels[u].pending} waiting, {self.levels[u].arrived} arrived in all"
            for u in reversed(Urgency)
        ]

    def to_json(self) -> dict[str, Any]:
        """The body of ``GET /status``."""
        return {
            "levels": {
                str(u): {"pending": self.levels[u].pending, "arrived": self.levels[u].arrived}
                for u in Urgency
            }
        }

    @classmethod
    def from_json(cls, body: object) -> TransferStatus:
        """Read the body of ``GET /status``.

        :raises ValueError: a level or a count is missing, or a count is not a whole
            number from 0 up.
        """
        levels = body.get("levels") if isinstance(body, Mapping) else None
        if not isinstance(levels, Mapping):
            raise ValueError("levels")
        read = {}
        for u in Urgency:
            counts = levels.get(str(u))
            if not isinstance(counts, Mapping):
                raise ValueError(str(u))
            read[str(u)] = LevelCounts(_count(counts, "pending"), _count(counts, "arrived"))
        return cls(read)


def _count(counts: Mapping[str, Any], name: str) -> int:
    value = counts.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**53:
        raise ValueError(name)
    return value
