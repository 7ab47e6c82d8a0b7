"""Bundle test fixtures live in helpers.py, shared with tests/transfer."""

from .helpers import signer_gpg, workdir, workstation_gpg  # noqa: F401
