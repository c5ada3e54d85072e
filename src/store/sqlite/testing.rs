//! How the conformance suite reaches the SQLite backend.

use std::path::Path;
use std::sync::Arc;

use super::{SqliteStore, schema};
use crate::store::Backend;
use crate::store::conformance::{Harness, Held};

/// The SQLite backend in the conformance suite: one file in the test's directory.
pub const HARNESS: Harness = Harness { open, count };

fn file(dir: &Path) -> std::path::PathBuf {
    dir.join("store.sqlite")
}

fn open(dir: &Path) -> Arc<dyn Backend> {
    Arc::new(SqliteStore::open(&file(dir)).unwrap())
}

/// Counts on a connection of its own: committed data is visible to it (WAL).
fn count(dir: &Path, what: Held) -> i64 {
    let sql = match what {
        Held::Bodies => "SELECT count(*) FROM bodies",
        Held::OrphanBodies => {
            "SELECT count(*) FROM bodies b WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.body_id = b.id)"
        }
        Held::CacheEntries => "SELECT count(*) FROM body_cache",
        Held::Changes => "SELECT count(*) FROM changes",
    };
    let conn = schema::open_reader(&file(dir)).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}
