"""/api/v1 routes: relationships (being written)."""

from __future__ import annotations


def register(api, hs) -> None:
    pass
