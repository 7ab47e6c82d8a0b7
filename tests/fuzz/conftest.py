"""The bundle fixtures: the workstation's keyring pinning the server key, and the
responders' home that holds the workstation's signing key."""

from tests.bundles.helpers import signer_gpg, workdir, workstation_gpg  # noqa: F401
