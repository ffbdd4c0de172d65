"""What another server sends that must not get through: forged signatures, tampered
content, events the auth rules refuse, oversize transactions and malformed JSON. Each
is refused or rejected, and nothing of it reaches clients."""

from __future__ import annotations

import copy
import json

import treq
from signedjson.key import generate_signing_key
from twisted.internet import reactor
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers

from homeserver.events.builder import build_event
from homeserver.events.signing import sign_event
from tests.support.federation import TwoServerTestCase, path_id
from tests.support.server import inline
from tests.support.synapse import TrustAnything


class HostileServerTests(TwoServerTestCase):
    @inline
    async def setUp(self):
        await super().setUp()
        self.room_id = await self.a.create_room(self.alice, preset="public_chat")
        status, body = await self.b.join(self.bob, self.room_id, via=[self.a.server_name])
        self.assertEqual(status, 200, body)

    async def _event_from_bob(self, text: str):
        return await self.b.hs.event_sender.build_unsent(self.b.user_id("bob"), self.room_id, "m.room.message",
                                                         {"msgtype": "m.text", "body": text})

    async def _send(self, pdus: list[dict], edus: list[dict] | None = None, txn: str = "t1"):
        client = self.b.hs.federation_client
        return await client.put_json(self.a.server_name, f"/_matrix/federation/v1/send/{txn}",
                                     {"origin": self.b.server_name, "origin_server_ts": 1, "pdus": pdus,
                                      "edus": edus or []})

    async def _visible_to_alice(self, event_id: str):
        status, body = await self.a.request(
            "GET", f"/_matrix/client/v3/rooms/{path_id(self.room_id)}/event/{path_id(event_id)}", token=self.alice)
        return body if status == 200 else None

    async def _timeline_bodies(self) -> list:
        return [e.get("content", {}).get("body") for e in await self.a.messages(self.alice, self.room_id)]

    @inline
    async def test_forged_signature_is_refused(self):
        event = await self._event_from_bob("forged")
        pdu = copy.deepcopy(event.pdu)
        impostor = generate_signing_key(self.b.hs.signing_key.version)
        del pdu["signatures"]
        sign_event(event.room_version, pdu, self.b.server_name, impostor)
        answer = await self._send([pdu])
        self.assertIn("signature", answer["pdus"][event.event_id]["error"])
        self.assertIsNone(await self._visible_to_alice(event.event_id))
        self.assertNotIn("forged", await self._timeline_bodies())

    @inline
    async def test_tampered_content_is_kept_redacted(self):
        event = await self._event_from_bob("original words")
        pdu = copy.deepcopy(event.pdu)
        pdu["content"]["body"] = "words bob never wrote"
        answer = await self._send([pdu])
        self.assertEqual(answer["pdus"][event.event_id], {})
        seen = await self._visible_to_alice(event.event_id)
        # The signature covers the redacted form: the event takes its place, its content does not.
        self.assertEqual(seen["content"], {})
        self.assertNotIn("words bob never wrote", json.dumps(await self.a.messages(self.alice, self.room_id)))

    @inline
    async def test_event_failing_auth_is_rejected(self):
        head = await self.b.hs.room_heads.get(self.room_id)
        template = await self._event_from_bob("template")
        mallory = f"@mallory:{self.b.server_name}"  # never joined
        event = build_event(template.room_version, room_id=self.room_id, sender=mallory, event_type="m.room.message",
                            content={"msgtype": "m.text", "body": "from outside"},
                            prev_events=list(head.extremities), auth_events=template.auth_event_ids,
                            depth=head.max_depth + 1, origin_server_ts=template.origin_server_ts,
                            server_name=self.b.server_name, signing_key=self.b.hs.signing_key)
        answer = await self._send([event.pdu])
        self.assertIn("error", answer["pdus"][event.event_id])
        self.assertIsNone(await self._visible_to_alice(event.event_id))
        self.assertNotIn("from outside", await self._timeline_bodies())
        # And the room goes on: a good event after it is taken.
        good = await self._event_from_bob("legit")
        answer = await self._send([good.pdu], txn="t2")
        self.assertEqual(answer["pdus"][good.event_id], {})
        self.assertIsNotNone(await self._visible_to_alice(good.event_id))

    @inline
    async def test_oversize_transaction_is_refused(self):
        events = [await self._event_from_bob(f"m{i}") for i in range(51)]
        from federation.client import FederationHttpError
        with self.assertRaises(FederationHttpError) as caught:
            await self._send([e.pdu for e in events])
        self.assertEqual((caught.exception.status, caught.exception.errcode), (400, "M_BAD_JSON"))
        for event in events[:3]:
            self.assertIsNone(await self._visible_to_alice(event.event_id))

    @inline
    async def test_malformed_and_unsigned_requests_are_refused(self):
        pool = HTTPConnectionPool(reactor, persistent=False)
        agent = Agent(reactor, contextFactory=TrustAnything(), pool=pool)
        url = f"https://{self.a.server_name}/_matrix/federation/v1/send/bad".encode()
        response = await agent.request(b"PUT", url, Headers({b"Content-Type": [b"application/json"]}),
                                       _Body(b"{not json"))
        body = json.loads(await treq.content(response))
        self.assertEqual(response.code, 401, body)  # no signature: refused before anything is read
        self.assertEqual(body["errcode"], "M_UNAUTHORIZED")

        # A signed PDU that is not an object, and one missing its fields, are refused one by one.
        answer = await self._send(["not an event", {"type": "m.room.message", "room_id": self.room_id}], txn="t3")
        self.assertEqual(answer["pdus"], {})
        # A transaction whose pdus is not a list is refused whole.
        from federation.client import FederationHttpError
        with self.assertRaises(FederationHttpError) as caught:
            await self.b.hs.federation_client.put_json(self.a.server_name, "/_matrix/federation/v1/send/t4",
                                                       {"origin": self.b.server_name, "pdus": "nope"})
        self.assertEqual(caught.exception.status, 400)


class _Body:
    def __init__(self, data: bytes):
        self.data = data
        self.length = len(data)

    def startProducing(self, consumer):
        consumer.write(self.data)
        from twisted.internet import defer
        return defer.succeed(None)

    def pauseProducing(self):
        pass

    def stopProducing(self):
        pass


class HostileServerPostgresTests(HostileServerTests):
    engine = "postgres"
