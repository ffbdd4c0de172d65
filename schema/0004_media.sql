-- The media repository: content uploaded to this server, and the thumbnails made of it.
-- The bytes live in a storage backend (local disk or S3) under keys derived from the
-- media ID; these rows say what the bytes are. A row is written only after its bytes are
-- durable, so a row with upload_ts set always has content behind it.

CREATE TABLE media_local (
    media_id TEXT PRIMARY KEY,
    uploader TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    -- NULL while the ID was only created (POST /create) and nothing is uploaded yet
    upload_ts BIGINT,
    -- when an unused created ID lapses; NULL for direct uploads
    unused_expires_ts BIGINT,
    content_type TEXT,
    upload_name TEXT,
    size_bytes BIGINT,
    sha256 TEXT
);
CREATE INDEX media_local_uploader ON media_local (uploader, created_ts);

-- Thumbnails made on demand. (width, height, method, animated) is the box asked for
-- after rounding to the standard sizes, not the dimensions of the image produced.
CREATE TABLE media_thumbnails (
    media_id TEXT NOT NULL REFERENCES media_local (media_id),
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    method TEXT NOT NULL,
    animated BOOLEAN NOT NULL DEFAULT FALSE,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (media_id, width, height, method, animated)
);
