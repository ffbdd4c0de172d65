"""Drocsid statuses on Matrix presence (pure).

idle is "unavailable"; do-not-disturb is "unavailable" with a status_msg of "dnd" (or
"dnd:" + the custom status), so plain Matrix clients see the user as away; invisible is
"offline", which is what everyone else sees.
"""

from __future__ import annotations

STATUSES = ("online", "idle", "dnd", "invisible")
DND_MARK = "dnd"


def _escape(custom: str | None) -> str | None:
    # A custom status that would read as the do-not-disturb mark (or as escaped) gets a
    # backslash in front, so what a user types always comes back as typed.
    if custom is not None and (custom.startswith("\\") or custom == DND_MARK or custom.startswith(DND_MARK + ":")):
        return "\\" + custom
    return custom


def _unescape(message: str | None) -> str | None:
    return message[1:] if message is not None and message.startswith("\\") else message


def to_matrix_presence(status: str, custom_status: str | None) -> tuple[str, str | None]:
    """(Matrix presence, status_msg) for a Drocsid status and custom status."""
    if status == "online":
        return "online", _escape(custom_status)
    if status == "idle":
        return "unavailable", _escape(custom_status)
    if status == "dnd":
        return "unavailable", DND_MARK + (":" + custom_status if custom_status else "")
    return "offline", None


def from_matrix_presence(state: str, status_msg: str | None) -> tuple[str, str | None]:
    """(Drocsid status, custom status) for Matrix presence and its status_msg."""
    if state == "online":
        return "online", _unescape(status_msg)
    if state == "unavailable":
        if status_msg == DND_MARK or (status_msg or "").startswith(DND_MARK + ":"):
            return "dnd", status_msg[len(DND_MARK) + 1:] or None
        return "idle", _unescape(status_msg)
    return "offline", None
