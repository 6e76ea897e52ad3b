//! The advisory locks the builders of the past take (the checkpoints of the totals and the
//! marks of the observations), in one place so both take them alike.

use crate::Result;
use crate::error::db_err;

/// The locks of one build step (a checkpoint or a mark of the observations), held until its
/// commit: writes of versions and observations wait (`CHECKPOINT_LOCK_KEY`, theirs shared) and
/// those under way commit first; the prune lock shared: a prune in progress is waited out, and
/// a prune starting waits for the step.
pub(super) async fn lock_step(tx: &mut sqlx::Transaction<'static, sqlx::Postgres>) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1), pg_advisory_xact_lock_shared($2)")
        .bind(crate::CHECKPOINT_LOCK_KEY)
        .bind(crate::PRUNE_LOCK_KEY)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}
