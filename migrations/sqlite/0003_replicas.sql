-- Same logical change as postgres/0003: live replicas. SQLite serves one replica, but the
-- schema is kept in step.
CREATE TABLE replicas (
    owner       TEXT PRIMARY KEY,
    expires_at  TEXT NOT NULL
);
