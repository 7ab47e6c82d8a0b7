"""``python -m transfer_api``: serve the transfer API with gunicorn, no access log.

Bind it to loopback only; Tor's client-authorized onion service forwards to it.
"""

from __future__ import annotations

from pathlib import Path

import click

from securedrop_wm.drop import silence_libraries
from securedrop_wm.server import run_gunicorn
from securedrop_wm.settings import CONFIG_ENV


@click.command()
@click.option("--config", envvar=CONFIG_ENV, required=True, type=click.Path(dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8081, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
@click.option("--threads", default=4, show_default=True, type=int)
def main(config: str, host: str, port: int, workers: int, threads: int) -> None:
    """Serve the transfer API on HOST:PORT."""
    silence_libraries()
    click.echo(f"Transfer API on http://{host}:{port}/ (no access log is kept)")
    run_gunicorn("transfer_api.wsgi:app", Path(config).resolve(), host, port, workers, threads)


if __name__ == "__main__":
    main()
