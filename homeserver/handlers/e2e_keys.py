"""End-to-end encryption keys: upload, query, claim, cross-signing, signatures and the
device-list changes /sync and /keys/changes report.

The server stores and forwards; it never encrypts or decrypts. It does check what the
specification asks it to check: device keys belong to the uploading device, and
cross-signing keys and signatures are signed by the key that should sign them (ed25519
verification with signedjson, as for server keys).

Users of other servers are asked through ``federation`` (``federation.e2e``), one
request per server, in parallel; a server that fails is listed in ``failures``. Without
federation, their part of a query or claim is answered in ``failures``.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from twisted.internet import defer
from twisted.logger import Logger
from signedjson.key import decode_verify_key_base64
from signedjson.sign import verify_signed_json

from homeserver.http.errors import MatrixError, forbidden, invalid_param
from homeserver.http.request import field
from homeserver.notifier import StreamToken
from storage.stores.e2e_keys import E2EKeysStore, KeyConflict, SignatureRow, add_device_list_change_txn

log = Logger(namespace="drocsid.e2e_keys")

# Element (and Synapse) expect this algorithm to be listed even at zero.
DEFAULT_ONE_TIME_KEY_ALGORITHM = "signed_curve25519"
REMOTE_FAILURE = {"status": 503, "message": "Federation is not enabled on this server"}
# How long a /keys/query or /keys/claim waits for other servers by default (its "timeout").
DEFAULT_REMOTE_TIMEOUT_MS = 10_000
MAX_REMOTE_TIMEOUT_MS = 60_000
_USAGE_FIELDS = (("master_key", "master"), ("self_signing_key", "self_signing"),
                 ("user_signing_key", "user_signing"))


class _Refused(Exception):
    def __init__(self, errcode: str, error: str):
        super().__init__(error)
        self.errcode = errcode
        self.error = error


def server_of(user_id: str) -> str | None:
    if not user_id.startswith("@"):
        return None
    _, sep, server = user_id.partition(":")
    return server if sep and server else None


def _without_signatures(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}


def _verify(obj: dict, signer_user_id: str, key_id: str, public_key: Any) -> bool:
    """Whether obj carries a valid ed25519 signature by ``signer_user_id``'s ``key_id``."""
    if not isinstance(public_key, str) or not key_id.startswith("ed25519:"):
        return False
    try:
        verify_key = decode_verify_key_base64("ed25519", key_id[len("ed25519:"):], public_key)
        verify_signed_json(obj, signer_user_id, verify_key)
    except Exception:
        return False
    return True


def _key_map(value: Any, name: str) -> list[tuple[str, str, Any]]:
    """``{"<algorithm>:<key_id>": key}`` -> [(algorithm, key_id, key)]."""
    if value is None:
        return []
    if not isinstance(value, dict):
        raise invalid_param(f"'{name}' must be an object")
    keys = []
    for full_id, key in value.items():
        algorithm, sep, key_id = full_id.partition(":")
        if not sep or not algorithm or not key_id:
            raise invalid_param(f"Key ID '{full_id}' in '{name}' is not of the form <algorithm>:<key_id>")
        if not isinstance(key, (dict, str)):
            raise invalid_param(f"Key '{full_id}' in '{name}' must be an object or a string")
        keys.append((algorithm, key_id, key))
    return keys


def _check_device_keys(device_keys: Any, user_id: str, device_id: str) -> dict:
    if not isinstance(device_keys, dict):
        raise invalid_param("'device_keys' must be an object")
    if device_keys.get("user_id") != user_id or device_keys.get("device_id") != device_id:
        raise invalid_param("'device_keys' must be the keys of the requesting user and device "
                            f"({user_id}, {device_id})")
    keys = device_keys.get("keys")
    if not isinstance(keys, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in keys.items()):
        raise invalid_param("'device_keys.keys' must be an object of key ID to key")
    algorithms = device_keys.get("algorithms")
    if not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms):
        raise invalid_param("'device_keys.algorithms' must be a list of strings")
    if "signatures" in device_keys and not isinstance(device_keys["signatures"], dict):
        raise invalid_param("'device_keys.signatures' must be an object")
    return device_keys


def _cross_signing_key(obj: Any, user_id: str, usage: str, name: str) -> tuple[str, dict]:
    """(public key as in the key ID, the key) of an uploaded cross-signing key."""
    if not isinstance(obj, dict):
        raise invalid_param(f"'{name}' must be an object")
    if obj.get("user_id") != user_id:
        raise invalid_param(f"'{name}.user_id' must be {user_id}")
    usages = obj.get("usage")
    if not isinstance(usages, list) or usage not in usages:
        raise invalid_param(f"'{name}.usage' must contain '{usage}'")
    keys = obj.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        raise invalid_param(f"'{name}.keys' must hold exactly one key")
    [(key_id, value)] = keys.items()
    if not isinstance(key_id, str) or not key_id.startswith("ed25519:") or len(key_id) == len("ed25519:") \
            or not isinstance(value, str):
        raise invalid_param(f"'{name}.keys' must hold one ed25519 key")
    if "signatures" in obj and not isinstance(obj["signatures"], dict):
        raise invalid_param(f"'{name}.signatures' must be an object")
    return key_id[len("ed25519:"):], obj


def _public_value(key: dict, public_key: str) -> Any:
    """The key material of a stored cross-signing key."""
    keys = key.get("keys")
    return keys.get(f"ed25519:{public_key}") if isinstance(keys, dict) else None


def _remote_timeout(body: dict) -> float:
    """The request's ``timeout`` (ms) for other servers, in seconds."""
    timeout = body.get("timeout")
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
        timeout = DEFAULT_REMOTE_TIMEOUT_MS
    return min(timeout, MAX_REMOTE_TIMEOUT_MS) / 1000


def _failure(error: Exception) -> dict:
    status = getattr(error, "status", None)
    failure: dict[str, Any] = {"status": status if isinstance(status, int) else 503,
                               "message": str(error) or type(error).__name__}
    errcode = getattr(error, "errcode", None)
    if isinstance(errcode, str):
        failure["errcode"] = errcode
    return failure


class E2EKeysHandler:
    def __init__(self, server_name: str, clock, notifier, store: E2EKeysStore, rooms, federation=None):
        self._server_name = server_name
        self._clock = clock
        self._notifier = notifier
        self._store = store
        self._rooms = rooms
        # federation.e2e.FederationE2E when federation is enabled: asks other servers and
        # tells them of our users' device-list changes.
        self.federation = federation
        self._positions_loaded = False

    def is_local(self, user_id: str) -> bool:
        return server_of(user_id) == self._server_name

    # -- stream positions ---------------------------------------------------------------

    async def load_stream_positions(self) -> None:
        """Tell the notifier where the to_device and device_lists streams stand in the
        database (they must never go backwards after a restart). Runs once; every entry
        point calls it, and the app may call it at start."""
        if self._positions_loaded:
            return
        positions = await self._store.stream_positions()
        for stream, position in positions.items():
            self._notifier.set_position(stream, position)
        self._positions_loaded = True

    # -- /keys/upload -------------------------------------------------------------------

    async def upload_keys(self, user_id: str, device_id: str, body: dict) -> dict:
        await self.load_stream_positions()
        device_keys = body.get("device_keys")
        if device_keys is not None:
            device_keys = _check_device_keys(device_keys, user_id, device_id)
        one_time_keys = _key_map(body.get("one_time_keys"), "one_time_keys")
        fallback_name = "fallback_keys" if "fallback_keys" in body else "org.matrix.msc2732.fallback_keys"
        fallback_keys = _key_map(body.get(fallback_name), fallback_name)
        algorithms = [algorithm for algorithm, _, _ in fallback_keys]
        if len(set(algorithms)) != len(algorithms):
            raise invalid_param("At most one fallback key per algorithm")
        try:
            stream_id, counts = await self._store.upload_keys(user_id, device_id, device_keys, one_time_keys,
                                                              fallback_keys, self._clock.time_ms())
        except KeyConflict as conflict:
            raise invalid_param(str(conflict)) from None
        if stream_id is not None:
            await self.notify_device_list_change(user_id, stream_id)
        counts.setdefault(DEFAULT_ONE_TIME_KEY_ALGORITHM, 0)
        return {"one_time_key_counts": counts}

    # -- /keys/query --------------------------------------------------------------------

    async def query_keys(self, requester_id: str, body: dict) -> dict:
        wanted = field(body, "device_keys", dict)
        local: dict[str, list[str]] = {}
        remote: dict[str, dict[str, list[str]]] = {}
        failures: dict[str, dict] = {}
        for user_id, device_ids in wanted.items():
            if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
                raise invalid_param(f"'device_keys.{user_id}' must be a list of device IDs")
            server = server_of(user_id)
            if server is None:
                continue
            if server == self._server_name:
                local[user_id] = device_ids
            elif self.federation is None:
                failures[server] = dict(REMOTE_FAILURE)
            else:
                remote.setdefault(server, {})[user_id] = device_ids
        found = await self._store.query_keys(requester_id, local)
        answer: dict[str, Any] = {"device_keys": {}, "failures": failures, "master_keys": {},
                                  "self_signing_keys": {}, "user_signing_keys": {}}
        for user_id, entry in found.items():
            answer["device_keys"][user_id] = entry["devices"]
            if "master" in entry:
                answer["master_keys"][user_id] = entry["master"]
            if "self_signing" in entry:
                answer["self_signing_keys"][user_id] = entry["self_signing"]
            if "user_signing" in entry and user_id == requester_id:
                answer["user_signing_keys"][user_id] = entry["user_signing"]
        timeout = _remote_timeout(body)
        for server, result in (await self._ask_servers(remote, self.federation.query_keys, timeout)
                               if remote else {}).items():
            if isinstance(result, Exception):
                failures[server] = _failure(result)
                continue
            asked = remote[server]
            for name in ("device_keys", "master_keys", "self_signing_keys"):
                entries = result.get(name)
                if not isinstance(entries, dict):
                    continue
                for user_id, value in entries.items():
                    if user_id in asked and isinstance(value, dict):
                        answer[name][user_id] = value
        return answer

    async def _ask_servers(self, requests: dict[str, dict], ask, timeout: float) -> dict[str, Any]:
        """``ask(server, request, timeout)`` for every server at once: server -> its
        answer (a dict) or the exception it ended with."""
        async def one(server: str, request: dict) -> tuple[str, Any]:
            try:
                result = await ask(server, request, timeout)
            except Exception as error:
                log.info("asking {server} for keys failed: {error}", server=server, error=str(error))
                return server, error
            if not isinstance(result, dict):
                return server, ValueError("the answer is not a JSON object")
            return server, result
        results = await defer.gatherResults([defer.ensureDeferred(one(server, request))
                                             for server, request in requests.items()], consumeErrors=True)
        return dict(results)

    # -- /keys/claim --------------------------------------------------------------------

    async def claim_keys(self, body: dict) -> dict:
        wanted = field(body, "one_time_keys", dict)
        claims: list[tuple[str, str, str]] = []
        remote: dict[str, dict[str, dict[str, str]]] = {}
        failures: dict[str, dict] = {}
        for user_id, devices in wanted.items():
            if not isinstance(devices, dict) or not all(isinstance(a, str) for a in devices.values()):
                raise invalid_param(f"'one_time_keys.{user_id}' must map device IDs to algorithms")
            server = server_of(user_id)
            if server is None:
                continue
            if server != self._server_name:
                if self.federation is None:
                    failures[server] = dict(REMOTE_FAILURE)
                else:
                    remote.setdefault(server, {})[user_id] = devices
                continue
            claims += [(user_id, device_id, algorithm) for device_id, algorithm in devices.items()]
        claimed = await self._store.claim_keys(claims)
        timeout = _remote_timeout(body)
        for server, result in (await self._ask_servers(remote, self.federation.claim_keys, timeout)
                               if remote else {}).items():
            if isinstance(result, Exception):
                failures[server] = _failure(result)
                continue
            keys = result.get("one_time_keys")
            if not isinstance(keys, dict):
                continue
            for user_id, devices in keys.items():
                if user_id in remote[server] and isinstance(devices, dict):
                    claimed[user_id] = devices
        return {"one_time_keys": claimed, "failures": failures}

    # -- asked by other servers -----------------------------------------------------------

    async def query_local_keys_for_server(self, wanted: dict[str, list[str]]) -> dict:
        """Federation ``user/keys/query``: keys of our users, with the signatures their
        own keys made (never the user-signing key, nor signatures by other users)."""
        local = {u: d for u, d in wanted.items() if self.is_local(u)}
        # No requester: only signatures by the key's own user are visible.
        found = await self._store.query_keys("", local)
        answer: dict[str, Any] = {"device_keys": {}, "master_keys": {}, "self_signing_keys": {}}
        for user_id, entry in found.items():
            answer["device_keys"][user_id] = {d: self._for_federation(k) for d, k in entry["devices"].items()}
            if "master" in entry:
                answer["master_keys"][user_id] = entry["master"]
            if "self_signing" in entry:
                answer["self_signing_keys"][user_id] = entry["self_signing"]
        return answer

    @staticmethod
    def _for_federation(keys: dict) -> dict:
        # Device names stay on this server (as Synapse's default does): they often say
        # where someone is or what they use.
        unsigned = keys.get("unsigned")
        if isinstance(unsigned, dict) and "device_display_name" in unsigned:
            keys = dict(keys)
            keys["unsigned"] = {k: v for k, v in unsigned.items() if k != "device_display_name"}
        return keys

    async def claim_local_keys_for_server(self, wanted: dict[str, dict[str, str]]) -> dict:
        """Federation ``user/keys/claim``: one-time (or fallback) keys of our users."""
        claims = [(user_id, device_id, algorithm) for user_id, devices in wanted.items() if self.is_local(user_id)
                  for device_id, algorithm in devices.items()]
        return {"one_time_keys": await self._store.claim_keys(claims)}

    async def record_remote_change(self, user_id: str, device_ids: list[str | None]) -> None:
        """Another server told us its user's devices or cross-signing keys changed: a
        change in the device_lists stream, so our users who share a room with them see
        the user in /sync ``device_lists.changed`` and query their keys again."""
        await self.load_stream_positions()
        stream_id = await self._store.db.run_interaction("remote_device_list_change", add_device_list_change_txn,
                                                         user_id, device_ids)
        await self.notify_device_list_change(user_id, stream_id)

    # -- /keys/changes ------------------------------------------------------------------

    async def key_changes(self, user_id: str, since: StreamToken, until: StreamToken) -> dict:
        await self.load_stream_positions()
        current = self._notifier.current_token()
        changed, left = await self._store.device_list_updates(
            user_id, since.device_lists, min(until.device_lists, current.device_lists),
            since.events, min(until.events, current.events))
        return {"changed": sorted(changed), "left": sorted(left)}

    # -- /keys/device_signing/upload ----------------------------------------------------

    async def upload_signing_keys(self, user_id: str, body: dict,
                                  require_auth: Callable[[], Awaitable[None]]) -> dict:
        """Store the user's cross-signing keys. ``require_auth`` runs user-interactive
        auth; it is skipped when the user has no master key yet, or when the request
        only repeats the keys already stored (a retried upload)."""
        await self.load_stream_positions()
        uploaded: dict[str, tuple[str, dict]] = {}
        for name, usage in _USAGE_FIELDS:
            if body.get(name) is not None:
                uploaded[usage] = _cross_signing_key(body[name], user_id, usage, name)
        existing = await self._store.get_cross_signing_keys(user_id)
        repeats = all(usage in existing and existing[usage][1] == key for usage, (_, key) in uploaded.items())
        if "master" in existing and not repeats:
            await require_auth()
        if not uploaded or repeats:
            return {}

        master = uploaded.get("master") or existing.get("master")
        if master is None:
            raise MatrixError(400, "M_MISSING_PARAM", "No master key available")
        master_public, master_key = master
        master_key_id = f"ed25519:{master_public}"
        for usage in ("self_signing", "user_signing"):
            if usage in uploaded and not _verify(uploaded[usage][1], user_id, master_key_id,
                                                 _public_value(master_key, master_public)):
                raise MatrixError(400, "M_INVALID_SIGNATURE", f"The {usage} key is not signed by the master key")
        for public_key, _ in uploaded.values():
            if await self._store.device_exists(user_id, public_key):
                raise forbidden("Key ID in use: the public key is one of your device IDs")
        authenticated = "master" in existing
        stream_id = await self._store.set_cross_signing_keys(user_id, uploaded, self._clock.time_ms(),
                                                             only_if_no_master=not authenticated)
        if stream_id is None:
            # A master key arrived since we looked: this upload replaces it, so it needs auth.
            await require_auth()
            stream_id = await self._store.set_cross_signing_keys(user_id, uploaded, self._clock.time_ms())
        await self.notify_device_list_change(user_id, stream_id)
        return {}

    # -- /keys/signatures/upload --------------------------------------------------------

    async def upload_signatures(self, user_id: str, body: dict) -> dict:
        await self.load_stream_positions()
        own = await self._store.get_cross_signing_keys(user_id)
        failures: dict[str, dict[str, dict]] = {}
        rows: list[SignatureRow] = []
        changes: list[tuple[str, str | None]] = []
        for target_user, objects in body.items():
            if not isinstance(objects, dict):
                raise invalid_param(f"'{target_user}' must map key IDs to signed objects")
            for key_id, signed in objects.items():
                try:
                    if not isinstance(signed, dict):
                        raise _Refused("M_INVALID_PARAM", "The signed object must be an object")
                    if not self.is_local(target_user):
                        raise _Refused("M_UNKNOWN", "Keys of other servers' users cannot be signed yet")
                    if target_user == user_id:
                        rows += await self._own_signatures(user_id, key_id, signed, own)
                        changes.append((user_id, None))
                    else:
                        rows += await self._user_signature(user_id, target_user, key_id, signed, own)
                        changes.append((target_user, user_id))
                except _Refused as refusal:
                    failures.setdefault(target_user, {})[key_id] = {"errcode": refusal.errcode,
                                                                   "error": refusal.error}
        if rows:
            stream_ids = await self._store.store_signatures(rows, changes)
            for (changed_user, notify_only), stream_id in stream_ids.items():
                await self.notify_device_list_change(changed_user, stream_id, notify_only)
        return {"failures": failures}

    async def _own_signatures(self, user_id: str, key_id: str, signed: dict,
                              own: dict[str, tuple[str, dict]]) -> list[SignatureRow]:
        """Signatures of the user's own master key (by a device) or device (by the
        self-signing key)."""
        signatures = signed.get("signatures")
        by_user = signatures.get(user_id) if isinstance(signatures, dict) else None
        if not isinstance(by_user, dict):
            raise _Refused("M_INVALID_SIGNATURE", "No signature by the user")
        master = own.get("master")
        if master is not None and key_id == master[0]:
            if _without_signatures(signed) != _without_signatures(master[1]):
                raise _Refused("M_INVALID_PARAM", "The signed object does not match the stored master key")
            devices = await self._store.get_device_keys(user_id)
            rows = []
            for signer_key_id, signature in by_user.items():
                algorithm, _, device_id = signer_key_id.partition(":")
                if algorithm != "ed25519" or device_id not in devices or not isinstance(signature, str):
                    continue
                device_key = devices[device_id].get("keys", {}).get(signer_key_id)
                if not _verify(signed, user_id, signer_key_id, device_key):
                    raise _Refused("M_INVALID_SIGNATURE", f"Invalid signature by {signer_key_id}")
                rows.append(SignatureRow(user_id, signer_key_id, user_id, key_id, signature))
            if not rows:
                raise _Refused("M_INVALID_SIGNATURE", "No signature by one of the user's devices")
            return rows
        device = (await self._store.get_device_keys(user_id, [key_id])).get(key_id)
        if device is None:
            raise _Refused("M_NOT_FOUND", "Unknown key")
        self_signing = own.get("self_signing")
        if self_signing is None:
            raise _Refused("M_MISSING_PARAM", "No self-signing key uploaded")
        if _without_signatures(signed) != _without_signatures(device):
            raise _Refused("M_INVALID_PARAM", "The signed object does not match the stored device keys")
        signer_key_id = f"ed25519:{self_signing[0]}"
        signature = by_user.get(signer_key_id)
        if not isinstance(signature, str) or not _verify(signed, user_id, signer_key_id,
                                                         _public_value(self_signing[1], self_signing[0])):
            raise _Refused("M_INVALID_SIGNATURE", "Missing or invalid signature by the self-signing key")
        return [SignatureRow(user_id, signer_key_id, user_id, key_id, signature)]

    async def _user_signature(self, user_id: str, target_user: str, key_id: str, signed: dict,
                              own: dict[str, tuple[str, dict]]) -> list[SignatureRow]:
        """A signature of another user's master key by the user's user-signing key."""
        user_signing = own.get("user_signing")
        if user_signing is None:
            raise _Refused("M_MISSING_PARAM", "No user-signing key uploaded")
        master = (await self._store.get_cross_signing_keys(target_user)).get("master")
        if master is None or key_id != master[0]:
            raise _Refused("M_NOT_FOUND", "Unknown key: only a user's master key can be signed")
        if _without_signatures(signed) != _without_signatures(master[1]):
            raise _Refused("M_INVALID_PARAM", "The signed object does not match the stored master key")
        signer_key_id = f"ed25519:{user_signing[0]}"
        signatures = signed.get("signatures")
        by_user = signatures.get(user_id) if isinstance(signatures, dict) else None
        signature = by_user.get(signer_key_id) if isinstance(by_user, dict) else None
        if not isinstance(signature, str) or not _verify(signed, user_id, signer_key_id,
                                                         _public_value(user_signing[1], user_signing[0])):
            raise _Refused("M_INVALID_SIGNATURE", "Missing or invalid signature by the user-signing key")
        return [SignatureRow(user_id, signer_key_id, target_user, key_id, signature)]

    # -- devices ------------------------------------------------------------------------

    async def delete_device_keys(self, user_id: str, device_ids: list[str]) -> None:
        """The devices are gone: forget their keys and pending to-device messages, and
        tell those who share a room with the user. Call it when devices are deleted
        (delete_devices, logout, logout/all, password change with logout_devices)."""
        stream_id = await self._store.delete_device_keys(user_id, device_ids)
        if stream_id is not None:
            await self.notify_device_list_change(user_id, stream_id)

    async def notify_device_list_change(self, user_id: str, stream_id: int,
                                        notify_only: str | None = None) -> None:
        """Wake the /sync of whoever should hear of a device-list change, and tell the
        servers that share a room with one of our users."""
        if notify_only is not None:
            self._notifier.on_user_stream("device_lists", stream_id, notify_only)
            return
        self._notifier.on_user_stream("device_lists", stream_id, user_id)
        for room_id in await self._rooms.get_rooms_for_user(user_id):
            self._notifier.on_room_stream("device_lists", stream_id, room_id)
        if self.federation is not None and self.is_local(user_id):
            self.federation.local_device_list_changed(user_id, stream_id)

    # -- /sync --------------------------------------------------------------------------

    async def sync_section(self, user_id: str, device_id: str, since: StreamToken | None,
                           token: StreamToken) -> tuple[dict, bool]:
        await self.load_stream_positions()
        counts, unused_fallbacks = await self._store.key_counts(user_id, device_id)
        counts.setdefault(DEFAULT_ONE_TIME_KEY_ALGORITHM, 0)
        body: dict[str, Any] = {"device_one_time_keys_count": counts,
                                "device_unused_fallback_key_types": unused_fallbacks,
                                "device_lists": {"changed": [], "left": []}}
        if since is None:
            return body, False
        if since.device_lists > token.device_lists:
            # ``token`` was taken before the positions were loaded (the first /sync after a
            # restart): nothing is read from it; waking this user's long-poll makes its
            # second pass run at once, with a token that does not go backwards.
            self._notifier.on_user_stream("device_lists", self._notifier.current_token().device_lists, user_id)
        changed, left = await self._store.device_list_updates(user_id, since.device_lists, token.device_lists,
                                                               since.events, token.events)
        body["device_lists"] = {"changed": sorted(changed), "left": sorted(left)}
        return body, bool(changed or left)
