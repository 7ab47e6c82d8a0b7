"""``securedrop-wm transfer status|pull|push|watch``: the transfer machine reaches the drop's
transfer API through Tor (docs/transfer.md).

Loaded only when a ``transfer`` command runs, so the drop server never imports the
transfer client nor needs its packages.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..transfer_client import TransferClient, TransferError, load_transfer_settings
from ..transfer_client.channels import build_channels
from ..transfer_client.settings import CONFIG_ENV as TRANSFER_CONFIG_ENV
from ..transfer_client.watch import Watcher
from .options import top_level_config
from .progress import ProgressBar

_F = TypeVar("_F", bound=Callable[..., Any])


def _transfer_options(f: _F) -> _F:
    """Where the transfer API is and how to reach it; each overrides the config file."""
    options = [
        click.option(
            "--config",
            "--transfer-config",
            "transfer_config",
            type=click.Path(dir_okay=False),
            envvar=TRANSFER_CONFIG_ENV,
            callback=top_level_config,
            help="TOML settings of the transfer machine [default: securedrop-wm's own "
            f"--config, ${TRANSFER_CONFIG_ENV}, or ~/.config/securedrop-wm/transfer.toml "
            "if it exists].",
        ),
        click.option("--onion", help="The transfer onion's address (56 characters .onion)."),
        click.option("--socks", help="Tor's SocksPort as HOST:PORT [default: 127.0.0.1:9050]."),
        click.option(
            "--token-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="File holding the responder token (mode 600).",
        ),
        click.option(
            "--retries",
            type=click.IntRange(0, 20),
            help="Attempts after a failure that may pass on a new try [default: 3].",
        ),
        click.option("--retry-delay", type=click.FloatRange(0, 300), hidden=True),
        click.option(
            "--timeout",
            type=click.FloatRange(5, 3600),
            help="Seconds to wait for tor to connect and for each part of an answer "
            "[default: 300].",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _transfer_client(options: dict[str, Any], **more: Any) -> TransferClient:
    """A TransferClient for the options given, which tells the user about retries."""
    named: str | None = options.pop("transfer_config")
    config = None if named is None else Path(named)
    if config is None:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        default = base / "securedrop-wm" / "transfer.toml"
        config = default if default.is_file() else None
    settings = load_transfer_settings(config, **options, **more)

    def on_retry(attempt: int, error: TransferError, delay: float) -> None:
        click.echo(f"attempt {attempt} failed: {error}; trying again in {delay:g} s", err=True)

    return TransferClient(settings, on_retry=on_retry)


@click.group()
def transfer() -> None:
    """On the transfer machine: reach the drop's transfer API through Tor."""


@transfer.command("status")
@_transfer_options
def transfer_status_command(**options: Any) -> None:
    """Per urgency level (danger, urgent, routine), how many reports wait for the
    workstation and how many ever arrived."""
    with _transfer_client(options) as client:
        status = client.status()
    for line in status.lines():
        click.echo(line)


@transfer.command("pull")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the export bundle (e.g. the removable disk).",
)
@_transfer_options
def transfer_pull(output_dir: Path | None, **options: Any) -> None:
    """Download the next export bundle (everything not yet acknowledged)."""
    with _transfer_client(options, output_dir=output_dir) as client:
        folder = client.settings.output_dir
        if folder is None:
            raise click.ClickException("give --output-dir, or output_dir in the config")
        bar = ProgressBar("export bundle")
        try:
            bundle = client.pull(folder, bar)
        finally:
            bar.close()
    click.echo(
        f"export bundle {bundle.sequence}: {bundle.items} item(s), "
        f"{bundle.size / (1 << 20):.1f} MiB, SHA-256 {bundle.sha256} -> {bundle.path}"
    )


@transfer.command("push")
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@_transfer_options
def transfer_push(bundle: Path, **options: Any) -> None:
    """Upload the reply bundle BUNDLE made on the workstation."""
    with _transfer_client(options) as client:
        bar = ProgressBar("reply bundle")
        try:
            result = client.push(bundle, bar)
        finally:
            bar.close()
    if result.already_imported:
        click.echo(f"reply bundle {result.sequence} was already imported; nothing changed")
        return
    click.echo(
        f"reply bundle {result.sequence}: {result.replies_stored} reply(ies) stored, "
        f"{result.replies_skipped} skipped, {result.acknowledged} submission(s) acknowledged, "
        f"{result.purged} ciphertext(s) purged"
    )


@transfer.command("watch")
@click.option(
    "--interval",
    type=click.FloatRange(1, 86400),
    help="Seconds between digests, and the least between two danger alerts [default: 900].",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(1, 86400),
    help="Seconds between polls of the drop's status [default: 300].",
)
@click.option(
    "--poll-jitter",
    type=click.FloatRange(0, 86400),
    help="Each wait between polls is longer or shorter by up to this many seconds.",
)
@click.option(
    "--immediate-danger/--digest-only",
    default=None,
    help="Also alert at once on a new danger report (its time then tells the mail or "
    "push provider when someone reported: docs/threat-model.md) [default: digest only].",
)
@_transfer_options
def transfer_watch(
    interval: float | None,
    poll_interval: float | None,
    poll_jitter: float | None,
    immediate_danger: bool | None,
    **options: Any,
) -> None:
    """Poll the drop's status and alert the on-call: counts only, never content.
    Runs until stopped (SIGTERM or Ctrl-C)."""
    watch = {
        "watch_interval": interval,
        "watch_poll_interval": poll_interval,
        "watch_poll_jitter": poll_jitter,
        "watch_immediate_danger": immediate_danger,
    }
    with _transfer_client(options, watch=watch) as client:
        settings = client.settings.watch
        if not settings.has_channel:
            raise click.ClickException(
                "no alert channel: set smtp_host, webhook_url or alert_command "
                "(docs/transfer.md, section 5)"
            )
        channels = build_channels(client.settings)
        stop = threading.Event()
        previous = {s: signal.signal(s, lambda *_: stop.set()) for s in _STOP_SIGNALS}
        try:
            names = ", ".join(c.name for c in channels)
            click.echo(
                f"watching {client.settings.onion}: a digest every "
                f"{settings.policy.interval:g} s by {names}",
                err=True,
            )
            report = lambda message: click.echo(message, err=True)  # noqa: E731
            Watcher(settings, client.status, channels, stop=stop, report=report).run()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            for channel in channels:
                channel.close()


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
