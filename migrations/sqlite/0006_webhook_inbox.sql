-- Same logical change as postgres/0009: the webhook inbox. Timestamps are fixed-width UTC text.
CREATE TABLE webhook_inbox (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    provider_id    TEXT NOT NULL,
    delivery_id    TEXT NOT NULL,
    body           TEXT NOT NULL,
    received_at    TEXT NOT NULL,
    state          TEXT NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'processed', 'ignored', 'failed')),
    reason         TEXT,
    customer_id    TEXT,
    external_id    TEXT,
    processed_at   TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    lease_owner    TEXT,
    lease_expires  TEXT,
    UNIQUE (provider_id, delivery_id)
);
CREATE INDEX webhook_inbox_pending ON webhook_inbox (id) WHERE state = 'pending';
CREATE INDEX webhook_inbox_provider_state ON webhook_inbox (provider_id, state, id);
