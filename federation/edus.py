"""Ephemeral data units between servers (typing, receipts, presence, to-device)."""

from __future__ import annotations


def attach(hs) -> None:
    """Register inbound EDU handlers and outbound hooks on a homeserver with federation."""
