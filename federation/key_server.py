"""GET /_matrix/key/v2/server: this server's signing key, signed by itself."""

from __future__ import annotations

from signedjson.key import encode_verify_key_base64, get_verify_key
from signedjson.sign import sign_json

from homeserver.events.signing import key_id
from homeserver.http.router import Router

KEY_VALIDITY_MS = 24 * 60 * 60 * 1000


def server_keys_response(server_name: str, signing_key, now_ms: int) -> dict:
    verify_key = get_verify_key(signing_key)
    body = {
        "server_name": server_name,
        "valid_until_ts": now_ms + KEY_VALIDITY_MS,
        "verify_keys": {key_id(signing_key): {"key": encode_verify_key_base64(verify_key)}},
        "old_verify_keys": {},
    }
    return sign_json(body, server_name, signing_key)


def register_routes(router: Router, hs) -> None:
    async def server_keys(request):
        return 200, server_keys_response(hs.config.server_name, hs.signing_key, hs.clock.time_ms())

    router.add("GET", "/_matrix/key/v2/server", server_keys)
    router.add("GET", "/_matrix/key/v2/server/{key_id}", lambda request, key_id: server_keys(request))
