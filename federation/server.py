"""The federation listener: TLS, with the server-server API's routes.

Today it answers ``/_matrix/federation/v1/version`` and the key endpoints; the rest of
the server-server API (transactions, joins, backfill) lands with the federation issue.
"""

from __future__ import annotations

from twisted.internet import ssl

from federation import key_server
from homeserver import __version__
from homeserver.http.router import Router
from homeserver.http.site import build_site


def build_router(hs) -> Router:
    router = Router()

    async def version(request):
        return 200, {"server": {"name": "Drocsid", "version": __version__}}

    router.add("GET", "/_matrix/federation/v1/version", version)
    key_server.register_routes(router, hs)
    return router


def listen(hs, cert_path, key_path):
    """Start the TLS listener on ``federation.host:federation.port``; returns the port."""
    with open(cert_path, "rb") as handle:
        cert_pem = handle.read()
    with open(key_path, "rb") as handle:
        key_pem = handle.read()
    certificate = ssl.PrivateCertificate.loadPEM(key_pem + b"\n" + cert_pem)
    site = build_site(build_router(hs), hs.config, hs.reactor)
    federation = hs.config.federation
    return hs.reactor.listenSSL(federation.port, site, certificate.options(), interface=federation.host), site
