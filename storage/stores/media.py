"""Media: the rows describing uploaded content (media_local) and its thumbnails (media_thumbnails).

The bytes themselves are in a storage backend (``homeserver.media.storage_backends``);
callers write them there before they write the row here.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import DatabasePool, Transaction


@dataclass(frozen=True)
class LocalMedia:
    media_id: str
    uploader: str
    created_ts: int
    upload_ts: int | None
    unused_expires_ts: int | None
    content_type: str | None
    upload_name: str | None
    size_bytes: int | None
    sha256: str | None

    @property
    def uploaded(self) -> bool:
        return self.upload_ts is not None


@dataclass(frozen=True)
class ThumbnailRecord:
    media_id: str
    width: int
    height: int
    method: str
    animated: bool
    content_type: str
    size_bytes: int
    created_ts: int


_MEDIA_COLUMNS = ("media_id, uploader, created_ts, upload_ts, unused_expires_ts, content_type, upload_name,"
                  " size_bytes, sha256")
_THUMB_COLUMNS = "media_id, width, height, method, animated, content_type, size_bytes, created_ts"


def _media(row) -> LocalMedia | None:
    if row is None:
        return None
    return LocalMedia(*row)


def _thumbnail(row) -> ThumbnailRecord | None:
    if row is None:
        return None
    return ThumbnailRecord(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6], row[7])


def get_local_media_txn(txn: Transaction, media_id: str) -> LocalMedia | None:
    return _media(txn.select_one(f"SELECT {_MEDIA_COLUMNS} FROM media_local WHERE media_id = ?", (media_id,)))


class MediaStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def get_local_media(self, media_id: str) -> LocalMedia | None:
        return await self.db.run_interaction("get_local_media", get_local_media_txn, media_id)

    async def insert_uploaded_media(self, media_id: str, uploader: str, now: int, content_type: str,
                                    upload_name: str | None, size_bytes: int, sha256: str) -> None:
        """A direct upload (POST /upload): the row, with its content, in one go."""
        def txn_func(txn: Transaction) -> None:
            txn.execute(
                f"INSERT INTO media_local ({_MEDIA_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (media_id, uploader, now, now, None, content_type, upload_name, size_bytes, sha256))
        await self.db.run_interaction("insert_uploaded_media", txn_func)

    async def create_pending_media(self, media_id: str, uploader: str, now: int, expires_ts: int,
                                   max_pending: int) -> bool:
        """Reserve an ID for a later upload (POST /create); False when the user already
        holds ``max_pending`` unexpired reservations."""
        def txn_func(txn: Transaction) -> bool:
            pending = txn.select_one(
                "SELECT COUNT(*) FROM media_local WHERE uploader = ? AND upload_ts IS NULL"
                " AND unused_expires_ts > ?", (uploader, now))[0]
            if pending >= max_pending:
                return False
            txn.execute(
                f"INSERT INTO media_local ({_MEDIA_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (media_id, uploader, now, None, expires_ts, None, None, None, None))
            return True
        return await self.db.run_interaction("create_pending_media", txn_func)

    async def complete_pending_upload(self, media_id: str, uploader: str, now: int, content_type: str,
                                      upload_name: str | None, size_bytes: int, sha256: str) -> bool:
        """Fill a reserved ID with its content; False if it was filled (or lapsed) meanwhile."""
        def txn_func(txn: Transaction) -> bool:
            txn.execute(
                "UPDATE media_local SET upload_ts = ?, content_type = ?, upload_name = ?, size_bytes = ?,"
                " sha256 = ?, unused_expires_ts = NULL"
                " WHERE media_id = ? AND uploader = ? AND upload_ts IS NULL AND unused_expires_ts > ?",
                (now, content_type, upload_name, size_bytes, sha256, media_id, uploader, now))
            return txn.rowcount == 1
        return await self.db.run_interaction("complete_pending_upload", txn_func)

    async def get_thumbnail(self, media_id: str, width: int, height: int, method: str,
                            animated: bool) -> ThumbnailRecord | None:
        def txn_func(txn: Transaction) -> ThumbnailRecord | None:
            return _thumbnail(txn.select_one(
                f"SELECT {_THUMB_COLUMNS} FROM media_thumbnails"
                " WHERE media_id = ? AND width = ? AND height = ? AND method = ? AND animated = ?",
                (media_id, width, height, method, animated)))
        return await self.db.run_interaction("get_thumbnail", txn_func)

    async def count_thumbnails(self, media_id: str) -> int:
        def txn_func(txn: Transaction) -> int:
            return txn.select_one("SELECT COUNT(*) FROM media_thumbnails WHERE media_id = ?", (media_id,))[0]
        return await self.db.run_interaction("count_thumbnails", txn_func)

    async def insert_thumbnail(self, record: ThumbnailRecord) -> None:
        def txn_func(txn: Transaction) -> None:
            txn.execute(
                f"INSERT INTO media_thumbnails ({_THUMB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (media_id, width, height, method, animated) DO NOTHING",
                (record.media_id, record.width, record.height, record.method, record.animated,
                 record.content_type, record.size_bytes, record.created_ts))
        await self.db.run_interaction("insert_thumbnail", txn_func)
