-- Same logical change as postgres/0010: the outbox. SQLite has one writer at a time (writes
-- run in BEGIN IMMEDIATE), so AUTOINCREMENT ids are assigned in commit order.
CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    occurred_at  TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    provider_id  TEXT NOT NULL,
    account_id   TEXT,
    data         TEXT NOT NULL
);
CREATE INDEX events_customer ON events (customer_id, id);
