"""Canonical JSON and unpadded base64, as the specification defines them.

canonicaljson does the encoding; it does not refuse floats or integers outside the
range JSON numbers keep exactly, so ``check_canonical`` does.
"""

from __future__ import annotations

import base64
from typing import Any

from canonicaljson import encode_canonical_json

MAX_SAFE_INTEGER = 2 ** 53 - 1


class CanonicalJsonError(ValueError):
    pass


def check_canonical(value: Any, path: str = "") -> None:
    """Refuse what canonical JSON cannot carry: floats and integers past 2^53-1."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalJsonError(f"integer out of range at {path or 'top level'}")
        return
    if isinstance(value, float):
        raise CanonicalJsonError(f"floats are not allowed (at {path or 'top level'})")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalJsonError("object keys must be strings")
            check_canonical(item, f"{path}.{key}" if path else key)
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_canonical(item, f"{path}[{index}]")
        return
    raise CanonicalJsonError(f"unsupported JSON value {type(value).__name__} at {path or 'top level'}")


def canonical_json(value: Any) -> bytes:
    return encode_canonical_json(value)


def encode_base64(data: bytes, urlsafe: bool = False) -> str:
    encoded = base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)
    return encoded.rstrip(b"=").decode("ascii")


def decode_base64(text: str) -> bytes:
    """Unpadded (or padded) standard or URL-safe base64."""
    padded = text + "=" * (-len(text) % 4)
    if "-" in text or "_" in text:
        return base64.urlsafe_b64decode(padded)
    return base64.b64decode(padded)
