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


class CertificateFileTests(HomeserverTestCase):
    """Certificates from the configuration: a full chain is served whole; a broken file
    stops the start with one clear line."""

    config_overrides = {"federation": {"enabled": False}}

    def _pair(self, name: str):
        from federation.tls import make_self_signed
        from pathlib import Path
        directory = Path(self.mktemp())
        directory.mkdir()
        make_self_signed(directory / f"{name}.crt", directory / f"{name}.key", name)
        return directory / f"{name}.crt", directory / f"{name}.key"

    @inline
    async def test_chain_file_keeps_its_intermediates(self):
        from federation.server import tls_options
        cert, key = self._pair("chat.example.org")
        ca, _ = self._pair("ca.example.org")
        chain = cert.with_name("fullchain.pem")
        chain.write_bytes(cert.read_bytes() + ca.read_bytes())
        options = tls_options(chain, key)
        self.assertEqual(len(options.extraCertChain), 1)

    @inline
    async def test_broken_certificate_is_a_startup_error(self):
        from homeserver.app import Homeserver, StartupError
        from homeserver.config import load_config
        from tests.support.server import write_config
        cert, key = self._pair("chat.example.org")
        cert.write_text("not a certificate")
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = write_config(directory, f"sqlite:///{directory}/db.sqlite", {"federation": {
            "enabled": True, "host": "127.0.0.1", "port": 0, "tls_certificate": str(cert),
            "tls_private_key": str(key)}})
        hs = Homeserver(load_config(path, environ={}), reactor)
        with self.assertRaises(StartupError) as caught:
            await hs.start()
        self.assertIn("certificate", str(caught.exception))
        await hs.stop()
