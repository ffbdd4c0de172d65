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
from homeserver.http.errors import MatrixError, forbidden, missing_token, unknown_token
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
    # Set when an application service made the request (with its as_token); device_id is
    # then "" unless the service named one with ?device_id=.
    appservice_id: str | None = None
    # False for a service registered with rate_limited: false: no rate limits apply.
    rate_limited: bool = True


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


def _query_arg(request: server.Request, name: bytes) -> str | None:
    values = request.args.get(name) if request.args else None
    if not values or not values[0]:
        return None
    return values[0].decode("utf-8", "replace")


class Authenticator:
    def __init__(self, clock: Clock, tokens: TokenStore, devices: DeviceStore, *, users=None,
                 appservices=(), server_name: str | None = None):
        self._clock = clock
        self._tokens = tokens
        self._devices = devices
        self._users = users
        self._appservices = list(appservices)
        self._server_name = server_name
        self._last_seen_written: dict[tuple[str, str], int] = {}
        # (service ID) -> None: told whenever a service authenticates (the sender's backoff).
        self.on_appservice_seen = None

    async def authenticate(self, request: server.Request) -> Requester:
        """The requester, or 401 M_MISSING_TOKEN / M_UNKNOWN_TOKEN."""
        token = token_from_request(request)
        if token is None:
            raise missing_token()
        token_hash = hash_token(token)
        if self._appservices:
            from appservice.loading import registration_for_token
            registration = registration_for_token(self._appservices, token)
            if registration is not None:
                return await self._appservice_requester(request, registration, token_hash)
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

    async def authenticate_appservice(self, request: server.Request):
        """The application service whose as_token the request carries, ignoring
        ``?user_id=`` (a service registering a user names it before it exists); None when
        the token is a user's; 401 when there is none or it is unknown."""
        token = token_from_request(request)
        if token is None:
            raise missing_token()
        if self._appservices:
            from appservice.loading import registration_for_token
            registration = registration_for_token(self._appservices, token)
            if registration is not None:
                return registration
        await self.authenticate(request)  # 401 for an unknown token
        return None

    async def _appservice_requester(self, request: server.Request, registration, token_hash: str) -> Requester:
        """An application service acts as its sender, or as ``?user_id=`` (a registered
        user of its users namespace), on ``?device_id=`` when given (created if new)."""
        if self.on_appservice_seen is not None:
            self.on_appservice_seen(registration.id)  # it is up: its queued transactions go now
        user_id = _query_arg(request, b"user_id") or registration.sender
        if user_id != registration.sender:
            _, _, server_name = user_id.partition(":")
            if not user_id.startswith("@") or server_name != self._server_name \
                    or not registration.is_user_in_namespace(user_id):
                raise MatrixError(403, "M_EXCLUSIVE",
                                  f"Application service cannot masquerade as this user ({user_id})")
            user = await self._users.get_user(user_id) if self._users is not None else None
            if user is None:
                raise forbidden(f"Application service has not registered this user ({user_id})")
            if user.deactivated:
                raise MatrixError(403, "M_USER_DEACTIVATED", "This account has been deactivated")
        device_id = _query_arg(request, b"device_id") or _query_arg(request, b"org.matrix.msc3202.device_id") or ""
        if len(device_id) > 255:
            raise MatrixError(400, "M_INVALID_PARAM", "'device_id' is longer than 255 characters")
        if device_id and await self._devices.get_device(user_id, device_id) is None:
            from storage.stores.devices import upsert_device_txn
            now = self._clock.time_ms()
            await self._devices.db.run_interaction("appservice_device", upsert_device_txn, user_id, device_id,
                                                   None, now, None)
        request.user_for_log = user_id
        return Requester(user_id, device_id, token_hash, False, appservice_id=registration.id,
                         rate_limited=registration.rate_limited)

    def _note_last_seen(self, user_id: str, device_id: str, now: int, request) -> None:
        key = (user_id, device_id)
        if now - self._last_seen_written.get(key, 0) < _LAST_SEEN_INTERVAL_MS:
            return
        self._last_seen_written[key] = now
        ip = request.client_ip() if hasattr(request, "client_ip") else None
        # Best effort: a lost last-seen update is harmless, so it is not awaited.
        d = defer.ensureDeferred(self._devices.record_last_seen(user_id, device_id, now, ip))
        d.addErrback(lambda failure: log.failure("could not record last seen", failure))
