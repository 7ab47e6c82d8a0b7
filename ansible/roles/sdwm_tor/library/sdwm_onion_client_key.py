#!/usr/bin/python
"""Ansible module: an x25519 key pair for v3 onion service client authorization."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sdwm_onion_client_key
short_description: Keep an x25519 key pair for onion service client authorization
description:
  - Creates (or, with O(rotate), replaces) the private key of one client of a v3
    onion service with client authorization, stored base32-encoded in a file of
    mode 0600, and returns its public key in the form tor's C(authorized_clients/*.auth)
    files take.
  - With O(onion_address), also writes the C(.auth_private) file that the client's
    tor reads from its C(ClientOnionAuthDir).
  - Meant to run on the admin's machine (C(delegate_to: localhost)), so the private
    key never reaches the server.
options:
  path:
    description: File holding the base32 private key.
    type: path
    required: true
  rotate:
    description: Make a new key even if one exists.
    type: bool
    default: false
  onion_address:
    description: The service's address (with or without C(.onion)).
    type: str
  auth_private_path:
    description: Where to write the client's C(.auth_private) file (needs O(onion_address)).
    type: path
requirements:
  - cryptography
author: securedrop-wm
"""

RETURN = r"""
auth_line:
  description: The line for the server's C(authorized_clients/NAME.auth) file.
  type: str
  returned: always
  sample: descriptor:x25519:N2NU7BSRL6YODZCYPN4CREB54TYLKGIE2KYOQWLFYC23ZJVCE5DQ
"""

# Ansible wants the documentation above the imports.
import base64  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

try:  # noqa: E402
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
except ImportError:  # pragma: no cover - reported by the module at run time
    X25519PrivateKey = None

RAW = serialization.Encoding.Raw if X25519PrivateKey else None


def _b32(raw):
    return base64.b32encode(raw).decode().rstrip("=")


def _read_private(path):
    with open(path) as f:
        text = f.read().strip()
    raw = base64.b32decode(text + "=" * (-len(text) % 8))
    if len(raw) != 32:
        raise ValueError("not a 32-byte x25519 key")
    return X25519PrivateKey.from_private_bytes(raw)


def _write_atomic(path, text):
    """Write ``text`` to ``path`` with mode 0600; return True if the content changed."""
    try:
        with open(path) as f:
            if f.read() == text:
                return False
    except FileNotFoundError:
        pass
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return True


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "rotate": {"type": "bool", "default": False},
            "onion_address": {"type": "str"},
            "auth_private_path": {"type": "path"},
        },
        required_together=[["onion_address", "auth_private_path"]],
        supports_check_mode=True,
    )
    if X25519PrivateKey is None:
        module.fail_json(msg="the Python package 'cryptography' is required")
    path = module.params["path"]
    changed = False
    key = None
    if not module.params["rotate"] and os.path.exists(path):
        try:
            key = _read_private(path)
        except (OSError, ValueError) as e:
            module.fail_json(msg=f"cannot read the client key {path}: {e}")
    if key is None:
        changed = True
        key = X25519PrivateKey.generate()
        if not module.check_mode:
            private_raw = key.private_bytes(
                RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption()
            )
            _write_atomic(path, _b32(private_raw) + "\n")
    public_raw = key.public_key().public_bytes(RAW, serialization.PublicFormat.Raw)
    if module.params["onion_address"]:
        address = module.params["onion_address"].strip()
        address = address[: -len(".onion")] if address.endswith(".onion") else address
        private_raw = key.private_bytes(
            RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        line = f"{address}:descriptor:x25519:{_b32(private_raw)}\n"
        if module.check_mode:
            changed = changed or not os.path.exists(module.params["auth_private_path"])
        else:
            changed = _write_atomic(module.params["auth_private_path"], line) or changed
    module.exit_json(changed=changed, auth_line=f"descriptor:x25519:{_b32(public_raw)}")


if __name__ == "__main__":
    main()
