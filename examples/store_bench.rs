//! Store micro-benchmark: durable 5 KiB message inserts per second with 1 and 50
//! concurrent writers, next to the raw fdatasync rate of the same disk.
//! Run by tests/load/store.sh (release build); not a test.

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailgate::store::{FolderKind, FolderRef, Target};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Appends 5 KiB and fdatasyncs, for `secs`: what one fsync per message would allow.
fn raw_fsync_rate(dir: &std::path::Path, secs: u64) -> f64 {
    let path = dir.join("fsync-probe");
    let f = std::fs::File::create(&path).unwrap();
    let block = vec![b'x'; 5 * 1024];
    let (mut n, mut off) = (0u64, 0u64);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        f.write_all_at(&block, off).unwrap();
        f.sync_data().unwrap();
        off += block.len() as u64;
        n += 1;
    }
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    rate
}

async fn insert_rate(dir: &std::path::Path, writers: u64, messages: u64) -> (f64, f64) {
    let path = dir.join(format!("bench-{writers}.sqlite"));
    let store = mailgate::store::open_embedded(&path).unwrap();
    store.create_mailbox("bench", u64::MAX / 4).await.unwrap();
    let body: Arc<[u8]> = Arc::from(vec![b'm'; 5 * 1024]);
    let commits0 = store
        .writer_stats()
        .commits
        .load(std::sync::atomic::Ordering::Relaxed);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (store, body) = (store.clone(), body.clone());
        let per = messages / writers;
        tasks.push(tokio::spawn(async move {
            for _ in 0..per {
                let target = Target {
                    folder: FolderRef::Kind("bench".into(), FolderKind::Inbox),
                    flags: vec![],
                    properties: Vec::new(),
                };
                store.deliver(body.clone(), 0, vec![target]).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    let done = (messages / writers) * writers;
    let commits = store
        .writer_stats()
        .commits
        .load(std::sync::atomic::Ordering::Relaxed)
        - commits0;
    drop(store);
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
    (done as f64 / secs, done as f64 / commits.max(1) as f64)
}

#[tokio::main]
async fn main() {
    let dir = std::env::args()
        .skip_while(|a| a != "--dir")
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("mailgate-store-bench"));
    std::fs::create_dir_all(&dir).unwrap();
    let messages = arg("--messages", 5000);
    let fsync = raw_fsync_rate(&dir, 3);
    println!("disk: {}", dir.display());
    println!("raw fdatasync of 5 KiB appends: {fsync:.0}/s");
    for writers in [1, 50] {
        let n = if writers == 1 { messages / 5 } else { messages };
        let (rate, per_commit) = insert_rate(&dir, writers, n).await;
        println!(
            "store inserts, {writers:>2} writer(s): {rate:>8.0} msg/s  ({per_commit:.1} msgs per commit; {:.2}x the raw fsync rate)",
            rate / fsync
        );
    }
    std::io::stdout().flush().unwrap();
}
