//! Secrets every daemon on one database must share (the token-signing keys, the
//! generated admin access key), in `shared_secrets`. The first daemon to ask
//! stores its fresh value (`INSERT … ON CONFLICT DO NOTHING`), every daemon then
//! reads the row back, so daemons starting together agree without a lock.
//! A rotation replaces the row only if it still holds what the rotating daemon
//! read, and moves the `secrets` version row the other daemons poll.

use std::sync::atomic::Ordering;

use super::ops::Sql;
use super::versions::{self, Kind};
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

/// Replaces `name`'s value with `new` if it still is `expected`, moving the
/// `secrets` version row; returns whether it did.
async fn replace(c: &dyn Sql, name: &str, expected: &str, new: &str) -> Op<(bool, Touched)> {
    let update = c
        .prepared("UPDATE shared_secrets SET value = $3 WHERE name = $1 AND value = $2")
        .await?;
    let done = c.affected(&update, &[&name, &expected, &new]).await? == 1;
    if done {
        versions::bump(c, Kind::Secrets).await?;
    }
    Ok((done, Vec::new()))
}

impl PgStore {
    /// The secret under `name`, created as `fresh()` if this daemon is first.
    pub(super) fn secret(&self, name: &str, fresh: &dyn Fn() -> String) -> Result<String> {
        let fresh = fresh();
        super::blocking::block_on(async {
            write_tx!(self, |tx| insert_or_read(&tx, name, &fresh))
        })?
    }

    /// Rotates the secret under `name` (see [`replace`]) and, when it did, tells
    /// the other daemons.
    pub(super) fn replace_secret(&self, name: &str, expected: &str, new: &str) -> Result<bool> {
        let done = super::blocking::block_on(async {
            write_tx!(self, |tx| replace(&tx, name, expected, new))
        })??;
        if done {
            self.publish_state(crate::store::StateChange::Secrets);
        }
        Ok(done)
    }
}
