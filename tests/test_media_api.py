"""The media repository over HTTP: uploads, create-then-upload, downloads, thumbnails,
safety headers and limits, on both engines, on local disk and on S3 (moto)."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import uuid
from urllib.parse import quote

from PIL import Image, ImageDraw
from twisted.internet import defer, reactor, task

from tests.support.server import HomeserverTestCase, inline

UPLOAD = "/_matrix/media/v3/upload"
CREATE = "/_matrix/media/v1/create"
AUTHED = "/_matrix/client/v1/media"
LEGACY = "/_matrix/media/v3"
SERVER = "test.local"


def png_bytes(width: int = 200, height: int = 100, fmt: str = "PNG") -> bytes:
    image = Image.new("RGB", (width, height), (30, 120, 200))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width // 2, height // 2), fill=(250, 200, 10))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def animated_gif_bytes(width: int = 120, height: int = 80, frames: int = 4) -> bytes:
    images = [Image.new("RGB", (width, height), (60 * i, 100, 255 - 60 * i)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


class MediaTestMixin:
    """Helpers shared by every media test class."""

    async def upload(self, token: str, data: bytes, content_type: str = "application/octet-stream",
                     filename: str | None = None) -> str:
        """Upload and return the media ID (checking the mxc:// URI on the way)."""
        query = {"filename": filename} if filename is not None else None
        status, body = await self.request("POST", UPLOAD, raw=data, token=token, query=query,
                                          headers={"Content-Type": content_type})
        self.assertEqual(status, 200, body)
        prefix = f"mxc://{SERVER}/"
        self.assertTrue(body["content_uri"].startswith(prefix), body)
        return body["content_uri"][len(prefix):]

    def header(self, name: str) -> str | None:
        values = self.client.last_headers.getRawHeaders(name)
        return values[0] if values else None

    async def media_rows(self) -> list:
        def read(txn):
            return txn.select_all("SELECT media_id, upload_ts FROM media_local")
        return await self.hs.db.run_interaction("read_media", read)

    def stored_files(self) -> list[str]:
        root = self.hs.config.media_path
        found = []
        for directory, _, files in os.walk(root):
            found += [os.path.relpath(os.path.join(directory, name), root) for name in files]
        return sorted(found)


class MediaTests(MediaTestMixin):
    @inline
    async def test_upload_download_round_trip(self):
        token = (await self.register("alice"))["access_token"]
        data = png_bytes()
        media_id = await self.upload(token, data, "image/png", filename="cat.png")
        self.assertRegex(media_id, r"^[A-Za-z0-9_-]{24,}$")

        status, body = await self.request("GET", f"{AUTHED}/download/{SERVER}/{media_id}", token=token)
        self.assertEqual(status, 200)
        self.assertEqual(body, data)
        self.assertEqual(self.header("Content-Type"), "image/png")
        self.assertEqual(self.header("Content-Disposition"), 'inline; filename="cat.png"')
        self.assertEqual(self.header("X-Content-Type-Options"), "nosniff")
        self.assertTrue(self.header("Content-Security-Policy").startswith("sandbox;"))
        self.assertEqual(self.header("Cross-Origin-Resource-Policy"), "cross-origin")
        self.assertIn("private", self.header("Cache-Control"))
        status, body = await self.request("HEAD", f"{AUTHED}/download/{SERVER}/{media_id}", token=token)
        self.assertEqual((status, body), (200, None))
        self.assertEqual(self.header("Content-Length"), str(len(data)))

        # The bytes are on disk, sharded by ID prefix, with no temporary file left over.
        shard = f"local_content/{media_id[:2]}/{media_id[2:4]}/{media_id[4:]}"
        self.assertEqual(self.stored_files(), [shard])
        with open(self.hs.config.media_path / shard, "rb") as handle:
            self.assertEqual(handle.read(), data)

        def read(txn):
            return txn.select_one("SELECT uploader, content_type, upload_name, size_bytes, sha256"
                                  " FROM media_local WHERE media_id = ?", (media_id,))
        row = await self.hs.db.run_interaction("read", read)
        self.assertEqual(tuple(row), ("@alice:test.local", "image/png", "cat.png", len(data),
                                      hashlib.sha256(data).hexdigest()))

    @inline
    async def test_legacy_paths_work_without_auth(self):
        token = (await self.register("bob"))["access_token"]
        data = b"hello, world\n"
        media_id = await self.upload(token, data, "text/plain", filename="hello.txt")
        for version in ("v3", "r0"):
            status, body = await self.request("GET", f"/_matrix/media/{version}/download/{SERVER}/{media_id}")
            self.assertEqual((status, body), (200, data))
            self.assertEqual(self.header("Content-Type"), "text/plain")
            self.assertIn("public", self.header("Cache-Control"))
            status, body = await self.request("GET", f"/_matrix/media/{version}/config")
            self.assertEqual((status, body), (200, {"m.upload.size": 50 * 1024 * 1024}))
        # The r0 upload path is accepted too.
        status, body = await self.request("POST", "/_matrix/media/r0/upload", raw=b"x", token=token,
                                          headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 200, body)
        image_id = await self.upload(token, png_bytes(), "image/png")
        status, body = await self.request("GET", f"{LEGACY}/thumbnail/{SERVER}/{image_id}",
                                          query={"width": "32", "height": "32", "method": "crop"})
        self.assertEqual(status, 200)
        self.assertEqual(decode(body).size, (32, 32))

    @inline
    async def test_auth_required(self):
        token = (await self.register("carol"))["access_token"]
        media_id = await self.upload(token, b"secret", "text/plain")
        self.assertMatrixError(await self.request("POST", UPLOAD, raw=b"data",
                                                  headers={"Content-Type": "text/plain"}), 401, "M_MISSING_TOKEN")
        self.assertMatrixError(await self.request("POST", CREATE), 401, "M_MISSING_TOKEN")
        self.assertMatrixError(await self.request("PUT", f"{UPLOAD}/{SERVER}/{media_id}", raw=b"data"),
                               401, "M_MISSING_TOKEN")
        for path in (f"{AUTHED}/download/{SERVER}/{media_id}", f"{AUTHED}/download/{SERVER}/{media_id}/f.txt",
                     f"{AUTHED}/thumbnail/{SERVER}/{media_id}?width=32&height=32", f"{AUTHED}/config"):
            self.assertMatrixError(await self.request("GET", path), 401, "M_MISSING_TOKEN")
        self.assertMatrixError(await self.request("GET", f"{AUTHED}/download/{SERVER}/{media_id}",
                                                  token="not-a-token"), 401, "M_UNKNOWN_TOKEN")
        self.assertMatrixError(await self.request("POST", UPLOAD, raw=b"data", token="not-a-token"),
                               401, "M_UNKNOWN_TOKEN")
        # Only the successful upload above was stored.
        self.assertEqual(len(await self.media_rows()), 1)

    @inline
    async def test_config_reports_the_upload_limit(self):
        token = (await self.register("dave"))["access_token"]
        status, body = await self.request("GET", f"{AUTHED}/config", token=token)
        self.assertEqual((status, body), (200, {"m.upload.size": 50 * 1024 * 1024}))

    @inline
    async def test_create_then_upload(self):
        alice = (await self.register("alice"))["access_token"]
        mallory = (await self.register("mallory"))["access_token"]
        before = int(reactor.seconds() * 1000)
        status, body = await self.request("POST", CREATE, token=alice)
        self.assertEqual(status, 200, body)
        self.assertTrue(body["content_uri"].startswith(f"mxc://{SERVER}/"))
        self.assertGreater(body["unused_expires_at"], before)
        media_id = body["content_uri"].rsplit("/", 1)[1]
        self.assertRegex(media_id, r"^[A-Za-z0-9_-]{24,}$")

        # Nothing to download yet.
        self.assertMatrixError(await self.request("GET", f"{AUTHED}/download/{SERVER}/{media_id}", token=alice,
                                                  query={"timeout_ms": "0"}), 504, "M_NOT_YET_UPLOADED")
        self.assertMatrixError(await self.request("GET", f"{AUTHED}/thumbnail/{SERVER}/{media_id}", token=alice,
                                                  query={"timeout_ms": "0", "width": "32", "height": "32"}),
                               504, "M_NOT_YET_UPLOADED")

        path = f"{UPLOAD}/{SERVER}/{media_id}"
        self.assertMatrixError(await self.request("PUT", path, raw=b"not yours", token=mallory,
                                                  headers={"Content-Type": "text/plain"}), 403, "M_FORBIDDEN")
        status, body = await self.request("PUT", path, raw=b"the content", token=alice, query={"filename": "a.txt"},
                                          headers={"Content-Type": "text/plain"})
        self.assertEqual((status, body), (200, {}))
        self.assertMatrixError(await self.request("PUT", path, raw=b"again", token=alice,
                                                  headers={"Content-Type": "text/plain"}),
                               409, "M_CANNOT_OVERWRITE_MEDIA")
        self.assertMatrixError(await self.request("PUT", path, raw=b"again", token=mallory,
                                                  headers={"Content-Type": "text/plain"}), 403, "M_FORBIDDEN")

        status, body = await self.request("GET", f"{AUTHED}/download/{SERVER}/{media_id}", token=mallory)
        self.assertEqual((status, body), (200, b"the content"))
        self.assertEqual(self.header("Content-Type"), "text/plain")
        self.assertEqual(self.header("Content-Disposition"), 'inline; filename="a.txt"')

        # Unknown IDs, IDs of another server and IDs made by a direct upload.
        self.assertMatrixError(await self.request("PUT", f"{UPLOAD}/{SERVER}/UnknownMediaId0123456789", raw=b"x",
                                                  token=alice), 404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("PUT", f"{UPLOAD}/other.server/{media_id}", raw=b"x",
                                                  token=alice), 404, "M_NOT_FOUND")
        direct = await self.upload(alice, b"direct", "text/plain")
        self.assertMatrixError(await self.request("PUT", f"{UPLOAD}/{SERVER}/{direct}", raw=b"x", token=alice),
                               409, "M_CANNOT_OVERWRITE_MEDIA")

    @inline
    async def test_create_is_limited(self):
        token = (await self.register("paul"))["access_token"]
        statuses = [(await self.request("POST", CREATE, token=token))[0] for _ in range(21)]
        self.assertEqual(statuses, [200] * 20 + [429])
        self.assertMatrixError(await self.request("POST", CREATE, token=token), 429, "M_LIMIT_EXCEEDED")

    @inline
    async def test_download_waits_for_a_pending_upload(self):
        token = (await self.register("erin"))["access_token"]
        status, body = await self.request("POST", CREATE, token=token)
        media_id = body["content_uri"].rsplit("/", 1)[1]
        waiting = defer.ensureDeferred(self.request("GET", f"{AUTHED}/download/{SERVER}/{media_id}", token=token,
                                                    query={"timeout_ms": "10000"}))
        # Wait until the download is parked on the upload, then upload.
        for _ in range(500):
            if self.hs.media_repository._upload_waiters.get(media_id):
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        self.assertTrue(self.hs.media_repository._upload_waiters.get(media_id))
        status, body = await self.request("PUT", f"{UPLOAD}/{SERVER}/{media_id}", raw=b"arrived", token=token,
                                          headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 200, body)
        status, body = await waiting
        self.assertEqual((status, body), (200, b"arrived"))

    @inline
    async def test_unknown_and_remote_media(self):
        token = (await self.register("frank"))["access_token"]
        media_id = await self.upload(token, b"data", "text/plain")
        for prefix, auth in ((AUTHED, token), (LEGACY, None)):
            for path in (f"{prefix}/download/{SERVER}/NoSuchMediaId0123456789ab",
                         f"{prefix}/download/{SERVER}/{quote('bad.id/../x', safe='')}",
                         f"{prefix}/download/remote.example/{media_id}",
                         f"{prefix}/thumbnail/{SERVER}/NoSuchMediaId0123456789ab?width=32&height=32",
                         f"{prefix}/thumbnail/remote.example/{media_id}?width=32&height=32"):
                self.assertMatrixError(await self.request("GET", path, token=auth), 404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("GET", f"{AUTHED}/download/{SERVER}/{media_id}", token=token,
                                                  query={"allow_remote": "maybe"}), 400, "M_INVALID_PARAM")

    @inline
    async def test_filename_in_content_disposition(self):
        token = (await self.register("gina"))["access_token"]
        media_id = await self.upload(token, b"%PDF-1.4", "application/pdf", filename="résumé 📄.pdf")
        status, body = await self.request("GET", f"{AUTHED}/download/{SERVER}/{media_id}", token=token)
        self.assertEqual(status, 200)
        self.assertEqual(self.header("Content-Disposition"),
                         "attachment; filename*=utf-8''r%C3%A9sum%C3%A9%20%F0%9F%93%84.pdf")

        # A name in the path replaces the uploaded one.
        status, body = await self.request("GET", f"{AUTHED}/download/{SERVER}/{media_id}/report.pdf", token=token)
        self.assertEqual((status, body), (200, b"%PDF-1.4"))
        self.assertEqual(self.header("Content-Disposition"), 'attachment; filename="report.pdf"')
        status, body = await self.request("GET", f"{LEGACY}/download/{SERVER}/{media_id}/{quote('naïve.pdf')}")
        self.assertEqual(status, 200)
        self.assertEqual(self.header("Content-Disposition"), "attachment; filename*=utf-8''na%C3%AFve.pdf")

        # Quotes and line breaks cannot break out of the header.
        tricky = await self.upload(token, b"x", "text/plain", filename='a"b\r\nSet-Cookie: x=1.txt')
        await self.request("GET", f"{AUTHED}/download/{SERVER}/{tricky}", token=token)
        self.assertEqual(self.header("Content-Disposition"),
                         "inline; filename*=utf-8''a%22bSet-Cookie%3A%20x%3D1.txt")
        self.assertIsNone(self.header("Set-Cookie"))

        # Without a file name there is none in the header.
        plain = await self.upload(token, b"x", "text/plain")
        await self.request("GET", f"{AUTHED}/download/{SERVER}/{plain}", token=token)
        self.assertEqual(self.header("Content-Disposition"), "inline")

    @inline
    async def test_active_content_is_never_inline(self):
        token = (await self.register("hank"))["access_token"]
        cases = [
            ("text/html", b"<html><script>alert(1)</script></html>", "page.html"),
            ("text/html; charset=utf-8", b"<script>alert(1)</script>", "page.htm"),
            ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
             "pic.svg"),
            ("application/javascript", b"alert(1)", "x.js"),
        ]
        for content_type, data, filename in cases:
            media_id = await self.upload(token, data, content_type, filename=filename)
            for path, auth in ((f"{AUTHED}/download/{SERVER}/{media_id}", token),
                               (f"{LEGACY}/download/{SERVER}/{media_id}", None)):
                status, body = await self.request("GET", path, token=auth)
                self.assertEqual((status, body), (200, data))
                self.assertEqual(self.header("Content-Type"), content_type)
                self.assertEqual(self.header("Content-Disposition"), f'attachment; filename="{filename}"')
                self.assertEqual(self.header("X-Content-Type-Options"), "nosniff")
                csp = self.header("Content-Security-Policy")
                self.assertTrue(csp.startswith("sandbox;"), csp)
                self.assertIn("default-src 'none'", csp)
                self.assertIn("script-src 'none'", csp)
        # A type that is not a type at all is served as bytes, as an attachment.
        media_id = await self.upload(token, b"?", "not a content type")
        await self.request("GET", f"{AUTHED}/download/{SERVER}/{media_id}", token=token)
        self.assertEqual(self.header("Content-Type"), "application/octet-stream")
        self.assertEqual(self.header("Content-Disposition"), "attachment")

    @inline
    async def test_thumbnails_crop_and_scale(self):
        token = (await self.register("iris"))["access_token"]
        data = png_bytes(200, 100)
        media_id = await self.upload(token, data, "image/png", filename="wide.png")
        path = f"{AUTHED}/thumbnail/{SERVER}/{media_id}"

        status, body = await self.request("GET", path, token=token,
                                          query={"width": "32", "height": "32", "method": "crop"})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.header("Content-Type"), "image/png")
        self.assertEqual(self.header("Content-Disposition"), 'inline; filename="thumbnail.png"')
        self.assertEqual(self.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(decode(body).size, (32, 32))
        first = body

        status, body = await self.request("GET", path, token=token,
                                          query={"width": "96", "height": "96", "method": "crop"})
        self.assertEqual(decode(body).size, (96, 96))
        status, body = await self.request("GET", path, token=token,
                                          query={"width": "150", "height": "20", "method": "crop"})
        self.assertEqual(decode(body).size, (150, 20))
        # Larger than the original: the original itself.
        status, body = await self.request("GET", path, token=token,
                                          query={"width": "400", "height": "400", "method": "scale"})
        self.assertEqual((status, body), (200, data))
        status, body = await self.request("GET", path, token=token, query={"width": "640", "height": "480"})
        self.assertEqual((status, body), (200, data))

        # Made once, then served from the store.
        status, body = await self.request("GET", path, token=token,
                                          query={"width": "32", "height": "32", "method": "crop"})
        self.assertEqual((status, body), (200, first))

        def read(txn):
            return txn.select_all("SELECT width, height, method, content_type FROM media_thumbnails"
                                  " WHERE media_id = ? ORDER BY width, height", (media_id,))
        rows = [tuple(r) for r in await self.hs.db.run_interaction("read", read)]
        self.assertEqual(rows, [(32, 32, "crop", "image/png"), (96, 96, "crop", "image/png"),
                                (150, 20, "crop", "image/png")])
        thumbs = [f for f in self.stored_files() if f.startswith("local_thumbnails/")]
        self.assertIn(f"local_thumbnails/{media_id[:2]}/{media_id[2:4]}/{media_id[4:]}/32-32-crop", thumbs)
        self.assertEqual(len(thumbs), 3)

        # scale keeps the aspect ratio and fits the box, which is rounded up to a standard
        # size (64x64 -> 320x240): never smaller than asked.
        large_id = await self.upload(token, png_bytes(1000, 500), "image/png")
        status, body = await self.request("GET", f"{AUTHED}/thumbnail/{SERVER}/{large_id}", token=token,
                                          query={"width": "64", "height": "64", "method": "scale"})
        self.assertEqual(status, 200)
        self.assertEqual(decode(body).size, (320, 160))
        status, body = await self.request("GET", f"{AUTHED}/thumbnail/{SERVER}/{large_id}", token=token,
                                          query={"width": "800", "height": "600", "method": "scale"})
        self.assertEqual(decode(body).size, (800, 400))

        # JPEG stays JPEG.
        jpeg_id = await self.upload(token, png_bytes(400, 300, "JPEG"), "image/jpeg")
        status, body = await self.request("GET", f"{AUTHED}/thumbnail/{SERVER}/{jpeg_id}", token=token,
                                          query={"width": "96", "height": "96", "method": "crop"})
        self.assertEqual(self.header("Content-Type"), "image/jpeg")
        image = decode(body)
        self.assertEqual((image.format, image.size), ("JPEG", (96, 96)))

    @inline
    async def test_thumbnail_refusals(self):
        token = (await self.register("jack"))["access_token"]
        image_id = await self.upload(token, png_bytes(), "image/png")
        path = f"{AUTHED}/thumbnail/{SERVER}/{image_id}"
        for query in ({"width": "0", "height": "32"}, {"width": "32", "height": "-5"},
                      {"width": "100000", "height": "32"}, {"width": "32", "height": "32", "method": "stretch"},
                      {"width": "abc", "height": "32"}):
            self.assertMatrixError(await self.request("GET", path, token=token, query=query), 400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("GET", path, token=token, query={"height": "32"}),
                               400, "M_MISSING_PARAM")
        for content_type, data in (("text/plain", b"hello"),
                                   ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg"/>'),
                                   ("image/png", b"this is not a png")):
            media_id = await self.upload(token, data, content_type)
            self.assertMatrixError(await self.request("GET", f"{AUTHED}/thumbnail/{SERVER}/{media_id}", token=token,
                                                      query={"width": "32", "height": "32"}), 400, "M_UNKNOWN")
        # A huge request is answered at the largest thumbnail size, not refused.
        big_id = await self.upload(token, png_bytes(3000, 200), "image/png")
        status, body = await self.request("GET", f"{AUTHED}/thumbnail/{SERVER}/{big_id}", token=token,
                                          query={"width": "2500", "height": "2500", "method": "scale"})
        self.assertEqual(status, 200)
        self.assertEqual(decode(body).size, (1600, 107))
        status, body = await self.request("GET", f"{AUTHED}/thumbnail/{SERVER}/{big_id}", token=token,
                                          query={"width": "3000", "height": "1500", "method": "crop"})
        self.assertEqual(status, 200)
        self.assertEqual(decode(body).size, (400, 200))  # 2:1 as asked; the 200px height is not enlarged

    @inline
    async def test_animated_gif_thumbnails(self):
        token = (await self.register("kate"))["access_token"]
        media_id = await self.upload(token, animated_gif_bytes(), "image/gif")
        path = f"{AUTHED}/thumbnail/{SERVER}/{media_id}"
        status, body = await self.request("GET", path, token=token,
                                          query={"width": "32", "height": "32", "method": "crop"})
        self.assertEqual(status, 200)
        still = decode(body)
        self.assertEqual((still.format, still.size, getattr(still, "n_frames", 1)), ("PNG", (32, 32), 1))
        status, body = await self.request("GET", path, token=token,
                                          query={"width": "32", "height": "32", "method": "crop", "animated": "true"})
        self.assertEqual(status, 200)
        moving = Image.open(io.BytesIO(body))
        self.assertEqual(moving.size, (32, 32))
        self.assertGreater(getattr(moving, "n_frames", 1), 1)
        self.assertIn(self.header("Content-Type"), ("image/webp", "image/gif"))
        # Small enough already: an animated request gets the original, a static one a still.
        status, body = await self.request("GET", path, token=token,
                                          query={"width": "800", "height": "600", "animated": "true"})
        self.assertEqual(body, animated_gif_bytes())
        status, body = await self.request("GET", path, token=token, query={"width": "800", "height": "600"})
        self.assertEqual((decode(body).format, decode(body).size), ("PNG", (120, 80)))


class MediaLimitTests(MediaTestMixin):
    config_overrides = {"media": {"max_upload_bytes": 1024}}

    @inline
    async def test_oversize_upload_is_refused_and_nothing_stored(self):
        token = (await self.register("lara"))["access_token"]
        status, body = await self.request("GET", f"{AUTHED}/config", token=token)
        self.assertEqual((status, body), (200, {"m.upload.size": 1024}))

        self.assertMatrixError(await self.request("POST", UPLOAD, raw=b"x" * 1025, token=token,
                                                  headers={"Content-Type": "text/plain"}), 413, "M_TOO_LARGE")
        self.assertMatrixError(await self.request("POST", UPLOAD, raw=b"x" * 100_000, token=token,
                                                  headers={"Content-Type": "text/plain"}), 413, "M_TOO_LARGE")
        status, body = await self.request("POST", CREATE, token=token)
        media_id = body["content_uri"].rsplit("/", 1)[1]
        self.assertMatrixError(await self.request("PUT", f"{UPLOAD}/{SERVER}/{media_id}", raw=b"y" * 2048,
                                                  token=token, headers={"Content-Type": "text/plain"}),
                               413, "M_TOO_LARGE")
        self.assertEqual(self.stored_files(), [])
        self.assertEqual([row[0] for row in await self.media_rows()], [media_id])
        self.assertIsNone((await self.media_rows())[0][1])

        # The limit itself is allowed.
        uploaded = await self.upload(token, b"z" * 1024, "text/plain")
        status, body = await self.request("GET", f"{AUTHED}/download/{SERVER}/{uploaded}", token=token)
        self.assertEqual((status, len(body)), (200, 1024))

    @inline
    async def test_handler_checks_the_size_too(self):
        # The site counts the body as it arrives; the handler checks again, whatever
        # the site was configured with.
        token = (await self.register("mona"))["access_token"]
        self.hs.media_repository.max_upload_bytes = 10
        self.assertMatrixError(await self.request("POST", UPLOAD, raw=b"x" * 11, token=token,
                                                  headers={"Content-Type": "text/plain"}), 413, "M_TOO_LARGE")
        self.assertEqual(await self.media_rows(), [])
        self.assertEqual(self.stored_files(), [])


class S3MediaTests(MediaTestMixin):
    """The same repository with its bytes in an S3 bucket (moto's server, on a free port)."""

    @inline
    async def setUp(self):
        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        self.addCleanup(self.moto.stop)
        host, port = self.moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        self.bucket = f"media-{uuid.uuid4().hex[:12]}"
        self.s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                               aws_access_key_id="test", aws_secret_access_key="test")
        self.s3.create_bucket(Bucket=self.bucket)
        self.config_overrides = {"s3": {"endpoint": endpoint, "region": "us-east-1", "bucket": self.bucket,
                                        "access_key": "test", "secret_key": "test"}}
        await super().setUp()

    def bucket_keys(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=self.bucket)
        return sorted(entry["Key"] for entry in listing.get("Contents", []))

    def bucket_object(self, key: str) -> tuple[bytes, str]:
        response = self.s3.get_object(Bucket=self.bucket, Key=key)
        return response["Body"].read(), response["ContentType"]

    @inline
    async def test_bytes_land_in_the_bucket_and_download(self):
        self.assertEqual(self.hs.media_repository.storage.name, "s3")
        token = (await self.register("nina"))["access_token"]
        data = png_bytes(300, 150)
        media_id = await self.upload(token, data, "image/png", filename="bucket.png")
        key = f"local_content/{media_id[:2]}/{media_id[2:4]}/{media_id[4:]}"
        self.assertEqual(self.bucket_keys(), [key])
        self.assertEqual(self.bucket_object(key), (data, "image/png"))
        self.assertEqual(self.stored_files(), [])  # nothing on local disk

        status, body = await self.request("GET", f"{AUTHED}/download/{SERVER}/{media_id}", token=token)
        self.assertEqual((status, body), (200, data))
        self.assertEqual(self.header("Content-Disposition"), 'inline; filename="bucket.png"')

        # Thumbnails are made from the bucket's copy and kept beside it.
        status, body = await self.request("GET", f"{AUTHED}/thumbnail/{SERVER}/{media_id}", token=token,
                                          query={"width": "32", "height": "32", "method": "crop"})
        self.assertEqual(status, 200, body)
        self.assertEqual(decode(body).size, (32, 32))
        thumb_key = f"local_thumbnails/{media_id[:2]}/{media_id[2:4]}/{media_id[4:]}/32-32-crop"
        self.assertEqual(self.bucket_keys(), [key, thumb_key])
        self.assertEqual(self.bucket_object(thumb_key), (body, "image/png"))
        status, again = await self.request("GET", f"{AUTHED}/thumbnail/{SERVER}/{media_id}", token=token,
                                           query={"width": "32", "height": "32", "method": "crop"})
        self.assertEqual((status, again), (200, body))

    @inline
    async def test_create_then_upload_to_the_bucket(self):
        token = (await self.register("olga"))["access_token"]
        status, body = await self.request("POST", CREATE, token=token)
        media_id = body["content_uri"].rsplit("/", 1)[1]
        self.assertEqual(self.bucket_keys(), [])
        status, body = await self.request("PUT", f"{UPLOAD}/{SERVER}/{media_id}", raw=b"later", token=token,
                                          headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 200, body)
        key = f"local_content/{media_id[:2]}/{media_id[2:4]}/{media_id[4:]}"
        self.assertEqual(self.bucket_object(key), (b"later", "text/plain"))
        status, body = await self.request("GET", f"{LEGACY}/download/{SERVER}/{media_id}")
        self.assertEqual((status, body), (200, b"later"))


class MediaSqliteTests(MediaTests, HomeserverTestCase):
    engine = "sqlite"


class MediaPostgresTests(MediaTests, HomeserverTestCase):
    engine = "postgres"


class MediaLimitSqliteTests(MediaLimitTests, HomeserverTestCase):
    engine = "sqlite"


class MediaLimitPostgresTests(MediaLimitTests, HomeserverTestCase):
    engine = "postgres"


class MediaS3SqliteTests(S3MediaTests, HomeserverTestCase):
    engine = "sqlite"


class MediaS3PostgresTests(S3MediaTests, HomeserverTestCase):
    engine = "postgres"
