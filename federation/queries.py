"""Federation queries (profile, directory, devices and keys, public rooms, hierarchy, media)."""

from __future__ import annotations


def attach(hs) -> None:
    """Register the query routes (``hs.federation_route_modules``) and outbound lookups."""
