"""Matrix identifiers: user IDs and their localparts (the grammar of the specification)."""

from __future__ import annotations

import re

from homeserver.http.errors import MatrixError

_LOCALPART = re.compile(r"^[a-z0-9._=\-/+]+$")
MAX_USER_ID_LENGTH = 255


def user_id_for(localpart: str, server_name: str) -> str:
    return f"@{localpart}:{server_name}"


def validate_new_localpart(localpart: str, server_name: str) -> str:
    """A localpart a new account may take; M_INVALID_USERNAME otherwise."""
    if not localpart:
        raise MatrixError(400, "M_INVALID_USERNAME", "User name must not be empty")
    if not _LOCALPART.match(localpart):
        raise MatrixError(400, "M_INVALID_USERNAME",
                          "User name may only contain a-z, 0-9, '.', '_', '=', '-', '/' and '+'")
    if len(user_id_for(localpart, server_name)) > MAX_USER_ID_LENGTH:
        raise MatrixError(400, "M_INVALID_USERNAME", "User ID is longer than 255 characters")
    return localpart


def localpart_from_login(identifier: str, server_name: str) -> str | None:
    """The local account a login names (``alice`` or ``@alice:server``); None if remote."""
    if identifier.startswith("@"):
        local, sep, server = identifier[1:].partition(":")
        if not sep or server != server_name:
            return None
        identifier = local
    return identifier.lower()
