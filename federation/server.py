"""The federation listener: TLS, with the server-server API's routes.

Every route but ``/version`` and the key endpoints is signed by the calling server
(X-Matrix); ``authenticated`` checks that, and the room's server ACL for room routes,
before the handler runs with the origin (and the JSON body for PUT and POST).
"""

from __future__ import annotations

from twisted.internet import ssl

from federation import key_server, membership_server, notary, retrieval
from federation.auth import FederationAuthenticator
from homeserver import __version__
from homeserver.http.errors import bad_json
from homeserver.http.router import Router
from homeserver.http.site import build_site
from homeserver.events.validation import MAX_EVENT_BYTES


def make_authenticated(authenticator: FederationAuthenticator):
    def authenticated(handler, room_scoped: bool = False, with_body: bool = False):
        async def wrapped(request, **params):
            origin, body = await authenticator.authenticate(request)
            if room_scoped:
                await authenticator.check_acl(origin, params["room_id"])
            if with_body:
                if not isinstance(body, dict):
                    raise bad_json("A JSON object body is required")
                return await handler(request, origin, body=body, **params)
            return await handler(request, origin, **params)
        wrapped.__name__ = handler.__name__
        return wrapped
    return authenticated


def build_router(hs) -> Router:
    router = Router()
    authenticated = make_authenticated(FederationAuthenticator(hs))

    async def version(request):
        return 200, {"server": {"name": "Drocsid", "version": __version__}}

    async def send_transaction(request, origin, txn_id, body):
        return 200, await hs.federation_transactions.on_transaction(origin, txn_id, body)

    router.add("GET", "/_matrix/federation/v1/version", version)
    key_server.register_routes(router, hs)
    notary.register_routes(router, hs)
    router.add("PUT", "/_matrix/federation/v1/send/{txn_id}", authenticated(send_transaction, with_body=True))
    retrieval.register_routes(router, hs, authenticated)
    membership_server.register_routes(router, hs, authenticated, hs.federation_membership)
    for register in hs.federation_route_modules:
        register(router, hs, authenticated)
    return router


def listen(hs, cert_path, key_path):
    """Start the TLS listener on ``federation.host:federation.port``; returns the port."""
    options = tls_options(cert_path, key_path)
    site = build_site(build_router(hs), hs.config, hs.reactor)
    # A transaction may carry 50 PDUs of 64 KiB each, plus EDUs.
    site.max_body_bytes = max(site.max_body_bytes,
                              hs.config.federation.max_transaction_pdus * MAX_EVENT_BYTES + 1024 * 1024)
    federation = hs.config.federation
    return hs.reactor.listenSSL(federation.port, site, options, interface=federation.host), site


def tls_options(cert_path, key_path) -> ssl.CertificateOptions:
    """The listener's TLS: the first certificate in the file is ours, any after it are
    the chain up to the CA (as ACME clients write fullchain.pem); ValueError if unusable."""
    with open(cert_path, "rb") as handle:
        cert_pem = handle.read()
    with open(key_path, "rb") as handle:
        key_pem = handle.read()
    blocks = [b"-----BEGIN CERTIFICATE-----" + part.split(b"-----END CERTIFICATE-----")[0]
              + b"-----END CERTIFICATE-----\n" for part in cert_pem.split(b"-----BEGIN CERTIFICATE-----")[1:]]
    if not blocks:
        raise ValueError(f"{cert_path} holds no PEM certificate")
    try:
        private = ssl.PrivateCertificate.loadPEM(key_pem + b"\n" + blocks[0])
        chain = [ssl.Certificate.loadPEM(block).original for block in blocks[1:]]
    except Exception as error:
        raise ValueError(f"cannot load the certificate {cert_path} with key {key_path}: {error}") from None
    return ssl.CertificateOptions(privateKey=private.privateKey.original, certificate=private.original,
                                  extraCertChain=chain)
