-- Live replicas, so each can take its share of a provider's quota (DESIGN.md: the quota
-- belongs to the whole deployment). A replica renews its row while it runs; a row past
-- `expires_at` is a replica that stopped.
CREATE TABLE replicas (
    owner       TEXT PRIMARY KEY,
    expires_at  TIMESTAMPTZ NOT NULL
);
