"""Devices and end-to-end keys across servers, both directions.

Served to other servers (signed requests): ``GET /user/devices/{userId}``, ``POST
/user/keys/query`` and ``POST /user/keys/claim``, for our users only.

Asked of other servers: a client's ``/keys/query`` and ``/keys/claim`` naming users of
other servers go to those servers (``E2EKeysHandler`` calls ``query_keys`` and
``claim_keys`` here, per server, in parallel).

Device lists. When one of our users' device keys (or cross-signing keys, or signatures
of their own keys) change, every server sharing a room with them gets an
``m.device_list_update`` per changed device (``m.signing_key_update`` for cross-signing
keys), carrying the change's ``stream_id`` and, in ``prev_id``, the user's previous one,
so that a server caching our lists (Synapse) notices a gap and resyncs with ``GET
/user/devices``, whose ``stream_id`` is the user's latest.

Remote device lists are not cached here: every ``/keys/query`` for users of another
server asks that server (fetch on demand). An incoming ``m.device_list_update`` or
``m.signing_key_update`` only records that the user changed, in the same device_lists
stream as local changes, so our users sharing a room with them see the user in /sync
``device_lists.changed`` and query again, getting fresh keys. With nothing cached, a
lost update cannot leave stale keys behind, so there is never a cache to resync with
``GET /user/devices``; the price is one request per query, which clients make only
after a change. (A cache would also have to survive restarts and track every room
membership change to stay correct.)
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from homeserver.events.received import server_name_of
from homeserver.http.errors import invalid_param
from homeserver.http.request import field
from homeserver.locks import KeyedLock
from storage.cache import LruCache
from storage.database import Transaction

log = Logger(namespace="drocsid.federation.e2e")

PREFIX = "/_matrix/federation/v1"
DEVICE_LIST_UPDATE = "m.device_list_update"
SIGNING_KEY_UPDATE = "m.signing_key_update"


def _change_txn(txn: Transaction, user_id: str, stream_id: int) -> tuple[list[str | None], int | None]:
    """(device IDs of the change at ``stream_id``, the user's previous change's stream ID)."""
    rows = txn.select_all("SELECT device_id FROM device_lists_stream WHERE user_id = ? AND stream_id = ?"
                          " AND notify_only IS NULL", (user_id, stream_id))
    previous = txn.select_one("SELECT MAX(stream_id) FROM device_lists_stream WHERE user_id = ? AND stream_id < ?"
                              " AND notify_only IS NULL", (user_id, stream_id))
    return [r[0] for r in rows], previous[0] if previous else None


def _latest_stream_id_txn(txn: Transaction, user_id: str) -> int:
    row = txn.select_one("SELECT MAX(stream_id) FROM device_lists_stream WHERE user_id = ? AND notify_only IS NULL",
                         (user_id,))
    return int(row[0]) if row and row[0] is not None else 0


class FederationE2E:
    def __init__(self, hs):
        self._hs = hs
        self._server_name = hs.config.server_name
        self._client = hs.federation_client
        self._user_locks = KeyedLock()
        # (user, stream_id) of device-list EDUs already recorded (a change naming several
        # devices arrives as one EDU per device).
        self._seen_updates: LruCache[tuple[str, Any], bool] = LruCache(10_000)

    # -- asking other servers (called by E2EKeysHandler) -----------------------------------

    async def query_keys(self, server: str, users: dict[str, list[str]], timeout: float) -> dict:
        return await self._client.post_json(server, PREFIX + "/user/keys/query", {"device_keys": users},
                                            timeout=timeout)

    async def claim_keys(self, server: str, users: dict[str, dict[str, str]], timeout: float) -> dict:
        return await self._client.post_json(server, PREFIX + "/user/keys/claim", {"one_time_keys": users},
                                            timeout=timeout)

    # -- our users' changes, to other servers --------------------------------------------

    def local_device_list_changed(self, user_id: str, stream_id: int) -> None:
        """Called (not awaited) for every device-list change of one of our users."""
        self._hs.run_in_background("device_list_edus", self._send_updates(user_id, stream_id))

    async def _servers_sharing_rooms(self, user_id: str) -> set[str]:
        servers: set[str] = set()
        for room_id in await self._hs.rooms.get_rooms_for_user(user_id):
            servers |= await self._hs.federation_store.servers_in_room(room_id)
        servers.discard(self._server_name)
        return servers

    async def _send_updates(self, user_id: str, stream_id: int) -> None:
        # One user's changes go out in stream order: a later change waits for this one.
        async with self._user_locks.hold(user_id):
            servers = await self._servers_sharing_rooms(user_id)
            if not servers:
                return
            device_ids, previous = await self._hs.db.run_interaction("device_list_change", _change_txn,
                                                                     user_id, stream_id)
            if not device_ids:
                return
            keys = await self._hs.e2e_keys.query_local_keys_for_server({user_id: []})
            devices = keys["device_keys"].get(user_id, {})
            prev_id = [previous] if previous is not None else []
            edus: list[tuple[str, dict]] = []

            def device_update(device_id: str, deleted: bool) -> dict:
                update: dict[str, Any] = {"user_id": user_id, "device_id": device_id, "stream_id": stream_id,
                                          "prev_id": prev_id}
                if deleted:
                    update["deleted"] = True
                elif device_id in devices:
                    update["keys"] = devices[device_id]
                return update

            if None in device_ids:
                # Cross-signing keys, or signatures of the user's own keys (which may be on
                # any of their devices): the keys, and every device's keys as they are now.
                signing: dict[str, Any] = {"user_id": user_id}
                if user_id in keys["master_keys"]:
                    signing["master_key"] = keys["master_keys"][user_id]
                if user_id in keys["self_signing_keys"]:
                    signing["self_signing_key"] = keys["self_signing_keys"][user_id]
                edus.append((SIGNING_KEY_UPDATE, signing))
                edus += [(DEVICE_LIST_UPDATE, device_update(d, False)) for d in sorted(devices)]
            for device_id in dict.fromkeys(d for d in device_ids if d is not None):
                exists = device_id in devices or await self._hs.devices.get_device(user_id, device_id) is not None
                edus.append((DEVICE_LIST_UPDATE, device_update(device_id, not exists)))
            for server in sorted(servers):
                for edu_type, content in edus:
                    self._hs.federation_sender.send_edu(server, edu_type, content)

    # -- other servers' changes -------------------------------------------------------------

    async def _known_remote_user(self, origin: str, user_id: Any) -> bool:
        if not isinstance(user_id, str) or not user_id.startswith("@") or server_name_of(user_id) != origin:
            return False
        # Only users in a room we are in: nobody here could care about the others.
        return bool(await self._hs.rooms.get_rooms_for_user(user_id))

    async def on_device_list_update(self, origin: str, content: dict) -> None:
        user_id = content.get("user_id")
        if not await self._known_remote_user(origin, user_id):
            return
        device_id = content.get("device_id")
        key = (user_id, content.get("stream_id"))
        if isinstance(content.get("stream_id"), int) and self._seen_updates.get(key):
            return  # another device of a change already recorded
        self._seen_updates.set(key, True)
        await self._hs.e2e_keys.record_remote_change(user_id, [device_id if isinstance(device_id, str) else None])

    async def on_signing_key_update(self, origin: str, content: dict) -> None:
        user_id = content.get("user_id")
        if not await self._known_remote_user(origin, user_id):
            return
        await self._hs.e2e_keys.record_remote_change(user_id, [None])

    # -- serving other servers --------------------------------------------------------------

    async def user_devices(self, user_id: str) -> dict:
        if server_name_of(user_id) != self._server_name:
            raise invalid_param(f"{user_id} is not a user of this server")
        stream_id = await self._hs.db.run_interaction("device_list_latest", _latest_stream_id_txn, user_id)
        keys = await self._hs.e2e_keys.query_local_keys_for_server({user_id: []})
        device_keys = keys["device_keys"].get(user_id, {})
        devices = []
        # Device names stay here, as in user/keys/query.
        for record in await self._hs.devices.get_devices(user_id):
            entry: dict[str, Any] = {"device_id": record.device_id}
            if record.device_id in device_keys:
                entry["keys"] = device_keys[record.device_id]
            devices.append(entry)
        answer: dict[str, Any] = {"user_id": user_id, "stream_id": stream_id, "devices": devices}
        if user_id in keys["master_keys"]:
            answer["master_key"] = keys["master_keys"][user_id]
        if user_id in keys["self_signing_keys"]:
            answer["self_signing_key"] = keys["self_signing_keys"][user_id]
        return answer


def _device_query(body: dict) -> dict[str, list[str]]:
    wanted = field(body, "device_keys", dict)
    for user_id, device_ids in wanted.items():
        if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
            raise invalid_param(f"'device_keys.{user_id}' must be a list of device IDs")
    return wanted


def _claim_query(body: dict) -> dict[str, dict[str, str]]:
    wanted = field(body, "one_time_keys", dict)
    for user_id, devices in wanted.items():
        if not isinstance(devices, dict) or not all(isinstance(a, str) for a in devices.values()):
            raise invalid_param(f"'one_time_keys.{user_id}' must map device IDs to algorithms")
    return wanted


def register(router, hs, authenticated) -> None:
    e2e: FederationE2E = hs.federation_e2e

    async def get_user_devices(request, origin, user_id):
        return 200, await e2e.user_devices(user_id)

    async def post_keys_query(request, origin, body):
        return 200, await hs.e2e_keys.query_local_keys_for_server(_device_query(body))

    async def post_keys_claim(request, origin, body):
        return 200, await hs.e2e_keys.claim_local_keys_for_server(_claim_query(body))

    router.add("GET", PREFIX + "/user/devices/{user_id}", authenticated(get_user_devices))
    router.add("POST", PREFIX + "/user/keys/query", authenticated(post_keys_query, with_body=True))
    router.add("POST", PREFIX + "/user/keys/claim", authenticated(post_keys_claim, with_body=True))


def attach(hs) -> None:
    hs.federation_e2e = FederationE2E(hs)
    hs.federation_transactions.register_edu_handler(DEVICE_LIST_UPDATE, hs.federation_e2e.on_device_list_update)
    hs.federation_transactions.register_edu_handler(SIGNING_KEY_UPDATE, hs.federation_e2e.on_signing_key_update)
    hs.federation_route_modules.append(register)

