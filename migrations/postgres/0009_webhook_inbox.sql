-- The webhook inbox (DESIGN.md "Push", In): every provider delivery is kept here before it is
-- answered, then processed under a lease by any replica. P100 sends no delivery id, so
-- `delivery_id` is derived from the body (SHA-256 of the provider id and the raw body): a
-- retried delivery hits the unique constraint and is kept once.
CREATE TABLE webhook_inbox (
    id             BIGSERIAL PRIMARY KEY,
    provider_id    TEXT NOT NULL,
    delivery_id    TEXT NOT NULL,
    body           TEXT NOT NULL,
    received_at    TIMESTAMPTZ NOT NULL,
    state          TEXT NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'processed', 'ignored', 'failed')),
    reason         TEXT,
    customer_id    TEXT,
    external_id    TEXT,
    processed_at   TIMESTAMPTZ,
    attempts       INTEGER NOT NULL DEFAULT 0,
    lease_owner    TEXT,
    lease_expires  TIMESTAMPTZ,
    UNIQUE (provider_id, delivery_id)
);
-- The processor's scan: only deliveries still to process, oldest first.
CREATE INDEX webhook_inbox_pending ON webhook_inbox (id) WHERE state = 'pending';
-- The admin listing's filters.
CREATE INDEX webhook_inbox_provider_state ON webhook_inbox (provider_id, state, id);
