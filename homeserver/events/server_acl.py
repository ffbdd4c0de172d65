"""Server access control lists (``m.room.server_acl``): which servers may take part in
a room. Pure: the caller passes the ACL event's content."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern:
    # Only * and ? are wildcards; [ ] are literal in server names.
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE)


def _host_of(server_name: str) -> str:
    if server_name.startswith("["):
        return server_name[:server_name.index("]") + 1]
    return server_name.rsplit(":", 1)[0] if ":" in server_name else server_name


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def server_allowed(server_name: str, acl: dict[str, Any] | None) -> bool:
    """Whether the ACL lets ``server_name`` in (the port is ignored, as the spec says)."""
    if not acl:
        return True
    host = _host_of(server_name)
    if acl.get("allow_ip_literals", True) is False and _is_ip_literal(host):
        return False
    deny = acl.get("deny") if isinstance(acl.get("deny"), list) else []
    if any(isinstance(p, str) and _glob(p).match(host) for p in deny):
        return False
    allow = acl.get("allow") if isinstance(acl.get("allow"), list) else []
    return any(isinstance(p, str) and _glob(p).match(host) for p in allow)


__all__ = ["server_allowed"]
