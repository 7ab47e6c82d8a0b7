"""A progress bar for long bundle work, shown on a terminal only."""

from __future__ import annotations

import sys
from typing import Any

import click


class ProgressBar:
    """A click progress bar on stderr, started again for each attempt; silent when stderr
    is not a terminal (scripts, cron, logs)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._bar: Any = None
        self._done = 0
        self.shown = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.shown:
            return
        if done == 0 or self._bar is None:
            self.close()
            self._bar = click.progressbar(
                length=max(total, 1),
                label=self.label,
                file=sys.stderr,
                show_pos=False,
                item_show_func=lambda n: None if n is None else f"{n / (1 << 20):.1f} MiB",
            )
            self._bar.__enter__()
            self._done = 0
        self._bar.update(done - self._done, done)
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
