"""The server's ed25519 signing key: made on first start, kept in the data dir.

The file uses the format Synapse uses (``ed25519 <version> <unpadded base64 seed>``), so
a key can move between the two.
"""

from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

from signedjson.key import generate_signing_key, read_signing_keys, write_signing_keys


def _new_key_version() -> str:
    return "a_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(4))


def load_or_create_signing_key(path: Path):
    """The signing key at ``path``; a new one is written there (mode 0600) if missing."""
    if path.exists():
        with open(path) as handle:
            keys = read_signing_keys(handle)
        if not keys:
            raise ValueError(f"signing key file {path} holds no key")
        return keys[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_signing_key(_new_key_version())
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        write_signing_keys(handle, [key])
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return key
