-- Application services: what has been queued for each, and the queued transactions.

-- Per service: every event after stream_position is still to be looked at (and queued
-- if the service is interested); last_txn_id is the ID the latest queued transaction
-- got (IDs only increase, so the service never sees one reused).
CREATE TABLE appservice_streams (
    service_id TEXT PRIMARY KEY,
    stream_position BIGINT NOT NULL,
    last_txn_id BIGINT NOT NULL DEFAULT 0
);

-- Transactions stored before the first attempt to push them and deleted once the service
-- took them: a restart resumes them, and a retry sends the very same body.
CREATE TABLE appservice_txns (
    service_id TEXT NOT NULL,
    txn_id BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (service_id, txn_id)
);
