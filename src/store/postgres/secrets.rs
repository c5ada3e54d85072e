//! Secrets every daemon on one database must share (the token-signing keys, the
//! generated admin access key), in `shared_secrets`. The first daemon to ask
//! stores its fresh value (`INSERT … ON CONFLICT DO NOTHING`), every daemon then
//! reads the row back, so daemons starting together agree without a lock.

use std::sync::atomic::Ordering;

use super::ops::Sql;
use super::{MAX_RETRIES, Op, OpError, PgStore, Touched, backoff};
use crate::store::{Result, StoreError};

/// Stores `fresh` under `name` unless a value is there, then returns the stored one.
async fn insert_or_read(c: &dyn Sql, name: &str, fresh: &str) -> Op<(String, Touched)> {
    let insert = c
        .prepared("INSERT INTO shared_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .await?;
    c.affected(&insert, &[&name, &fresh]).await?;
    let read = c
        .prepared("SELECT value FROM shared_secrets WHERE name = $1")
        .await?;
    let rows = c.rows(&read, &[&name]).await?;
    let value = rows.first().map(|r| r.get(0)).ok_or_else(|| {
        OpError::Store(StoreError::Io(format!("postgres: secret {name} vanished")))
    })?;
    Ok((value, Vec::new()))
}

impl PgStore {
    /// The secret under `name`, created as `fresh()` if this daemon is first.
    pub(super) fn secret(&self, name: &str, fresh: &dyn Fn() -> String) -> Result<String> {
        let fresh = fresh();
        super::blocking::block_on(async {
            write_tx!(self, |tx| insert_or_read(&tx, name, &fresh))
        })?
    }
}
