"""Discovery: /versions and /.well-known/matrix/client."""

from __future__ import annotations

from homeserver.http.router import Router

# The specification versions whose client API this server answers to. v1.5 is what
# matrix-js-sdk requires at least.
SPEC_VERSIONS = ["r0.0.1", "r0.1.0", "r0.2.0", "r0.3.0", "r0.4.0", "r0.5.0", "r0.6.0", "r0.6.1",
                 "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10",
                 "v1.11", "v1.12"]


def register_routes(router: Router, hs) -> None:
    async def versions(request):
        return 200, {"versions": SPEC_VERSIONS, "unstable_features": {}}

    async def well_known_client(request):
        from homeserver.voice.matrixrtc import rtc_foci
        body = {"m.homeserver": {"base_url": hs.config.server.public_baseurl}}
        foci = rtc_foci(hs)
        if foci:
            # MatrixRTC (Element Call) finds the LiveKit token service here (MSC4143).
            body["org.matrix.msc4143.rtc_foci"] = foci
        return 200, body

    router.add("GET", "/_matrix/client/versions", versions)
    router.add("GET", "/.well-known/matrix/client", well_known_client)
