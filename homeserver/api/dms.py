"""/api/v1 routes: dms (being written)."""

from __future__ import annotations


def register(api, hs) -> None:
    pass
