"""The federation listener: TLS with a self-signed certificate made on first start,
answering /version and the server's keys."""

from __future__ import annotations

import json
import os

import treq
from signedjson.key import decode_verify_key_bytes
from signedjson.sign import verify_signed_json
from twisted.internet import reactor, ssl
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from federation.tls import certificate_paths
from tests.support.server import HomeserverTestCase, inline
from tests.test_rooms_api import unpadded_b64decode


@implementer(IPolicyForHTTPS)
class TrustAnything:
    """Tests talk to a self-signed certificate on loopback."""

    def creatorForNetloc(self, hostname, port):
        return ssl.CertificateOptions(verify=False)


class FederationListenerTests:
    config_overrides = {"federation": {"enabled": True, "host": "127.0.0.1", "port": 0}}

    @inline
    async def test_version_and_keys_over_tls(self):
        cert, key = certificate_paths(self.hs.config)
        self.assertTrue(cert.exists() and key.exists())
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        pool = HTTPConnectionPool(reactor, persistent=False)
        agent = Agent(reactor, contextFactory=TrustAnything(), pool=pool)
        base = f"https://127.0.0.1:{self.hs.federation_port}"
        response = await treq.get(f"{base}/_matrix/federation/v1/version", agent=agent)
        self.assertEqual(response.code, 200)
        self.assertEqual((await response.json())["server"]["name"], "Drocsid")
        response = await treq.get(f"{base}/_matrix/key/v2/server", agent=agent)
        keys = json.loads(await response.content())
        (key_id, info), = keys["verify_keys"].items()
        verify_signed_json(keys, "test.local", decode_verify_key_bytes(key_id, unpadded_b64decode(info["key"])))
        response = await treq.get(f"{base}/_matrix/client/versions", agent=agent)
        self.assertEqual(response.code, 404)  # the client API is not on the federation port
        await response.content()
        await pool.closeCachedConnections()


class FederationListenerSqliteTests(FederationListenerTests, HomeserverTestCase):
    engine = "sqlite"
