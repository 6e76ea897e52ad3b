-- The outbox (DESIGN.md "Push", Out): every change Coffer observes, written in the same
-- transaction as the snapshot (or sync outcome) that shows it. Writers take a transaction-level
-- advisory lock before inserting, so ids are assigned in commit order: a reader that has seen
-- id N never later finds a smaller id committed (the cursor has no gaps).
CREATE TABLE events (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         TEXT NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    customer_id  TEXT NOT NULL,
    provider_id  TEXT NOT NULL,
    account_id   TEXT,
    -- JSON text; money as JSON strings, so it stays exact.
    data         TEXT NOT NULL
);
-- A reader's page: its customers' events after a cursor.
CREATE INDEX events_customer ON events (customer_id, id);
