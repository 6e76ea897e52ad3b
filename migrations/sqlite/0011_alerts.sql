-- Same logical change as postgres/0014: alerts, evaluated by compare-and-set on `version`.
CREATE TABLE alerts (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    query         TEXT NOT NULL,
    customer_id   TEXT,
    direction     TEXT NOT NULL CHECK (direction IN ('below', 'above')),
    bound         TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    event_cursor  INTEGER NOT NULL,
    triggered     INTEGER,
    last_total    TEXT,
    evaluated_at  TEXT,
    version       INTEGER NOT NULL DEFAULT 0
);
