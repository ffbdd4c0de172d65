"""End-to-end encryption endpoints: /keys/*, /sendToDevice and (absent) key backup.

``register_routes`` also builds the pieces behind them, from the homeserver's database,
clock, notifier and room store: ``hs.e2e_keys`` (keys and device-list changes) and
``hs.to_device`` (send-to-device), and adds their sections to every /sync.
"""

from __future__ import annotations

from homeserver.handlers.e2e_keys import E2EKeysHandler
from homeserver.handlers.to_device import ToDeviceHandler
from homeserver.http.errors import MatrixError, not_found
from homeserver.http.request import parse_json_object, query_str
from homeserver.http.router import CLIENT_PREFIX, Router
from homeserver.notifier import StreamToken
from storage.stores.e2e_keys import E2EKeysStore
from storage.stores.to_device import ToDeviceStore

CROSS_SIGNING_FLOWS = [["m.login.password"]]


def _token(request, name: str, required: bool) -> StreamToken | None:
    text = query_str(request, name, required=required)
    if text is None:
        return None
    try:
        return StreamToken.parse(text)
    except ValueError:
        raise MatrixError(400, "M_INVALID_PARAM", f"Unknown '{name}' token") from None


def register_routes(router: Router, hs) -> None:
    hs.e2e_keys = E2EKeysHandler(hs.config.server_name, hs.clock, hs.notifier, E2EKeysStore(hs.db), hs.rooms,
                                 federation=getattr(hs, "federation_e2e", None))
    hs.to_device = ToDeviceHandler(hs.config.server_name, hs.clock, hs.notifier, ToDeviceStore(hs.db),
                                   hs.e2e_keys.load_stream_positions)
    hs.sync.add_section_provider(hs.e2e_keys.sync_section)
    hs.sync.add_section_provider(hs.to_device.sync_section)

    async def upload_keys(request):
        requester = await hs.auth.authenticate(request)
        body = parse_json_object(request, allow_empty=True)
        return 200, await hs.e2e_keys.upload_keys(requester.user_id, requester.device_id, body)

    async def query_keys(request):
        requester = await hs.auth.authenticate(request)
        return 200, await hs.e2e_keys.query_keys(requester.user_id, parse_json_object(request))

    async def claim_keys(request):
        await hs.auth.authenticate(request)
        return 200, await hs.e2e_keys.claim_keys(parse_json_object(request))

    async def key_changes(request):
        requester = await hs.auth.authenticate(request)
        since = _token(request, "from", required=True)
        until = _token(request, "to", required=False) or hs.notifier.current_token()
        return 200, await hs.e2e_keys.key_changes(requester.user_id, since, until)

    async def upload_signing_keys(request):
        requester = await hs.auth.authenticate(request)
        body = parse_json_object(request, allow_empty=True)

        async def require_auth():
            await hs.ui_auth.require(body, "device_signing", CROSS_SIGNING_FLOWS, requester.user_id,
                                     hs.accounts.check_password)
        return 200, await hs.e2e_keys.upload_signing_keys(requester.user_id, body, require_auth)

    async def upload_signatures(request):
        requester = await hs.auth.authenticate(request)
        return 200, await hs.e2e_keys.upload_signatures(requester.user_id, parse_json_object(request))

    async def send_to_device(request, event_type, txn_id):
        requester = await hs.auth.authenticate(request)
        await hs.to_device.send(requester.user_id, requester.device_id, event_type, txn_id,
                                parse_json_object(request))
        return 200, {}

    async def no_key_backup(request, **_):
        await hs.auth.authenticate(request)
        raise not_found("No current backup version")

    router.add("POST", f"{CLIENT_PREFIX}/keys/upload", upload_keys)
    router.add("POST", f"{CLIENT_PREFIX}/keys/query", query_keys)
    router.add("POST", f"{CLIENT_PREFIX}/keys/claim", claim_keys)
    router.add("GET", f"{CLIENT_PREFIX}/keys/changes", key_changes)
    router.add("POST", f"{CLIENT_PREFIX}/keys/device_signing/upload", upload_signing_keys)
    router.add("POST", f"{CLIENT_PREFIX}/keys/signatures/upload", upload_signatures)
    router.add("PUT", f"{CLIENT_PREFIX}/sendToDevice/{{event_type}}/{{txn_id}}", send_to_device)
    # Server-side key backup is not offered: every room_keys path answers 404 M_NOT_FOUND.
    for path in ("/room_keys/version", "/room_keys/version/{version}", "/room_keys/keys",
                 "/room_keys/keys/{room_id}", "/room_keys/keys/{room_id}/{session_id}"):
        for method in ("GET", "POST", "PUT", "DELETE"):
            router.add(method, f"{CLIENT_PREFIX}{path}", no_key_backup)
