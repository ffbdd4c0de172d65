"""A bridge written with mautrix (PyPI), which we did not write, against a running
homeserver: it registers a ghost, receives what a normal user says in a room it is in,
answers as the ghost, and creates a portal room when asked about an alias.

The bridge (tests/interop/mautrix_bridge.py) runs in its own process with this
interpreter; the tests are skipped only when mautrix cannot be imported."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from urllib.parse import quote

from tests.support.process import sleep
from tests.support.server import HomeserverTestCase, inline
from tests.support.synapse import _die_with_parent, free_ports

try:
    importlib.import_module("mautrix.appservice")  # the bridge runs with this interpreter
except ImportError as error:
    MAUTRIX_MISSING: str | None = f"mautrix cannot be imported: {error}"
else:
    MAUTRIX_MISSING = None

BRIDGE = os.path.join(os.path.dirname(__file__), "interop", "mautrix_bridge.py")
SERVER = "test.local"
BOT = f"@echobot:{SERVER}"
REGISTRATION = """\
id: echo
url: http://127.0.0.1:{port}
as_token: as-token-echo-0123456789
hs_token: hs-token-echo-9876543210
sender_localpart: echobot
rate_limited: false
namespaces:
  users:
    - regex: '@_echo_.*:{server}'
      exclusive: true
  aliases:
    - regex: '#_echo_.*:{server}'
      exclusive: true
  rooms: []
"""


class MautrixBridgeTests:
    if MAUTRIX_MISSING:
        skip = MAUTRIX_MISSING

    @inline
    async def setUp(self):
        self.bridge_port = free_ports(1)[0]
        self.bridge_dir = os.path.abspath(self.mktemp())
        os.makedirs(self.bridge_dir)
        # The registration exists before the homeserver starts and reads it.
        registration = os.path.join(self.bridge_dir, "echo-registration.yaml")
        with open(registration, "w") as handle:
            handle.write(REGISTRATION.format(port=self.bridge_port, server=SERVER))
        self.config_overrides = {"appservice": {"config_files": [registration]}}
        await super().setUp()
        self.ready = await self.start_bridge()

    async def start_bridge(self, timeout: float = 60.0) -> dict:
        out_path = os.path.join(self.bridge_dir, "bridge.out")
        self.bridge_err = os.path.join(self.bridge_dir, "bridge.err")
        with open(out_path, "w") as out, open(self.bridge_err, "w") as err:
            self.bridge = subprocess.Popen(
                [sys.executable, BRIDGE, f"http://127.0.0.1:{self.hs.listening_port}", SERVER, "echo",
                 "as-token-echo-0123456789", "hs-token-echo-9876543210", "echobot", str(self.bridge_port)],
                stdout=out, stderr=err, cwd=self.bridge_dir, preexec_fn=_die_with_parent)
        self.addCleanup(self.stop_bridge)
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            with open(out_path) as handle:
                for line in handle.read().splitlines():
                    if line.startswith("{"):
                        report = json.loads(line)
                        if report.get("ready"):
                            return report
            if self.bridge.poll() is not None:
                self.fail(f"bridge exited with {self.bridge.returncode}:\n{self.bridge_log()}")
            await sleep(0.05)
        self.fail(f"bridge not ready in {timeout}s:\n{self.bridge_log()}")

    def stop_bridge(self) -> None:
        if self.bridge.poll() is None:
            self.bridge.terminate()
            try:
                self.bridge.wait(10)
            except subprocess.TimeoutExpired:
                self.bridge.kill()
                self.bridge.wait()

    def bridge_log(self) -> str:
        with open(self.bridge_err) as handle:
            return handle.read()[-6000:]

    async def poll(self, check, what: str, timeout: float = 30.0):
        """Call ``check`` (async, returning a value or None) until it gives a value."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            found = await check()
            if found is not None:
                return found
            await sleep(0.05)
        self.fail(f"{what} did not happen in {timeout}s; bridge log:\n{self.bridge_log()}")

    async def echoes(self, token: str, room_id: str, ghost: str, body: str):
        async def check():
            status, page = await self.request("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/messages",
                                              token=token, query={"dir": "b", "limit": "50"})
            self.assertEqual(status, 200, page)
            found = [e for e in page["chunk"] if e["type"] == "m.room.message" and e["sender"] == ghost
                     and e["content"].get("body") == f"echo: {body}"]
            return found or None
        return await self.poll(check, f"{ghost} answering {body!r}")

    async def members(self, token: str, room_id: str) -> dict:
        status, body = await self.request("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/joined_members",
                                          token=token)
        self.assertEqual(status, 200, body)
        return body["joined"]

    async def send(self, token: str, room_id: str, body: str, txn: str) -> str:
        status, sent = await self.request(
            "PUT", f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/{txn}",
            {"msgtype": "m.text", "body": body}, token=token)
        self.assertEqual(status, 200, sent)
        return sent["event_id"]

    @inline
    async def test_bridge_starts_as_its_bot(self):
        # mautrix's start-up: versions, whoami with the as_token, ensure_registered (bot exists).
        self.assertEqual(self.ready["bot"], BOT)
        self.assertEqual(self.ready["whoami"], BOT)
        # POST /_matrix/client/v1/appservice/echo/ping made the homeserver ping the bridge.
        self.assertIsInstance(self.ready["ping"], int, self.ready["ping"])

    @inline
    async def test_ghost_answers_in_room(self):
        bob = await self.register("bob")
        ghost = f"@_echo_bob:{SERVER}"
        status, room = await self.request("POST", "/_matrix/client/v3/createRoom", {"name": "echo test"},
                                          token=bob["access_token"])
        self.assertEqual(status, 200, room)
        room_id = room["room_id"]
        status, body = await self.request("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/invite",
                                          {"user_id": ghost}, token=bob["access_token"])
        self.assertEqual(status, 200, body)

        # The invite reaches the bridge; the ghost registers (m.login.application_service) and joins.
        async def ghost_joined():
            return True if ghost in await self.members(bob["access_token"], room_id) else None
        await self.poll(ghost_joined, f"{ghost} joining")

        await self.send(bob["access_token"], room_id, "hello", "t1")
        echoed = await self.echoes(bob["access_token"], room_id, ghost, "hello")
        self.assertEqual(len(echoed), 1)

        # The ghost is a real account now: it has a profile, and the bridge's own echo
        # was not echoed back (the bridge ignores its own users).
        status, profile = await self.request("GET", f"/_matrix/client/v3/profile/{quote(ghost)}")
        self.assertEqual(status, 200, profile)
        await self.send(bob["access_token"], room_id, "again", "t2")
        await self.echoes(bob["access_token"], room_id, ghost, "again")
        status, page = await self.request("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/messages",
                                          token=bob["access_token"], query={"dir": "b", "limit": "50"})
        bodies = [e["content"].get("body") for e in reversed(page["chunk"]) if e["type"] == "m.room.message"]
        self.assertEqual(bodies, ["hello", "echo: hello", "again", "echo: again"])

    @inline
    async def test_portal_room_on_alias_query(self):
        bob = await self.register("bob")
        alias = f"#_echo_portal:{SERVER}"
        # Nobody has made the alias: the homeserver asks the bridge, which creates the room.
        status, joined = await self.request("POST", f"/_matrix/client/v3/join/{quote(alias)}", {},
                                            token=bob["access_token"])
        self.assertEqual(status, 200, joined)
        room_id = joined["room_id"]
        status, directory = await self.request("GET", f"/_matrix/client/v3/directory/room/{quote(alias)}")
        self.assertEqual(status, 200, directory)
        self.assertEqual(directory["room_id"], room_id)
        members = await self.members(bob["access_token"], room_id)
        self.assertIn(BOT, members)
        self.assertIn(bob["user_id"], members)
        status, name = await self.request("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/state/m.room.name",
                                          token=bob["access_token"])
        self.assertEqual((status, name), (200, {"name": "Echo portal portal"}))

        # In the portal (only the bot there), the sender's ghost joins and answers.
        await self.send(bob["access_token"], room_id, "hi portal", "p1")
        await self.echoes(bob["access_token"], room_id, f"@_echo_bob:{SERVER}", "hi portal")

        # A second join by the alias finds the same room; the bridge is not asked again.
        carol = await self.register("carol")
        status, again = await self.request("POST", f"/_matrix/client/v3/join/{quote(alias)}", {},
                                           token=carol["access_token"])
        self.assertEqual((status, again.get("room_id")), (200, room_id))


class MautrixBridgeSqliteTests(MautrixBridgeTests, HomeserverTestCase):
    engine = "sqlite"


class MautrixBridgePostgresTests(MautrixBridgeTests, HomeserverTestCase):
    engine = "postgres"
