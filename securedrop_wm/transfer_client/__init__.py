"""The transfer machine's side of the transfer API, reached only through Tor.

The responders' networked transfer machine asks the drop server's transfer API (on a
v3 onion with client authorization, see ``transfer_api`` and docs/transfer.md) how many
reports wait, downloads the next export bundle and uploads a reply bundle. Every request
goes through Tor's SOCKS port as ``socks5h`` (tor resolves the onion name, nothing is
looked up locally), ignores the environment's proxy settings and carries a responder
token.

A download is written to a hidden ``.part`` file in the output folder and gets its
final name only once every announced byte has arrived: a broken transfer leaves no
bundle behind, and a retry starts from scratch. (The bundle's integrity end to end is
its signed manifest, checked on the workstation.) Usage::

    settings = load_transfer_settings(None, onion="...onion", token_file=Path("token"))
    with TransferClient(settings) as client:
        print(client.status().pending)
        bundle = client.pull(Path("/media/usb"))
"""

from __future__ import annotations

from .client import Progress, PulledBundle, PushResult, ServerStatus, TransferClient
from .errors import (
    BundleRefusedError,
    ClientAuthorizationError,
    OnionUnreachableError,
    OutputError,
    ReplayRefusedError,
    ServerError,
    TokenRejectedError,
    TorUnavailableError,
    TransferConfigError,
    TransferError,
    TransferInterruptedError,
    TransferProtocolError,
    TransferRefusedError,
)
from .settings import (
    DEFAULT_SOCKS,
    TransferSettings,
    load_transfer_settings,
    parse_onion_address,
    parse_socks_address,
    read_token_file,
)

__all__ = [
    "DEFAULT_SOCKS",
    "ClientAuthorizationError",
    "OnionUnreachableError",
    "OutputError",
    "Progress",
    "PulledBundle",
    "PushResult",
    "ReplayRefusedError",
    "BundleRefusedError",
    "ServerError",
    "ServerStatus",
    "TokenRejectedError",
    "TorUnavailableError",
    "TransferClient",
    "TransferConfigError",
    "TransferError",
    "TransferInterruptedError",
    "TransferProtocolError",
    "TransferRefusedError",
    "TransferSettings",
    "load_transfer_settings",
    "parse_onion_address",
    "parse_socks_address",
    "read_token_file",
]
