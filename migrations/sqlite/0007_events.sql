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

-- Subscriptions and their deliveries, as postgres/0010.
CREATE TABLE subscriptions (
    id             TEXT PRIMARY KEY,
    url            TEXT NOT NULL,
    types          TEXT NOT NULL,
    customer_id    TEXT,
    secret         TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    event_cursor   INTEGER NOT NULL,
    failing_since  TEXT,
    disabled_at    TEXT
);
CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id  TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    event_id         INTEGER NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_status      INTEGER,
    last_error       TEXT,
    last_attempt_at  TEXT,
    delivered_at     TEXT,
    lease_owner      TEXT,
    lease_expires    TEXT,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX deliveries_pending ON deliveries (next_attempt_at) WHERE state = 'pending';
