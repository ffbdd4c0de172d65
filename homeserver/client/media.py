"""Media over HTTP: upload, create-then-upload, download, thumbnails and config.

Authenticated downloads live under ``/_matrix/client/v1/media``; the deprecated
unauthenticated ``/_matrix/media/(r0|v3)`` download, thumbnail and config paths still
answer. Uploads stay under ``/_matrix/media`` (where the site allows bodies up to
``media.max_upload_bytes``). The logic is in ``homeserver.media.repository``; this module
only parses requests and shapes responses (see docs/media.md).
"""

from __future__ import annotations

from homeserver.http.errors import missing_param
from homeserver.http.request import query_bool, query_int, query_str
from homeserver.http.router import CLIENT_V1_PREFIX, Response, Router
from homeserver.media.headers import media_headers
from homeserver.media.repository import MediaRepository, ServedMedia

LEGACY_PREFIX = r"/_matrix/media/(?:r0|v3)"
MEDIA_V1_PREFIX = "/_matrix/media/v1"
AUTHED_PREFIX = f"{CLIENT_V1_PREFIX}/media"


def _body(request) -> bytes:
    request.content.seek(0)
    return request.content.read()


def _content_type(request) -> str | None:
    raw = request.getHeader(b"Content-Type")
    if raw is None:
        return None
    return raw.decode("latin-1") if isinstance(raw, bytes) else raw


def _response(served: ServedMedia, *, authenticated: bool, filename: str | None = None) -> Response:
    headers = media_headers(served.content_type, filename or served.filename, authenticated=authenticated,
                            force_inline=served.is_thumbnail)
    return Response(200, served.data, served.content_type.encode("ascii", "replace"), headers)


def _required_int(request, name: str) -> int:
    value = query_int(request, name)
    if value is None:
        raise missing_param(name)
    return value


def register_routes(router: Router, hs) -> None:
    repo = MediaRepository(hs.config, hs.db, hs.clock, hs.ratelimiter)
    # With federation, other servers' media is fetched from them (homeserver.media.remote).
    remote_source = getattr(hs, "remote_media_source", None)
    if remote_source is not None:
        repo.remote = remote_source(repo.storage)
    hs.media_repository = repo

    # --- upload ----------------------------------------------------------------------

    async def upload(request):
        requester = await hs.auth.authenticate(request)
        content_uri = await repo.upload(requester.user_id, _body(request), _content_type(request),
                                        query_str(request, "filename"))
        return 200, {"content_uri": content_uri}

    async def create(request):
        requester = await hs.auth.authenticate(request)
        content_uri, expires_at = await repo.create(requester.user_id)
        return 200, {"content_uri": content_uri, "unused_expires_at": expires_at}

    async def upload_to(request, server_name, media_id):
        requester = await hs.auth.authenticate(request)
        await repo.upload_to(requester.user_id, server_name, media_id, _body(request), _content_type(request),
                             query_str(request, "filename"))
        return 200, {}

    # --- download and thumbnails ---------------------------------------------------------

    def download_handler(authenticated: bool):
        async def download(request, server_name, media_id, file_name=None):
            if authenticated:
                await hs.auth.authenticate(request)
            served = await repo.get_content(server_name, media_id,
                                            allow_remote=query_bool(request, "allow_remote", True),
                                            timeout_ms=query_int(request, "timeout_ms", minimum=0))
            return _response(served, authenticated=authenticated, filename=file_name)
        return download

    def thumbnail_handler(authenticated: bool):
        async def thumbnail(request, server_name, media_id):
            if authenticated:
                await hs.auth.authenticate(request)
            served = await repo.get_thumbnail(
                server_name, media_id, width=_required_int(request, "width"),
                height=_required_int(request, "height"), method=query_str(request, "method", "scale"),
                animated=query_bool(request, "animated", False),
                allow_remote=query_bool(request, "allow_remote", True),
                timeout_ms=query_int(request, "timeout_ms", minimum=0))
            return _response(served, authenticated=authenticated)
        return thumbnail

    def config_handler(authenticated: bool):
        async def media_config(request):
            if authenticated:
                await hs.auth.authenticate(request)
            return 200, repo.config_json()
        return media_config

    router.add("POST", f"{LEGACY_PREFIX}/upload", upload, name="media_upload")
    router.add("PUT", f"{LEGACY_PREFIX}/upload/{{server_name}}/{{media_id}}", upload_to, name="media_upload_to")
    router.add("POST", f"{MEDIA_V1_PREFIX}/create", create, name="media_create")

    for prefix, authenticated in ((AUTHED_PREFIX, True), (LEGACY_PREFIX, False)):
        kind = "authed" if authenticated else "legacy"
        download = download_handler(authenticated)
        router.add("GET", f"{prefix}/download/{{server_name}}/{{media_id}}", download,
                   name=f"media_download_{kind}")
        router.add("GET", f"{prefix}/download/{{server_name}}/{{media_id}}/{{file_name}}", download,
                   name=f"media_download_named_{kind}")
        router.add("GET", f"{prefix}/thumbnail/{{server_name}}/{{media_id}}", thumbnail_handler(authenticated),
                   name=f"media_thumbnail_{kind}")
        router.add("GET", f"{prefix}/config", config_handler(authenticated), name=f"media_config_{kind}")
