"""/api/v1 routes: roles (being written)."""

from __future__ import annotations


def register(api, hs) -> None:
    pass
