//! kill -9 during a burst of SMTP deliveries: after a restart, every message that
//! got its 250 is in the mailbox exactly once, and the store is consistent.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailgate::directory::Directory;
use mailgate::store::FolderKind;

use crate::harness::{Running, config_text};

fn expect(r: &mut BufReader<TcpStream>, code: &str) -> bool {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return line.starts_with(code);
        }
    }
}

/// Sends messages one after another on one connection until it breaks; records
/// the subjects that got a 250 after DATA.
fn sender(port: u16, worker: usize, acked: Arc<Mutex<Vec<String>>>) {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    if !expect(&mut r, "220")
        || w.write_all(b"EHLO crash.test\r\n").is_err()
        || !expect(&mut r, "250")
    {
        return;
    }
    for i in 0.. {
        let subject = format!("w{worker}-m{i}");
        let envelope = b"MAIL FROM:<load@remote.test>\r\nRCPT TO:<sink@crash.test>\r\nDATA\r\n";
        if w.write_all(envelope).is_err()
            || !expect(&mut r, "250")
            || !expect(&mut r, "250")
            || !expect(&mut r, "354")
        {
            return;
        }
        let body = format!("Subject: {subject}\r\n\r\n{}\r\n.\r\n", "x".repeat(2000));
        if w.write_all(body.as_bytes()).is_err() || !expect(&mut r, "250") {
            return;
        }
        acked.lock().unwrap().push(subject);
    }
}

#[test]
fn every_acknowledged_message_survives_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    crate::harness::seed_user(&data, "crash.test", "sink");
    let cfg = dir.path().join("mailgate.toml");
    std::fs::write(&cfg, config_text(&data, "")).unwrap();
    let d = Running::start_with(dir, &cfg);
    let port = d.port("smtp");
    let acked = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let acked = acked.clone();
            std::thread::spawn(move || sender(port, w, acked))
        })
        .collect();
    // Let deliveries flow, then kill without warning.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 200 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    unsafe { libc::kill(d.child.id() as i32, libc::SIGKILL) };
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 200,
        "deliveries were flowing when the daemon was killed ({})",
        acked.len()
    );

    // Restart on the same data: the store opens cleanly and holds every acked message once.
    let mut d = d;
    d.restart();
    let store = mailgate::store::open_embedded(&d.dir.path().join("data/store.sqlite")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let subjects: Vec<String> = rt.block_on(async {
        let d = Directory::open(store.clone()).unwrap();
        let user = match d.resolve_address("sink@crash.test").unwrap() {
            mailgate::directory::Recipient::User { id, .. } => id,
            other => panic!("{other:?}"),
        };
        let folder = store
            .folders(&user)
            .await
            .unwrap()
            .into_iter()
            .find(|f| f.kind == Some(FolderKind::Inbox))
            .unwrap();
        let mut out = Vec::new();
        for m in store.messages(folder.id, 1, u32::MAX).await.unwrap() {
            let body = store.body(m.body_id).await.unwrap();
            let text = String::from_utf8_lossy(&body).into_owned();
            let subject = text
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap()
                .to_string();
            out.push(subject);
        }
        out
    });
    for s in &acked {
        assert_eq!(
            subjects.iter().filter(|x| *x == s).count(),
            1,
            "acknowledged {s} must be stored exactly once"
        );
    }
    let mut unique = subjects.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), subjects.len(), "no message stored twice");
}
