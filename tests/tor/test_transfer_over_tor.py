"""The transfer machine's commands against ``serve-transfer --onion``, over real Tor.

The drop server's transfer API is published with v3 client authorization on the
network's onion host (``serve-transfer --onion --tor-control-port``); the transfer
machine is client 0, whose tor holds the key ``transfer-client add`` printed. Client 1
plays a machine that knows the address but holds no key.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from privnet import PrivateTorNetwork
from served import Served, cut_rendezvous, descendants, port_is_closed, served, transfer_cli

from securedrop_wm.bundles import ReplyFile, verify_export_bundle
from securedrop_wm.cli import TOR_PASSWORD_ENV
from securedrop_wm.cli import main as cli
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop
from securedrop_wm.transfer import create_token
from securedrop_wm.transfer_client import (
    OnionUnreachableError,
    OutputError,
    TransferClient,
    TransferError,
    TransferInterruptedError,
    load_transfer_settings,
)
from tests.bundles.helpers import encrypt_reply, new_id, reply_bundle, submit
from tests.conftest import Responders
from tests.faults.disk import tmpfs
from tests.live import free_port

pytestmark = pytest.mark.tor


@dataclass
class TransferOnion:
    """The served transfer API and what a transfer machine was given for it."""

    server: Served
    token_file: Path
    service_id: str

    @property
    def address(self) -> str:
        return f"{self.service_id}.onion"


@pytest.fixture
def transfer_onion(
    tor_network: PrivateTorNetwork, drop: Drop, data_dir: Path, tmp_path: Path
) -> Iterator[TransferOnion]:
    """``serve-transfer --onion`` on the onion host's tor, client 0 authorized."""
    assert tor_network.onion_host is not None
    config = data_dir / "config.toml"
    token_file = tmp_path / "transfer-token"
    token_file.write_text(create_token(drop, "on-call") + "\n")
    token_file.chmod(0o600)
    # The admin authorizes the transfer machine; its tor gets the printed line.
    added = CliRunner().invoke(cli, ["--config", str(config), "transfer-client", "add", "laptop"])
    assert added.exit_code == 0, added.output
    service_id, auth, kind, private_key = added.stdout.strip().split(":")
    assert (auth, kind) == ("descriptor", "x25519")
    laptop = tor_network.clients[0]
    laptop.add_client_auth(service_id, private_key)
    port = free_port()
    args = ["serve-transfer", "--onion", "--port", str(port), "--threads", "2"]
    args += ["--tor-control-port", str(tor_network.onion_host.control_port)]
    env = {TOR_PASSWORD_ENV: tor_network.onion_host.control_password}
    try:
        with served(config, args, port, tmp_path / "serve-transfer.out", env) as server:
            assert server.address == f"{service_id}.onion"
            # The web server parses what comes in from the network: it must not hold
            # the password that controls tor.
            password = tor_network.onion_host.control_password.encode()
            web = descendants(server.process.pid)
            assert len(web) >= 2  # gunicorn's master and its worker
            for pid in web:
                assert password not in Path(f"/proc/{pid}/environ").read_bytes()
            assert password in Path(f"/proc/{server.process.pid}/environ").read_bytes()
            yield TransferOnion(server, token_file, service_id)
            # Stopping is clean: exit status 0, nothing listens any more.
            assert server.stop() == 0, server.text()
            assert port_is_closed(port)
    finally:
        laptop.remove_client_auth(service_id)


def test_status_pull_and_push_through_the_authorized_onion(
    tor_network: PrivateTorNetwork,
    transfer_onion: TransferOnion,
    drop: Drop,
    responders: Responders,
    workstation_gpg: GnuPG,
    signer_gpg: GnuPG,
    workdir: Path,
    tmp_path: Path,
) -> None:
    laptop = tor_network.clients[0]
    onion, token = transfer_onion.address, transfer_onion.token_file
    evidence = b"From: someone\n\nI know where you live.\n" * 3000
    sent = submit(drop, {"threat.eml": evidence}, urgency="danger")

    # The on-call responder sees that a report from someone in danger waits.
    status = transfer_cli(laptop, onion, token, "status")
    assert status.exit_code == 0, status.output
    assert status.stdout == (
        "danger: 1 waiting, 1 arrived in all\n"
        "urgent: 0 waiting, 0 arrived in all\n"
        "routine: 0 waiting, 0 arrived in all\n"
    )

    # Pull: one complete export bundle on the "USB disk" and the time of the pull beside
    # it (the workstation's clocks start there), nothing else.
    usb = tmp_path / "usb"
    usb.mkdir()
    pulled = transfer_cli(laptop, onion, token, "pull", "--output-dir", str(usb))
    assert pulled.exit_code == 0, pulled.output
    bundle, pull_time = sorted(usb.iterdir())
    assert re.fullmatch(r"export-\d+\.tar", bundle.name)
    assert pull_time.name == bundle.name + ".pulled"
    assert pulled.stdout.strip().endswith(f"-> {bundle}")
    server_fpr = drop.settings.signing_fingerprint
    with verify_export_bundle(bundle, workstation_gpg, server_fpr, workdir) as verified:
        item = next(i for i in verified.manifest.items if i.kind == "file")
        assert responders.decrypt(verified.item_path(item.id)) == sent.files["threat.eml"]
        (source,) = verified.manifest.sources
        reply = encrypt_reply(
            responders, verified.key_path(source.id), "We got it.", tmp_path / "r.gpg"
        )
        acknowledged = [i.id for i in verified.manifest.items]

    # Push: the reply is stored, the report acknowledged; pushing again changes nothing.
    replies = reply_bundle(
        signer_gpg,
        responders,
        drop,
        tmp_path / "replies.tar",
        replies=[ReplyFile(new_id(), source.id, reply)],
        acknowledged=acknowledged,
    )
    pushed = transfer_cli(laptop, onion, token, "push", str(replies))
    assert pushed.exit_code == 0, pushed.output
    assert "1 reply(ies) stored" in pushed.stdout
    assert f"{len(acknowledged)} submission(s) acknowledged" in pushed.stdout
    again = transfer_cli(laptop, onion, token, "push", str(replies))
    assert again.exit_code == 0, again.output
    assert "already imported; nothing changed" in again.stdout
    status = transfer_cli(laptop, onion, token, "status")
    assert status.stdout.startswith("danger: 0 waiting, 1 arrived in all\n")


def test_no_client_key_or_a_wrong_token_is_refused(
    tor_network: PrivateTorNetwork, transfer_onion: TransferOnion, tmp_path: Path
) -> None:
    laptop, stranger = tor_network.clients
    onion = transfer_onion.address

    # A machine that knows the address but holds no key: its own tor refuses.
    refused = transfer_cli(stranger, onion, transfer_onion.token_file, "status")
    assert refused.exit_code == 1
    assert "requires client authorization" in refused.output
    assert "SOCKS error 0xF4" in refused.output

    # The authorized machine with a wrong token: the API refuses it (403).
    wrong = tmp_path / "wrong-token"
    wrong.write_text("sdwm_" + "A" * 43)
    wrong.chmod(0o600)
    forbidden = transfer_cli(laptop, onion, wrong, "status")
    assert forbidden.exit_code == 1
    assert "refused the token (HTTP 403)" in forbidden.output
    usb = tmp_path / "usb"
    usb.mkdir()
    forbidden = transfer_cli(laptop, onion, wrong, "pull", "--output-dir", str(usb))
    assert "refused the token (HTTP 403)" in forbidden.output
    assert list(usb.iterdir()) == []


def test_broken_download_leaves_nothing_and_a_retry_starts_clean(
    tor_network: PrivateTorNetwork,
    transfer_onion: TransferOnion,
    drop: Drop,
    workstation_gpg: GnuPG,
    workdir: Path,
    tmp_path: Path,
) -> None:
    laptop = tor_network.clients[0]
    video = os.urandom(12 << 20)
    submit(drop, {"recording.webm": video})
    usb = tmp_path / "usb"
    usb.mkdir()
    settings = load_transfer_settings(
        None,
        onion=transfer_onion.address,
        socks=f"127.0.0.1:{laptop.socks_port}",
        token_file=transfer_onion.token_file,
        retries=0,
        retry_delay=1,
    )
    cuts: list[int] = []

    def cut_on_first_bytes(done: int, total: int) -> None:
        # The server's tor drops the rendezvous circuit mid-download, once.
        if done > 0 and not cuts:
            cuts.append(cut_rendezvous(tor_network, transfer_onion.service_id))

    # Given a pull killed while it writes (as by a power cut on the transfer machine),
    killed = subprocess.Popen(
        [sys.executable, "-m", "securedrop_wm", "transfer", "pull", "--output-dir", str(usb)]
        + ["--onion", settings.onion, "--socks", f"127.0.0.1:{laptop.socks_port}"]
        + ["--token-file", str(transfer_onion.token_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while not any(p.stat().st_size for p in usb.glob(".export-*.part")):
        assert killed.poll() is None, "the pull ended before it could be killed"
        assert time.monotonic() < deadline, "the pull wrote nothing"
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    (leftover,) = usb.iterdir()
    assert leftover.name.startswith(".export-"), "only a hidden part, never a bundle"

    # when a pull without retries breaks mid-download,
    with TransferClient(settings) as client, pytest.raises(TransferInterruptedError) as broken:
        client.pull(usb, progress=cut_on_first_bytes)
    # then it says so, and the folder is empty: the killed pull's part is gone too.
    assert cuts and cuts[0] >= 1
    assert "the download broke after" in str(broken.value)
    assert list(usb.iterdir()) == []

    # When it breaks on the first attempt of a pull with retries, the second attempt
    # starts from scratch and completes: one bundle, complete and verified.
    cuts.clear()
    retried: list[TransferError] = []
    with TransferClient(
        replace(settings, retries=3), on_retry=lambda n, e, delay: retried.append(e)
    ) as client:
        bundle = client.pull(usb, progress=cut_on_first_bytes)
    # (On a loaded machine tor may also need a try or two to rebuild the circuit.)
    assert isinstance(retried[0], TransferInterruptedError)
    assert all(isinstance(e, TransferInterruptedError | OnionUnreachableError) for e in retried)
    assert sorted(usb.iterdir()) == [
        bundle.path,
        bundle.path.with_name(bundle.path.name + ".pulled"),
    ]
    assert bundle.path.stat().st_size == bundle.size > len(video)
    server_fpr = drop.settings.signing_fingerprint
    with verify_export_bundle(bundle.path, workstation_gpg, server_fpr, workdir) as verified:
        assert any(i.size > len(video) for i in verified.manifest.items)


def test_a_full_disk_is_told_and_leaves_nothing(
    tor_network: PrivateTorNetwork, transfer_onion: TransferOnion, drop: Drop, tmp_path: Path
) -> None:
    laptop = tor_network.clients[0]
    submit(drop, {"recording.webm": os.urandom(6 << 20)})
    settings = load_transfer_settings(
        None,
        onion=transfer_onion.address,
        socks=f"127.0.0.1:{laptop.socks_port}",
        token_file=transfer_onion.token_file,
        retries=2,
        retry_delay=1,
    )
    with TransferClient(settings) as client:
        # A USB stick too small for the bundle: refused before a byte is written.
        with tmpfs("2m") as small:
            with pytest.raises(OutputError, match="not enough space"):
                client.pull(small)
            assert list(small.iterdir()) == []

        # A stick that fills up during the download (something else writes to it):
        # the disk is named as full, not as a broken transfer, and nothing is kept.
        with tmpfs("8m") as stick:
            filler = stick / "holiday-photos.jpg"

            def fill_up(done: int, total: int) -> None:
                if done and not filler.exists():
                    filler.write_bytes(b"\0" * (shutil.disk_usage(stick).free - (64 << 10)))

            with pytest.raises(OutputError, match="is full; nothing was kept"):
                client.pull(stick, progress=fill_up)
            assert list(stick.iterdir()) == [filler]
