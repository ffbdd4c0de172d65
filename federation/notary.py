"""Serving other servers' keys as a notary: ``GET /_matrix/key/v2/query/{server_name}``
and ``POST /_matrix/key/v2/query``.

Each answer is a key response exactly as its server signed it, with our signature
added. Keys we do not have (or that do not last until ``minimum_valid_until_ts``) are
fetched from the server first; a server we cannot reach gives nothing.
"""

from __future__ import annotations

from typing import Any

from signedjson.sign import sign_json
from twisted.internet import defer

from federation.key_server import server_keys_response
from homeserver.events.received import is_valid_server_name
from homeserver.http.errors import bad_json
from homeserver.http.request import parse_json_object, query_int
from homeserver.http.router import Router

# One query may not make us fetch from more servers than this.
MAX_SERVERS_PER_QUERY = 100


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_query(body: dict[str, Any], now_ms: int) -> dict[str, tuple[list[str], int]]:
    """Server name -> (key IDs, minimum_valid_until_ts) from a POST body (M_BAD_JSON).
    A server's minimum is the latest any of its keys asks for (now if none does)."""
    servers = body.get("server_keys")
    if not isinstance(servers, dict):
        raise bad_json("'server_keys' must be an object")
    if len(servers) > MAX_SERVERS_PER_QUERY:
        raise bad_json(f"at most {MAX_SERVERS_PER_QUERY} servers may be queried at once")
    query = {}
    for server_name, criteria in servers.items():
        if not isinstance(criteria, dict):
            raise bad_json(f"'server_keys.{server_name}' must be an object")
        minimums = []
        for key_id, criterion in criteria.items():
            if not isinstance(criterion, dict):
                raise bad_json(f"criteria for {server_name} {key_id} must be an object")
            minimum = criterion.get("minimum_valid_until_ts")
            if minimum is not None and not _is_int(minimum):
                raise bad_json("'minimum_valid_until_ts' must be an integer")
            if minimum is not None:
                minimums.append(minimum)
        query[server_name] = (list(criteria), max(minimums, default=now_ms))
    return query


async def signed_key_responses(hs, server_name: str, key_ids: list[str], minimum_valid_until_ts: int) -> list[dict]:
    """The key responses of ``server_name`` we can vouch for, each countersigned by us."""
    our_name = hs.config.server_name
    if server_name == our_name:
        responses = [server_keys_response(our_name, hs.signing_key, hs.clock.time_ms())]
    elif not is_valid_server_name(server_name):
        return []
    else:
        responses = await hs.keyring.key_responses(server_name, key_ids, minimum_valid_until_ts)
    return [sign_json(response, our_name, hs.signing_key) for response in responses]


def register_routes(router: Router, hs) -> None:
    async def query_server(request, server_name: str):
        minimum = query_int(request, "minimum_valid_until_ts", default=hs.clock.time_ms())
        return 200, {"server_keys": await signed_key_responses(hs, server_name, [], minimum)}

    async def query_servers(request):
        query = parse_query(parse_json_object(request), hs.clock.time_ms())
        # Servers are fetched side by side: one slow server must not hold up the others.
        results = await defer.gatherResults(
            [defer.ensureDeferred(signed_key_responses(hs, server_name, key_ids, minimum))
             for server_name, (key_ids, minimum) in query.items()], consumeErrors=True)
        return 200, {"server_keys": [response for responses in results for response in responses]}

    router.add("GET", "/_matrix/key/v2/query/{server_name}", query_server)
    router.add("POST", "/_matrix/key/v2/query", query_servers)
