"""OpenID tokens (client-server ``POST /user/{userId}/openid/request_token``, federation
``GET /openid/userinfo``): short-lived proofs of a user's identity that a third party (here:
the MatrixRTC token endpoint of ``matrixrtc``, on this or another homeserver) can check.

They live in memory for an hour: a restart makes clients ask for a new one, which
MatrixRTC clients do before each call anyway. Only a hash is kept."""

from __future__ import annotations

import hashlib
import secrets

OPENID_TTL_SECS = 3600


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class OpenIdTokens:
    def __init__(self, clock):
        self._clock = clock
        self._tokens: dict[str, tuple[str, int]] = {}  # hash -> (user ID, expiry ms)

    def issue(self, user_id: str) -> tuple[str, int]:
        now = self._clock.time_ms()
        # Forget the expired ones on the way, so the map stays small.
        self._tokens = {h: v for h, v in self._tokens.items() if v[1] > now}
        token = secrets.token_urlsafe(32)
        self._tokens[_hash(token)] = (user_id, now + OPENID_TTL_SECS * 1000)
        return token, OPENID_TTL_SECS

    def user_of(self, token: str) -> str | None:
        found = self._tokens.get(_hash(token)) if isinstance(token, str) else None
        if found is None or found[1] <= self._clock.time_ms():
            return None
        return found[0]
