"""Placeholder: filled in by the push rules work."""

from __future__ import annotations

from homeserver.http.router import Router


def register_routes(router: Router, hs) -> None:
    pass
