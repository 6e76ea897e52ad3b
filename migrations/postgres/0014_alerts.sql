-- Alerts (DESIGN.md "Push", Alerts): a balance query and a bound. The evaluator follows the
-- outbox from `event_cursor`; `version` is the compare-and-set token of every evaluation written,
-- so two replicas evaluating at once write one crossing (`threshold.crossed`), never two.
CREATE TABLE alerts (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    query         TEXT NOT NULL,
    customer_id   TEXT,
    direction     TEXT NOT NULL CHECK (direction IN ('below', 'above')),
    -- Decimal text, exact.
    bound         TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    event_cursor  BIGINT NOT NULL,
    triggered     BOOLEAN,
    last_total    TEXT,
    evaluated_at  TIMESTAMPTZ,
    version       BIGINT NOT NULL DEFAULT 0
);
