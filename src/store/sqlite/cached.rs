//! `query_row` and `execute` through the connection's statement cache.
//!
//! rusqlite's `Connection::query_row` and `execute` compile their SQL on every
//! call; on the delivery path that parse cost as much as the insert it ran.

use rusqlite::{Connection, Params, Row};

/// The cached twins of `Connection::query_row` and `Connection::execute`.
pub(super) trait CachedSql {
    /// `query_row` with the prepared statement kept for the next call.
    fn query_row_cached<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T>;

    /// `execute` with the prepared statement kept for the next call.
    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
}

impl CachedSql for Connection {
    fn query_row_cached<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
}
