"""Access tokens: minting, hashing, and turning a request into the user behind it.

Tokens are opaque random strings; only their SHA-256 hash is stored, so the database
never holds a usable credential. A token comes as ``Authorization: Bearer`` or as the
``access_token`` query parameter (older clients).
"""

from __future__ import annotations

import hashlib
import secrets
import string
from dataclasses import dataclass

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import server

from homeserver.clock import Clock
from homeserver.http.errors import missing_token, unknown_token
from storage.stores.devices import DeviceStore
from storage.stores.tokens import TokenStore

log = Logger()

ACCESS_TOKEN_PREFIX = "dat_"
REFRESH_TOKEN_PREFIX = "drt_"
_LAST_SEEN_INTERVAL_MS = 5 * 60 * 1000


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_access_token() -> str:
    return ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_device_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(10))


@dataclass(frozen=True)
class Requester:
    user_id: str
    device_id: str
    token_hash: str
    is_guest: bool = False


def token_from_request(request: server.Request) -> str | None:
    header = request.getHeader(b"Authorization")
    if header:
        scheme, _, value = header.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    values = request.args.get(b"access_token")
    if values and values[0]:
        return values[0].decode("utf-8", "replace")
    return None


class Authenticator:
    def __init__(self, clock: Clock, tokens: TokenStore, devices: DeviceStore):
        self._clock = clock
        self._tokens = tokens
        self._devices = devices
        self._last_seen_written: dict[tuple[str, str], int] = {}

    async def authenticate(self, request: server.Request) -> Requester:
        """The requester, or 401 M_MISSING_TOKEN / M_UNKNOWN_TOKEN."""
        token = token_from_request(request)
        if token is None:
            raise missing_token()
        token_hash = hash_token(token)
        owner = await self._tokens.get_token_owner(token_hash)
        if owner is None or owner.deactivated:
            raise unknown_token()
        now = self._clock.time_ms()
        if owner.expires_ts is not None and owner.expires_ts <= now:
            # soft_logout: the client may refresh instead of logging in again.
            raise unknown_token("Access token has expired", soft_logout=True)
        request.user_for_log = owner.user_id
        self._note_last_seen(owner.user_id, owner.device_id, now, request)
        return Requester(owner.user_id, owner.device_id, token_hash, owner.is_guest)

    def _note_last_seen(self, user_id: str, device_id: str, now: int, request) -> None:
        key = (user_id, device_id)
        if now - self._last_seen_written.get(key, 0) < _LAST_SEEN_INTERVAL_MS:
            return
        self._last_seen_written[key] = now
        ip = request.client_ip() if hasattr(request, "client_ip") else None
        # Best effort: a lost last-seen update is harmless, so it is not awaited.
        d = defer.ensureDeferred(self._devices.record_last_seen(user_id, device_id, now, ip))
        d.addErrback(lambda failure: log.failure("could not record last seen", failure))
