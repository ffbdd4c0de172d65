"""Media between servers.

Served: ``GET /_matrix/federation/v1/media/download/{mediaId}`` and ``.../thumbnail/
{mediaId}`` (signed), for our own media only, as ``multipart/mixed``: a JSON part
(``{}``) and the content with its Content-Type. The older unauthenticated
``/_matrix/media/(r0|v3)/download|thumbnail/{serverName}/{mediaId}`` also answer on the
federation listener, as servers without the new endpoints ask there.

Fetched: ``homeserver.media.remote.FederationMediaSource`` (the media servlet plugs it
into the repository through ``hs.remote_media_source``).
"""

from __future__ import annotations

from homeserver.http.errors import missing_param, not_found
from homeserver.http.request import query_bool, query_int, query_str
from homeserver.http.router import Response
from homeserver.media import multipart
from homeserver.media.headers import content_disposition, media_headers
from homeserver.media.remote import FederationMediaSource

PREFIX = "/_matrix/federation/v1/media"
LEGACY_PREFIX = r"/_matrix/media/(?:r0|v3)"


def _required_int(request, name: str) -> int:
    value = query_int(request, name)
    if value is None:
        raise missing_param(name)
    return value


def register(router, hs, authenticated) -> None:
    server_name = hs.config.server_name

    def repository():
        return hs.media_repository

    async def local_content(request, media_id):
        return await repository().get_content(server_name, media_id, allow_remote=False,
                                              timeout_ms=query_int(request, "timeout_ms", minimum=0))

    async def local_thumbnail(request, media_id):
        return await repository().get_thumbnail(
            server_name, media_id, width=_required_int(request, "width"), height=_required_int(request, "height"),
            method=query_str(request, "method", "scale"), animated=query_bool(request, "animated", False),
            allow_remote=False, timeout_ms=query_int(request, "timeout_ms", minimum=0))

    def multipart_response(served) -> Response:
        body, content_type = multipart.build(
            served.data, served.content_type,
            content_disposition(served.content_type, served.filename, force_inline=served.is_thumbnail))
        return Response(200, body, content_type)

    async def download(request, origin, media_id):
        return multipart_response(await local_content(request, media_id))

    async def thumbnail(request, origin, media_id):
        return multipart_response(await local_thumbnail(request, media_id))

    def plain_response(served, filename=None) -> Response:
        headers = media_headers(served.content_type, filename or served.filename, authenticated=False,
                                force_inline=served.is_thumbnail)
        return Response(200, served.data, served.content_type.encode("ascii", "replace"), headers)

    async def legacy_download(request, server_name_param, media_id, file_name=None):
        if server_name_param != server_name:
            raise not_found("Only this server's media is served here")
        return plain_response(await local_content(request, media_id), file_name)

    async def legacy_thumbnail(request, server_name_param, media_id):
        if server_name_param != server_name:
            raise not_found("Only this server's media is served here")
        return plain_response(await local_thumbnail(request, media_id))

    router.add("GET", PREFIX + "/download/{media_id}", authenticated(download))
    router.add("GET", PREFIX + "/thumbnail/{media_id}", authenticated(thumbnail))
    router.add("GET", LEGACY_PREFIX + "/download/{server_name_param}/{media_id}", legacy_download,
               name="federation_legacy_download")
    router.add("GET", LEGACY_PREFIX + "/download/{server_name_param}/{media_id}/{file_name}", legacy_download,
               name="federation_legacy_download_named")
    router.add("GET", LEGACY_PREFIX + "/thumbnail/{server_name_param}/{media_id}", legacy_thumbnail,
               name="federation_legacy_thumbnail")


def attach(hs) -> None:
    config = hs.config
    hs.remote_media_source = lambda storage: FederationMediaSource(hs.federation_client, storage,
                                                                   config.server_name, config.media.max_upload_bytes)
    hs.federation_route_modules.append(register)
