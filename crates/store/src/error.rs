//! Mapping sqlx errors to [`StoreError`]: what the API turns into 404, 409 and 503.

use crate::StoreError;

/// SQLSTATE classes and codes that mean "the database went away or refuses connections for
/// now": connection exceptions (08xxx), operator intervention (57P01 admin shutdown, 57P02
/// crash shutdown, 57P03 cannot connect now), too many connections (53300), and the transient
/// concurrency failures a retry fixes (40001 serialization, 40P01 deadlock).
fn transient_sqlstate(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57P") || matches!(code, "53300" | "40001" | "40P01")
}

/// SQLite's "database is busy/locked" primary codes (5, 6) and their extended codes.
fn sqlite_busy(code: &str) -> bool {
    code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
}

/// The generic mapping. Callers that know what a unique or foreign-key violation means in
/// context (which customer, which link) check [`violation`] first.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    match &e {
        E::Io(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed | E::Tls(_) => {
            StoreError::Unavailable(e.to_string())
        }
        // A connection killed mid-conversation can surface as a protocol error.
        E::Protocol(_) => StoreError::Unavailable(e.to_string()),
        E::Database(db) => {
            let code = db.code().unwrap_or_default();
            if transient_sqlstate(&code) || sqlite_busy(&code) {
                return StoreError::Unavailable(db.message().to_owned());
            }
            match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => StoreError::Conflict(format!(
                    "already exists ({})",
                    db.constraint().unwrap_or(db.message())
                )),
                sqlx::error::ErrorKind::ForeignKeyViolation => StoreError::NotFound {
                    what: "customer".to_owned(),
                },
                _ => StoreError::Other(e.to_string()),
            }
        }
        E::RowNotFound => StoreError::NotFound {
            what: "row".to_owned(),
        },
        E::ColumnDecode { .. } | E::Decode(_) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Other(e.to_string()),
    }
}

/// What kind of constraint an error violated, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Violation {
    Unique,
    ForeignKey,
}

pub(crate) fn violation(e: &sqlx::Error) -> Option<Violation> {
    match e {
        sqlx::Error::Database(db) => match db.kind() {
            sqlx::error::ErrorKind::UniqueViolation => Some(Violation::Unique),
            sqlx::error::ErrorKind::ForeignKeyViolation => Some(Violation::ForeignKey),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes() {
        assert!(transient_sqlstate("57P01"));
        assert!(transient_sqlstate("08006"));
        assert!(!transient_sqlstate("23505"));
        assert!(sqlite_busy("5"));
        assert!(sqlite_busy("517"));
        assert!(!sqlite_busy("2067"));
    }

    #[test]
    fn lost_connections_are_retryable() {
        assert!(db_err(sqlx::Error::PoolTimedOut).is_retryable());
        assert!(db_err(sqlx::Error::Io(std::io::ErrorKind::BrokenPipe.into())).is_retryable());
        assert!(!db_err(sqlx::Error::RowNotFound).is_retryable());
    }
}
