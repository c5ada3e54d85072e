//! How the conformance suite reaches the PostgreSQL backend: each test gets a
//! database of its own on the server `MAILGATE_TEST_POSTGRES` names
//! (`tests/pg.sh` starts a private one). Without it the tests skip with a note,
//! except under `CI=true`, where they fail.

use std::path::Path;
use std::sync::Arc;

use tokio_postgres::NoTls;

use super::{PgStore, Settings};
use crate::store::Backend;
use crate::store::conformance::{Harness, Held};

/// The environment variable naming the test server (a `postgres://` URL).
pub const ENV: &str = "MAILGATE_TEST_POSTGRES";

/// The PostgreSQL backend in the conformance suite.
pub const HARNESS: Harness = Harness { open, count };

/// Whether the suite skips `test` here: no server configured ([`available`]),
/// or the test is [`PENDING`]; either way it says so.
pub fn skip(test: &str) -> bool {
    if !available() {
        return true;
    }
    if let Some((_, why)) = PENDING.iter().find(|(name, _)| *name == test) {
        eprintln!("note: {test} pending for the postgres backend: {why}");
        return true;
    }
    false
}

/// Conformance tests this backend does not pass yet, and why; each is skipped
/// with a note naming it (docs/postgres-progress.md tracks them).
pub const PENDING: &[(&str, &str)] = &[];

/// Whether a test server is configured: a note and `false` without one, a
/// panic without one under `CI=true` (CI never skips these silently).
pub fn available() -> bool {
    if std::env::var(ENV).is_ok_and(|v| !v.is_empty()) {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{ENV} is not set and CI=true: run the tests through tests/pg.sh");
    }
    eprintln!("note: {ENV} not set; PostgreSQL store test skipped (see tests/pg.sh)");
    false
}

fn server_url() -> String {
    std::env::var(ENV).unwrap_or_else(|_| panic!("{ENV} is not set"))
}

/// The database of the test whose directory is `dir`: named after the
/// directory, so reopening the same directory reaches the same data.
fn database(dir: &Path) -> String {
    let name: String = dir
        .to_string_lossy()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    // 63 bytes at most: the unique tail of a temp dir name is at the end.
    let tail = &name[name.len().saturating_sub(54)..];
    format!("mg_test_{tail}")
}

/// `url` with its database replaced by `db`.
fn url_of(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{db}{query}", &base[..host_end])
}

/// Runs async set-up work on a thread of its own with its own runtime: the
/// harness is called synchronously from inside a test's runtime.
fn on_own_runtime<T: Send>(work: impl Future<Output = T> + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(work)
        })
        .join()
        .unwrap()
    })
}

/// Creates (if new) the database of the test whose directory is `dir`; returns
/// its URL.
pub async fn create_database(dir: &Path) -> String {
    let server = server_url();
    let db = database(dir);
    let (client, conn) = tokio_postgres::connect(&server, NoTls).await.unwrap();
    let task = tokio::spawn(conn);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
        .await
        .unwrap()
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE \"{db}\""))
            .await
            .unwrap();
    }
    drop(client);
    let _ = task.await;
    url_of(&server, &db)
}

/// Runs `sql` on the database at `url` on a connection of its own.
pub async fn execute(url: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    let task = tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = task.await;
}

fn open(dir: &Path) -> Arc<dyn Backend> {
    on_own_runtime(async {
        let url = create_database(dir).await;
        // The pool connects on demand, so no connection lives on this runtime.
        let settings = Settings { url, pool_size: 16 };
        Arc::new(PgStore::open(&settings).await.unwrap())
    })
}

fn count(dir: &Path, what: Held) -> i64 {
    let sql = match what {
        Held::Bodies => "SELECT count(*) FROM bodies",
        Held::OrphanBodies => {
            "SELECT count(*) FROM bodies b WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.body_id = b.id)"
        }
        Held::CacheEntries => "SELECT count(*) FROM body_cache",
        Held::Changes => "SELECT count(*) FROM changes",
    };
    let url = url_of(&server_url(), &database(dir));
    on_own_runtime(async {
        let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
        let task = tokio::spawn(conn);
        let n: i64 = client.query_one(sql, &[]).await.unwrap().get(0);
        drop(client);
        let _ = task.await;
        n
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_databases_are_named_by_directory_within_limits() {
        let a = database(Path::new("/tmp/.tmpAbC123"));
        let b = database(Path::new("/tmp/.tmpabc123"));
        assert_ne!(a, b, "case matters in temp dir names");
        assert!(a.len() <= 63, "{a}");
        let long = database(Path::new(&format!("/{}", "x".repeat(200))));
        assert!(long.len() <= 63, "{long}");
    }

    #[test]
    fn urls_get_the_test_database() {
        assert_eq!(
            url_of("postgres://postgres@127.0.0.1:5/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5/t1"
        );
        assert_eq!(
            url_of("postgres://u@h:5?sslmode=disable", "t1"),
            "postgres://u@h:5/t1?sslmode=disable"
        );
    }
}
