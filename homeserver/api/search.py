"""/api/v1 routes: search (being written)."""

from __future__ import annotations


def register(api, hs) -> None:
    pass
