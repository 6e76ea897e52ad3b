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

-- Subscriptions: events delivered to a URL, signed per Standard Webhooks. `cursor` is the last
-- event id fanned out into `deliveries` (events after it that match are still to deliver).
CREATE TABLE subscriptions (
    id             TEXT PRIMARY KEY,
    url            TEXT NOT NULL,
    -- JSON list of event types; empty: every type.
    types          TEXT NOT NULL,
    customer_id    TEXT,
    secret         TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    event_cursor   BIGINT NOT NULL,
    failing_since  TIMESTAMPTZ,
    disabled_at    TIMESTAMPTZ
);
-- One row per (subscription, event): its attempts, leased like sync pairs.
CREATE TABLE deliveries (
    id               BIGSERIAL PRIMARY KEY,
    subscription_id  TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    event_id         BIGINT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    last_status      INTEGER,
    last_error       TEXT,
    last_attempt_at  TIMESTAMPTZ,
    delivered_at     TIMESTAMPTZ,
    lease_owner      TEXT,
    lease_expires    TIMESTAMPTZ,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX deliveries_pending ON deliveries (next_attempt_at) WHERE state = 'pending';
