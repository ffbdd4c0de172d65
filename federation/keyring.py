"""The keyring: other servers' signing keys, fetched, checked and remembered, and the
signature checks that need them (signed JSON, received events).

A key is looked up in memory, then in the database, and only then fetched: first from
the server itself (``GET /_matrix/key/v2/server``), then through the trusted notaries
(``POST /_matrix/key/v2/query``). Each response must be signed by the server it
describes and, from a notary, by the notary as well. Fetches for one server are shared
while in flight, and a server whose fetch came back empty-handed is not asked again
for a minute.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Any, Iterable

from signedjson.key import get_verify_key
from signedjson.sign import SignatureVerifyException, verify_signed_json
from twisted.internet import defer
from twisted.logger import Logger

from homeserver.events.event import Event
from homeserver.events.received import is_valid_user_id, server_name_of
from homeserver.events.redaction import prune_event_dict
from homeserver.events.signing import key_id as signing_key_id
from homeserver.events.signing import verify_key_from_base64
from storage.stores.server_keys import ServerKey

log = Logger(namespace="drocsid.keyring")

# The specification: use the lesser of valid_until_ts and 7 days into the future.
MAX_KEY_VALIDITY_MS = 7 * 24 * 60 * 60 * 1000
RETRY_AFTER_FAILURE_MS = 60 * 1000
FETCH_TIMEOUT_S = 30
KEY_SERVER_PATH = "/_matrix/key/v2/server"
NOTARY_QUERY_PATH = "/_matrix/key/v2/query"


class KeyLookupError(Exception):
    def __init__(self, server_name: str, key_id: str, reason: str):
        super().__init__(f"no valid key {key_id} for {server_name}: {reason}")
        self.server_name = server_name
        self.key_id = key_id
        self.reason = reason


class SignatureError(Exception):
    """A signature is missing, made with a key we cannot get, or does not verify."""


class KeyResponseError(ValueError):
    """A key response that is malformed or not properly signed."""


@dataclass(frozen=True)
class _Want:
    """What a fetch is for: these key IDs (none: any key) valid at this time."""
    key_ids: tuple[str, ...]
    valid_at_ts: int


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _decode_key(server_name: str, key_id: str, encoded: Any):
    if not isinstance(encoded, str):
        raise KeyResponseError(f"key {key_id} of {server_name} is not a string")
    try:
        return verify_key_from_base64(key_id, encoded)
    except (binascii.Error, ValueError, TypeError) as error:
        raise KeyResponseError(f"key {key_id} of {server_name} does not decode: {error}") from None


def _published_keys(server_name: str, response: dict, field: str) -> dict[str, tuple[str, Any, dict]]:
    """Key ID -> (base64, VerifyKey, entry) for the ed25519 keys under ``field``; keys
    of other algorithms are skipped, as we cannot use them."""
    entries = response.get(field, {})
    if not isinstance(entries, dict):
        raise KeyResponseError(f"'{field}' is not an object")
    keys = {}
    for key_id, entry in entries.items():
        if not isinstance(entry, dict):
            raise KeyResponseError(f"'{field}' entry {key_id} is not an object")
        verify_key = _decode_key(server_name, key_id, entry.get("key"))
        if verify_key is not None:
            keys[key_id] = (entry["key"], verify_key, entry)
    return keys


def _check_self_signed(server_name: str, response: dict, verify_keys: dict[str, tuple[str, Any, dict]]) -> None:
    signatures = response.get("signatures")
    own = signatures.get(server_name) if isinstance(signatures, dict) else None
    checked = 0
    for key_id in own if isinstance(own, dict) else ():
        if key_id not in verify_keys:
            continue  # e.g. a signature by an old key as well
        try:
            verify_signed_json(response, server_name, verify_keys[key_id][1])
        except SignatureVerifyException:
            raise KeyResponseError(f"signature {key_id} of {server_name} on its keys does not verify") from None
        checked += 1
    if not checked:
        raise KeyResponseError(f"keys of {server_name} are not signed by any of its verify_keys")


def parse_key_response(server_name: str, response: Any, fetched_ts: int) -> list[ServerKey]:
    """The keys a server's key response publishes, once it is checked to describe
    ``server_name`` and to be signed by it (KeyResponseError otherwise)."""
    if not isinstance(response, dict):
        raise KeyResponseError("key response is not a JSON object")
    if response.get("server_name") != server_name:
        raise KeyResponseError(f"key response is for {response.get('server_name')!r}, not {server_name}")
    valid_until_ts = response.get("valid_until_ts")
    if not _is_int(valid_until_ts):
        raise KeyResponseError("key response has no integer valid_until_ts")
    current = _published_keys(server_name, response, "verify_keys")
    old = _published_keys(server_name, response, "old_verify_keys")
    _check_self_signed(server_name, response, current)
    valid_until_ts = min(valid_until_ts, fetched_ts + MAX_KEY_VALIDITY_MS)
    keys = [ServerKey(server_name, key_id, encoded, valid_until_ts, None, fetched_ts)
            for key_id, (encoded, _, _) in current.items()]
    for key_id, (encoded, _, entry) in old.items():
        if key_id in current:
            continue
        expired_ts = entry.get("expired_ts")
        if not _is_int(expired_ts):
            raise KeyResponseError(f"old key {key_id} of {server_name} has no integer expired_ts")
        keys.append(ServerKey(server_name, key_id, encoded, None, expired_ts, fetched_ts))
    return keys


def required_signers(event: Event) -> list[str]:
    """The servers whose signatures a received event needs (room versions 3 and later):
    the sender's, and for a restricted join the authorising user's."""
    if not is_valid_user_id(event.sender):
        raise SignatureError(f"event {event.event_id} has an invalid sender")
    servers = [server_name_of(event.sender)]
    if event.type == "m.room.member" and event.membership == "join":
        via = event.content.get("join_authorised_via_users_server")
        if via is not None:
            if not is_valid_user_id(via):
                raise SignatureError(f"event {event.event_id}: join_authorised_via_users_server is not a user ID")
            servers.append(server_name_of(via))
    return list(dict.fromkeys(servers))


class Keyring:
    def __init__(self, store, client, clock, server_name: str, signing_key, trusted_key_servers: Iterable[str]):
        self.store = store
        self.client = client
        self.clock = clock
        self.server_name = server_name
        self.trusted_key_servers = list(trusted_key_servers)
        self._own_key_id = signing_key_id(signing_key)
        self._own_verify_key = get_verify_key(signing_key)
        self._known: dict[tuple[str, str], tuple[ServerKey, Any]] = {}
        # (server, via_notaries) -> waiters for the fetch in flight. Notary keys are
        # fetched directly in their own slot, so fetches never wait on each other in a cycle.
        self._in_flight: dict[tuple[str, bool], list[defer.Deferred]] = {}
        self._failed: dict[tuple[str, bool], tuple[int, str]] = {}

    # -- looking keys up

    async def get_verify_key(self, server_name: str, key_id: str, valid_at_ts: int):
        """The VerifyKey ``key_id`` of ``server_name``, valid at ``valid_at_ts`` (KeyLookupError)."""
        if server_name == self.server_name:
            if key_id == self._own_key_id:
                return self._own_verify_key
            raise KeyLookupError(server_name, key_id, "not our signing key")
        return await self._lookup(server_name, key_id, valid_at_ts, via_notaries=True)

    async def _lookup(self, server_name: str, key_id: str, valid_at_ts: int, via_notaries: bool):
        if not key_id.startswith("ed25519:"):
            raise KeyLookupError(server_name, key_id, "only ed25519 keys are supported")
        verify_key = await self._known_key(server_name, key_id, valid_at_ts)
        if verify_key is not None:
            return verify_key
        want = _Want((key_id,), valid_at_ts)
        # A fetch we joined may have been for other keys: then try once with our own.
        for _ in range(2):
            joined = await self._fetch_once(server_name, want, via_notaries)
            verify_key = await self._known_key(server_name, key_id, valid_at_ts)
            if verify_key is not None:
                return verify_key
            if not joined:
                break
        raise KeyLookupError(server_name, key_id, self._why_missing(server_name, key_id, via_notaries))

    async def _known_key(self, server_name: str, key_id: str, valid_at_ts: int):
        known = self._known.get((server_name, key_id))
        if known is None or not known[0].valid_at(valid_at_ts):
            stored = (await self.store.get_keys(server_name, [key_id])).get(key_id)
            if stored is not None:
                known = (stored, verify_key_from_base64(key_id, stored.verify_key))
                self._known[(server_name, key_id)] = known
        if known is not None and known[0].valid_at(valid_at_ts):
            return known[1]
        return None

    def _why_missing(self, server_name: str, key_id: str, via_notaries: bool) -> str:
        failure = self._failed.get((server_name, via_notaries))
        fetch_note = f" (last fetch: {failure[1]})" if failure else ""
        known = self._known.get((server_name, key_id))
        if known is None:
            return f"key not found{fetch_note}"
        if known[0].expired_ts is not None:
            return f"key expired at {known[0].expired_ts}{fetch_note}"
        return f"key is valid only until {known[0].valid_until_ts}{fetch_note}"

    async def _satisfied(self, server_name: str, want: _Want) -> bool:
        if not want.key_ids:
            return any(key.valid_at(want.valid_at_ts) for key in await self.store.get_all_keys(server_name))
        stored = await self.store.get_keys(server_name, want.key_ids)
        return all(key_id in stored and stored[key_id].valid_at(want.valid_at_ts) for key_id in want.key_ids)

    # -- fetching

    async def _fetch_once(self, server_name: str, want: _Want, via_notaries: bool) -> bool:
        """Fetch keys of ``server_name`` unless a fetch is in flight (then wait for it:
        returns True) or one failed less than a minute ago (then do nothing)."""
        slot = (server_name, via_notaries)
        waiters = self._in_flight.get(slot)
        if waiters is not None:
            waiter: defer.Deferred = defer.Deferred()
            waiters.append(waiter)
            await waiter
            return True
        failure = self._failed.get(slot)
        if failure is not None and self.clock.time_ms() - failure[0] < RETRY_AFTER_FAILURE_MS:
            return False
        self._in_flight[slot] = waiters = []
        try:
            try:
                reason = await self._fetch(server_name, want, via_notaries)
            except Exception as error:
                log.failure("fetching keys of {server} failed", server=server_name)
                reason = f"fetch failed: {error}"
            if reason is None:
                self._failed.pop(slot, None)
            else:
                # Recorded before the waiters wake, so none of them starts a fetch again.
                self._failed[slot] = (self.clock.time_ms(), reason)
        finally:
            del self._in_flight[slot]
            for waiter in waiters:
                waiter.callback(None)
        return False

    async def _fetch(self, server_name: str, want: _Want, via_notaries: bool) -> str | None:
        """None once ``want`` is met, else why not."""
        reasons = []
        try:
            await self._fetch_direct(server_name)
        except Exception as error:
            reasons.append(f"{server_name}: {error}")
        if await self._satisfied(server_name, want):
            return None
        if not reasons:
            reasons.append(f"{server_name} does not publish a key valid at {want.valid_at_ts}")
        if via_notaries:
            for notary in self.trusted_key_servers:
                if notary in (server_name, self.server_name):
                    continue
                try:
                    await self._fetch_from_notary(notary, server_name, want)
                except Exception as error:
                    reasons.append(f"notary {notary}: {error}")
                    continue
                if await self._satisfied(server_name, want):
                    return None
                reasons.append(f"notary {notary} has no key valid at {want.valid_at_ts}")
        log.info("keys of {server} not found: {reasons}", server=server_name, reasons="; ".join(reasons))
        return "; ".join(reasons)

    async def _fetch_direct(self, server_name: str) -> None:
        fetched_ts = self.clock.time_ms()
        response = await self.client.get_json(server_name, KEY_SERVER_PATH, timeout=FETCH_TIMEOUT_S)
        await self._remember(parse_key_response(server_name, response, fetched_ts), response)

    async def _fetch_from_notary(self, notary: str, server_name: str, want: _Want) -> None:
        fetched_ts = self.clock.time_ms()
        criteria = {key_id: {"minimum_valid_until_ts": want.valid_at_ts} for key_id in want.key_ids}
        response = await self.client.post_json(notary, NOTARY_QUERY_PATH, {"server_keys": {server_name: criteria}},
                                               timeout=FETCH_TIMEOUT_S)
        entries = response.get("server_keys") if isinstance(response, dict) else None
        if not isinstance(entries, list):
            raise KeyResponseError("query response has no server_keys list")
        problems = []
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("server_name") != server_name:
                continue  # a notary may answer more than was asked
            try:
                keys = parse_key_response(server_name, entry, fetched_ts)
                await self._check_notary_signature(notary, entry, fetched_ts)
            except KeyResponseError as error:
                problems.append(str(error))
                continue
            await self._remember(keys, entry)
        if problems:
            raise KeyResponseError("; ".join(problems))

    async def _check_notary_signature(self, notary: str, entry: dict, now_ms: int) -> None:
        signatures = entry.get("signatures")
        by_notary = signatures.get(notary) if isinstance(signatures, dict) else None
        reasons = []
        for key_id in sorted(by_notary) if isinstance(by_notary, dict) else ():
            if not key_id.startswith("ed25519:"):
                continue
            try:
                verify_key = await self._lookup(notary, key_id, now_ms, via_notaries=False)
                verify_signed_json(entry, notary, verify_key)
                return
            except KeyLookupError as error:
                reasons.append(str(error))
            except SignatureVerifyException:
                reasons.append(f"signature {key_id} does not verify")
        raise KeyResponseError(f"response is not signed by notary {notary}"
                               + (f" ({'; '.join(reasons)})" if reasons else ""))

    async def _remember(self, keys: list[ServerKey], response: dict) -> None:
        await self.store.store_keys(keys, response)
        # The store may keep what it had (a stale response); read back from it next time.
        for key in keys:
            self._known.pop((key.server_name, key.key_id), None)

    # -- serving as a notary

    async def key_responses(self, server_name: str, key_ids: Iterable[str], minimum_valid_until_ts: int) -> list[dict]:
        """The stored key responses of ``server_name``, fetched from it first when what is
        stored does not cover ``key_ids`` (none: any key) at ``minimum_valid_until_ts``."""
        want = _Want(tuple(key_ids), minimum_valid_until_ts)
        if not await self._satisfied(server_name, want):
            await self._fetch_once(server_name, want, via_notaries=False)
        return await self.store.get_key_responses(server_name)

    # -- checking signatures

    async def verify_json(self, server_name: str, signed_obj: Any, valid_at_ts: int) -> None:
        """Raise SignatureError unless ``server_name`` signed ``signed_obj`` with an ed25519
        key valid at ``valid_at_ts``."""
        signatures = signed_obj.get("signatures") if isinstance(signed_obj, dict) else None
        by_server = signatures.get(server_name) if isinstance(signatures, dict) else None
        if not isinstance(by_server, dict) or not by_server:
            raise SignatureError(f"not signed by {server_name}")
        reasons = []
        for key_id in sorted(by_server):
            if not key_id.startswith("ed25519:"):
                reasons.append(f"{key_id}: unsupported algorithm")
                continue
            try:
                verify_key = await self.get_verify_key(server_name, key_id, valid_at_ts)
            except KeyLookupError as error:
                reasons.append(str(error))
                continue
            try:
                verify_signed_json(signed_obj, server_name, verify_key)
                return
            except SignatureVerifyException:
                reasons.append(f"signature {key_id} of {server_name} does not verify")
        raise SignatureError("; ".join(reasons))

    async def verify_event(self, event: Event) -> None:
        """The signature checks on a received PDU: its redacted form signed by each server
        ``required_signers`` names, with keys valid at its origin_server_ts."""
        valid_at_ts = event.pdu.get("origin_server_ts")
        if not _is_int(valid_at_ts):
            raise SignatureError(f"event {event.event_id} has no integer origin_server_ts")
        redacted = prune_event_dict(event.room_version, event.pdu)
        for server_name in required_signers(event):
            try:
                await self.verify_json(server_name, redacted, valid_at_ts)
            except SignatureError as error:
                raise SignatureError(f"event {event.event_id}: {error}") from None
