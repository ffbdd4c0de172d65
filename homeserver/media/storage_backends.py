"""Where media bytes live: local disk or an S3 bucket, behind one small interface.

Keys are relative paths such as ``local_content/ab/cd/efgh…`` (see ``keys`` below); the
same key names the same bytes on every backend. ``store`` returns only once the bytes
are durable: on disk after fsync and an atomic rename, on S3 after PutObject succeeded.
All blocking work (file I/O, boto3) runs in threads so the reactor never waits on it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Protocol

from twisted.internet import threads


class MediaStorage(Protocol):
    """The backend interface the repository uses."""

    name: str

    async def store(self, key: str, data: bytes, content_type: str) -> None:
        """Write ``data`` under ``key`` (replacing any previous bytes); durable on return."""

    async def fetch(self, key: str) -> bytes | None:
        """The bytes under ``key``, or None when there are none."""

    async def delete(self, key: str) -> None:
        """Remove ``key``; no error when it is absent."""


# --- keys -------------------------------------------------------------------------------

def _shard(media_id: str) -> str:
    # Media IDs are [A-Za-z0-9_-] only (checked before any key is built), so they are
    # safe as path segments. Two levels of two characters keep directories small.
    return f"{media_id[0:2]}/{media_id[2:4]}/{media_id[4:]}"


def local_content_key(media_id: str) -> str:
    return f"local_content/{_shard(media_id)}"


def local_thumbnail_key(media_id: str, width: int, height: int, method: str, animated: bool) -> str:
    suffix = "-animated" if animated else ""
    return f"local_thumbnails/{_shard(media_id)}/{width}-{height}-{method}{suffix}"


# --- local disk -------------------------------------------------------------------------

class LocalDiskStorage:
    name = "local"

    def __init__(self, root: Path):
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"media key escapes the store: {key!r}")
        return path

    async def store(self, key: str, data: bytes, content_type: str) -> None:
        await threads.deferToThread(self._store_sync, self.path_for(key), data)

    async def fetch(self, key: str) -> bytes | None:
        return await threads.deferToThread(self._fetch_sync, self.path_for(key))

    async def delete(self, key: str) -> None:
        await threads.deferToThread(self._delete_sync, self.path_for(key))

    @staticmethod
    def _store_sync(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        # The rename is durable once the directory entry is on disk.
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @staticmethod
    def _fetch_sync(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    @staticmethod
    def _delete_sync(path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


# --- S3 -----------------------------------------------------------------------------------

class S3Storage:
    name = "s3"

    def __init__(self, endpoint: str, region: str, bucket: str, access_key: str, secret_key: str,
                 client=None):
        self.bucket = bucket
        if client is None:
            import boto3
            from botocore.config import Config

            options = dict(
                # Path-style works with every S3-compatible store (MinIO, R2, moto);
                # virtual-hosted names need DNS the endpoint may not have.
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=10, read_timeout=60,
                # Checksums only where S3 requires them: some S3-compatible stores
                # reject the flexible-checksum headers of botocore >= 1.36.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
            try:
                config = Config(**options)
            except TypeError:  # botocore older than 1.36 has neither option nor the headers
                del options["request_checksum_calculation"], options["response_checksum_validation"]
                config = Config(**options)
            client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint, region_name=region or None,
                aws_access_key_id=access_key or None, aws_secret_access_key=secret_key or None,
                config=config)
        self._client = client

    async def store(self, key: str, data: bytes, content_type: str) -> None:
        await threads.deferToThread(self._client.put_object, Bucket=self.bucket, Key=key, Body=data,
                                    ContentType=content_type)

    async def fetch(self, key: str) -> bytes | None:
        return await threads.deferToThread(self._fetch_sync, key)

    async def delete(self, key: str) -> None:
        await threads.deferToThread(self._client.delete_object, Bucket=self.bucket, Key=key)

    def _fetch_sync(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        body = response["Body"]
        try:
            return body.read()
        finally:
            body.close()


def storage_from_config(config) -> MediaStorage:
    """S3 when ``s3.endpoint`` and ``s3.bucket`` are set; otherwise ``config.media_path``."""
    s3 = config.s3
    if s3.endpoint and s3.bucket:
        return S3Storage(s3.endpoint, s3.region, s3.bucket, s3.access_key, s3.secret_key)
    return LocalDiskStorage(config.media_path)
