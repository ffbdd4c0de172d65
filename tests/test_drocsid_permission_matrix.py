"""The permission matrix: for every permission bit, a member with and without it — through
a role, a role overwrite allowing or denying, a member overwrite — gets success or 403 on
the /api/v1 endpoints that check it, and sees or does not see the matching gateway events
(a channel's messages reach the member's socket exactly when they hold VIEW_CHANNEL).

Each bit has a probe (one request made as the member, answering allowed or refused) and
is tried in every way of holding or lacking it. Role and overwrite state is written the
way any Matrix client would write it (PUT state as the owner), so the matrix also shows
that /api/v1 reads permissions from room state alone.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Awaitable, Callable

from twisted.trial import unittest

from homeserver.drocsid import permissions as perms
from homeserver.drocsid.permissions import P
from tests.support.api import API, V3, ApiHelpers, q
from tests.support.gateway import GatewayClient
from tests.support.server import HomeserverTestCase, inline

ROLE = "probe-role"
_counter = itertools.count()


@dataclass
class World:
    """One server: the owner, the member under test, a victim to moderate, #general."""
    test: "MatrixTests"
    owner: str
    owner_token: str
    member: str
    token: str
    victim: str
    victim_token: str
    space: str
    channel: str
    message_id: str
    fence: str        # a channel the member always sees: its messages order the gateway checks

    async def as_member(self, method, path, body=None):
        return await self.test.request(method, path, body, token=self.token)


# A probe: (world) -> (status, body) of one request made as the member; allowed means 2xx.
ProbeFn = Callable[[World], Awaitable[tuple[int, dict]]]


@dataclass
class Probe:
    bit: P
    what: str
    run: ProbeFn
    channel_scoped: bool = True  # also held or lost through channel overwrites
    # The bit does not refuse: it changes the answer (allowed() reads the body instead).
    allowed: Callable[[int, dict], bool] | None = None
    # The bit also decides whether the channel's messages reach the member's gateway socket.
    gateway: bool = False


def _n() -> int:
    return next(_counter)


async def _send(w: World):
    return await w.as_member("POST", f"{API}/channels/{q(w.channel)}/messages", {"content": f"hi {_n()}"})


async def _read(w: World):
    return await w.as_member("GET", f"{API}/channels/{q(w.channel)}/messages?limit=5")


async def _view(w: World):
    return await w.as_member("GET", f"{API}/channels/{q(w.channel)}")


async def _react(w: World):
    return await w.as_member("PUT", f"{API}/channels/{q(w.channel)}/messages/{q(w.message_id)}/reactions/"
                             f"{q('👍' + str(_n()))}")


async def _pin(w: World):
    status, body = await w.as_member("PUT", f"{API}/channels/{q(w.channel)}/pins/{q(w.message_id)}")
    if status == 200:
        await w.test.ok("DELETE", f"{API}/channels/{q(w.channel)}/pins/{q(w.message_id)}", token=w.owner_token)
    return status, body


async def _edit_channel(w: World):
    return await w.as_member("PATCH", f"{API}/channels/{q(w.channel)}", {"topic": f"topic {_n()}"})


async def _edit_server(w: World):
    return await w.as_member("PATCH", f"{API}/servers/{q(w.space)}", {"description": f"about {_n()}"})


async def _mention_everyone(w: World):
    return await w.as_member("POST", f"{API}/channels/{q(w.channel)}/messages", {"content": f"@everyone {_n()}"})


async def _create_invite(w: World):
    return await w.as_member("POST", f"{API}/servers/{q(w.space)}/invites", {"max_uses": 1})


async def _readmit_victim(w: World):
    await w.test.ok("POST", f"{V3}/rooms/{q(w.space)}/invite", {"user_id": w.victim}, token=w.owner_token)
    await w.test.ok("POST", f"{V3}/join/{q(w.space)}", {}, token=w.victim_token)


async def _kick(w: World):
    status, body = await w.as_member("POST", f"{API}/servers/{q(w.space)}/kick/{q(w.victim)}", {})
    if status == 200:
        await _readmit_victim(w)
    return status, body


async def _ban(w: World):
    status, body = await w.as_member("PUT", f"{API}/servers/{q(w.space)}/bans/{q(w.victim)}", {"reason": "probe"})
    if status == 200:
        await w.test.ok("DELETE", f"{API}/servers/{q(w.space)}/bans/{q(w.victim)}", token=w.owner_token)
        await _readmit_victim(w)
    return status, body


async def _audit_log(w: World):
    return await w.as_member("GET", f"{API}/servers/{q(w.space)}/audit-log?limit=5")


async def _create_role(w: World):
    return await w.as_member("POST", f"{API}/servers/{q(w.space)}/roles", {"name": f"r{_n()}", "permissions": "0"})


async def _create_webhook(w: World):
    return await w.as_member("POST", f"{API}/channels/{q(w.channel)}/webhooks", {"name": f"hook {_n()}"})


async def _attach(w: World):
    return await w.test.request("POST", f"{API}/channels/{q(w.channel)}/attachments?filename=probe.txt",
                                token=w.token, raw=b"probe", headers={"Content-Type": "text/plain"})


async def _own_nickname(w: World):
    return await w.as_member("PATCH", f"{API}/servers/{q(w.space)}/members/@me", {"nickname": f"me {_n()}"})


async def _others_nickname(w: World):
    return await w.as_member("PATCH", f"{API}/servers/{q(w.space)}/members/{q(w.victim)}",
                             {"nickname": f"you {_n()}"})


PROBES = [
    Probe(P.VIEW_CHANNEL, "GET /channels/{id}", _view, gateway=True),
    Probe(P.SEND_MESSAGES, "POST /channels/{id}/messages", _send),
    Probe(P.READ_MESSAGE_HISTORY, "GET /channels/{id}/messages", _read),
    Probe(P.ADD_REACTIONS, "PUT /channels/{id}/messages/{mid}/reactions/{emoji}", _react),
    Probe(P.MANAGE_MESSAGES, "PUT /channels/{id}/pins/{mid}", _pin),
    Probe(P.MANAGE_CHANNELS, "PATCH /channels/{id}", _edit_channel),
    Probe(P.MANAGE_SERVER, "PATCH /servers/{id}", _edit_server, channel_scoped=False),
    Probe(P.ADMINISTRATOR, "PATCH /servers/{id} (holding ADMINISTRATOR alone)", _edit_server, channel_scoped=False),
    Probe(P.CREATE_INSTANT_INVITE, "POST /servers/{id}/invites", _create_invite, channel_scoped=False),
    Probe(P.KICK_MEMBERS, "POST /servers/{id}/kick/{user}", _kick, channel_scoped=False),
    Probe(P.BAN_MEMBERS, "PUT /servers/{id}/bans/{user}", _ban, channel_scoped=False),
    Probe(P.VIEW_AUDIT_LOG, "GET /servers/{id}/audit-log", _audit_log, channel_scoped=False),
    Probe(P.MANAGE_ROLES, "POST /servers/{id}/roles", _create_role, channel_scoped=False),
    Probe(P.MANAGE_WEBHOOKS, "POST /channels/{id}/webhooks", _create_webhook),
    Probe(P.ATTACH_FILES, "POST /channels/{id}/attachments", _attach),
    Probe(P.CHANGE_NICKNAME, "PATCH /servers/{id}/members/@me", _own_nickname, channel_scoped=False),
    Probe(P.MANAGE_NICKNAMES, "PATCH /servers/{id}/members/{user}", _others_nickname, channel_scoped=False),
    Probe(P.MENTION_EVERYONE, "POST /channels/{id}/messages with @everyone", _mention_everyone,
          allowed=lambda status, body: status == 200 and body.get("mention_everyone") is True),
]

# Bits no endpoint of this issue checks, and why; a new bit must be given a probe or a reason.
UNGATED = {
    P.EMBED_LINKS: "no link previews are generated yet",
    P.USE_EXTERNAL_EMOJIS: "no custom emojis yet",
    P.CONNECT: "voice channels are issue 9",
    P.SPEAK: "voice channels are issue 9",
    P.MUTE_MEMBERS: "voice channels are issue 9",
    P.DEAFEN_MEMBERS: "voice channels are issue 9",
    P.MOVE_MEMBERS: "voice channels are issue 9",
    P.STREAM: "voice channels are issue 9 (screen share)",
    P.MANAGE_EXPRESSIONS: "no custom emojis or stickers yet",
    P.MANAGE_THREADS: "threads cannot be archived or locked yet",
    P.SEND_MESSAGES_IN_THREADS: "thread replies need SEND_MESSAGES, as in the original",
    P.MODERATE_MEMBERS: "no timeouts yet",
    P.USE_SOUNDBOARD: "no soundboard yet (issue 9)",
    P.MANAGE_SOUNDBOARD: "no soundboard yet (issue 9)",
}

# Ways of holding or lacking the bit: (name, channel overwrites involved, member holds it).
MODES = [
    ("@everyone lacks it, no role", False, False),
    ("a role grants it", False, True),
    ("a role grants it, a role overwrite denies it", True, False),
    ("@everyone lacks it, a role overwrite allows it", True, True),
    ("@everyone lacks it, a member overwrite allows it", True, True),
    ("a role grants it, a member overwrite denies it", True, False),
]

# What @everyone holds in the matrix: enough to use a channel, never the bit under test.
BASE = int(P.VIEW_CHANNEL | P.SEND_MESSAGES | P.READ_MESSAGE_HISTORY)


class MatrixTests(ApiHelpers):
    async def world(self) -> World:
        owner, owner_token = await self.user("owner")
        member, token = await self.user("member")
        victim, victim_token = await self.user("victim")
        server = await self.ok("POST", f"{API}/servers", {"name": "Matrix"}, token=owner_token)
        space, channel = server["id"], server["channels"][0]["id"]
        for user_id, user_token in ((member, token), (victim, victim_token)):
            await self.ok("POST", f"{V3}/rooms/{q(space)}/invite", {"user_id": user_id}, token=owner_token)
            await self.ok("POST", f"{V3}/join/{q(space)}", {}, token=user_token)
            await self.ok("POST", f"{API}/channels/{q(channel)}/join", {}, token=user_token)
        first = await self.ok("POST", f"{API}/channels/{q(channel)}/messages", {"content": "first"},
                              token=owner_token)
        fence = await self.ok("POST", f"{API}/servers/{q(space)}/channels", {"name": "fence"}, token=owner_token)
        await self.ok("POST", f"{API}/channels/{q(fence['id'])}/join", {}, token=token)
        # The member sees the fence whatever @everyone may do.
        allow_view = {"type": "member", "allow": str(int(P.VIEW_CHANNEL)), "deny": "0"}
        await self.ok("PUT", f"{V3}/rooms/{q(fence['id'])}/state/{perms.OVERWRITE_EVENT}/"
                      f"{q(perms.member_state_key(member))}", allow_view, token=owner_token)
        return World(self, owner, owner_token, member, token, victim, victim_token, space, channel, first["id"],
                     fence["id"])

    async def socket(self, w: World) -> GatewayClient:
        client = await GatewayClient(self.hs.listening_port).opened()
        self.addCleanup(lambda: client.connector.disconnect())
        await client.identify(w.token)
        return client

    async def delivered(self, w: World, client: GatewayClient) -> bool:
        """Whether an owner's message in the channel reaches the member's socket: the
        fence's message, sent after it and always visible, marks where it would be."""
        sent = await self.ok("POST", f"{API}/channels/{q(w.channel)}/messages", {"content": f"m{_n()}"},
                             token=w.owner_token)
        marker = await self.ok("POST", f"{API}/channels/{q(w.fence)}/messages", {"content": f"f{_n()}"},
                               token=w.owner_token)
        await client.dispatch("MESSAGE_CREATE", lambda d: d.get("id") == marker["id"])
        return any(f["d"].get("id") == sent["id"] for f in client.dispatches("MESSAGE_CREATE"))

    async def put_state(self, w: World, room: str, event_type: str, state_key: str, content: dict):
        path = f"{V3}/rooms/{q(room)}/state/{event_type}/{q(state_key)}"
        await self.ok("PUT", path, content, token=w.owner_token)

    async def apply_mode(self, w: World, bit: int, mode: str) -> None:
        """Set @everyone, the probe role, the member's roles and the channel's overwrites."""
        grants = mode.startswith("a role grants")
        everyone = BASE & ~bit
        await self.put_state(w, w.space, perms.ROLE_EVENT, "", {"name": "@everyone", "position": 0,
                                                                "permissions": str(everyone)})
        await self.put_state(w, w.space, perms.ROLE_EVENT, ROLE, {
            "name": "Probe", "position": 1, "permissions": str(bit if grants else 0)})
        roles = [ROLE] if "role" in mode else []
        await self.put_state(w, w.space, perms.MEMBER_EVENT, perms.member_state_key(w.member), {"roles": roles})
        role_overwrite = member_overwrite = {}
        if "role overwrite denies" in mode:
            role_overwrite = {"type": "role", "allow": "0", "deny": str(bit)}
        elif "role overwrite allows" in mode:
            role_overwrite = {"type": "role", "allow": str(bit), "deny": "0"}
        elif "member overwrite allows" in mode:
            member_overwrite = {"type": "member", "allow": str(bit), "deny": "0"}
        elif "member overwrite denies" in mode:
            member_overwrite = {"type": "member", "allow": "0", "deny": str(bit)}
        await self.put_state(w, w.channel, perms.OVERWRITE_EVENT, ROLE, role_overwrite)
        await self.put_state(w, w.channel, perms.OVERWRITE_EVENT, perms.member_state_key(w.member), member_overwrite)

    async def check_probe(self, probe: Probe) -> None:
        w = await self.world()
        client = await self.socket(w) if probe.gateway else None
        for mode, needs_channel, holds in MODES:
            if needs_channel and not probe.channel_scoped:
                continue
            await self.apply_mode(w, int(probe.bit), mode)
            if client is not None:
                self.assertEqual(await self.delivered(w, client), holds,
                                 f"{probe.bit.name}: gateway delivery when {mode}")
            status, body = await probe.run(w)
            if probe.allowed is not None:
                allowed = probe.allowed(status, body)
            else:
                self.assertIn(status, (200, 204, 403), f"{probe.what}, {mode}: {status} {body}")
                allowed = status in (200, 204)
                if not allowed:
                    self.assertEqual(body.get("errcode"), "M_FORBIDDEN", body)
            self.assertEqual(allowed, holds, f"{probe.bit.name} on {probe.what} when {mode}: {status} {body}")

    def test_every_bit_is_probed_or_explained(self):
        probed = {p.bit for p in PROBES}
        for bit in P:
            if bit.name and bit.value.bit_count() == 1:
                self.assertTrue(bit in probed or bit in UNGATED, f"{bit.name} has neither a probe nor a reason")


def _add_probe_tests(cls):
    for probe in PROBES:
        name = f"test_{probe.bit.name.lower()}_{probe.what.split(' ')[0].lower()}_{_slug(probe.what)}"

        @inline
        async def test(self, probe=probe):
            await self.check_probe(probe)
        test.__name__ = name
        setattr(cls, name, test)
    return cls


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.split(" ", 1)[1].lower())[:40].strip("_")


@_add_probe_tests
class PermissionMatrixTests(MatrixTests, HomeserverTestCase):
    engine = "sqlite"


class UngatedReasonsTest(unittest.TestCase):
    def test_reasons_are_given(self):
        for bit, reason in UNGATED.items():
            self.assertTrue(reason, bit)
