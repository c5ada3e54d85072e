//! IMAP load generator for tests/load/imap.sh (not a test). Speaks plain IMAP4rev1
//! over implicit TLS, so the same workload runs unchanged against mailgate and
//! Dovecot; the server's certificate is verified against `--ca`.
//!
//! Modes:
//! - `hash --pass P`: the argon2id PHC string mailgate would store for P (Dovecot
//!   verifies the same string, so both servers pay the same login cost).
//! - `fill`: APPENDs `--count` messages of `--size` bytes to INBOX.
//! - `run`: `--sessions` parallel sessions, each doing `--rounds` rounds of: LOGIN,
//!   SELECT INBOX, FETCH the headers of every message, 20 single-message STOREs,
//!   1 APPEND, 5 full-body FETCHes, LOGOUT. Prints `ops=N secs=S` (one op = one
//!   tagged command completed OK).
//! - `idle`: opens `--connections` sessions, LOGIN + SELECT + IDLE on each, prints
//!   `idling=N`, holds them `--hold` seconds, then closes them.
//!
//! Common flags: --addr 127.0.0.1:PORT --ca FILE --user U --pass P.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

fn flag(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn num(name: &str, default: u64) -> u64 {
    flag(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn required(name: &str) -> String {
    flag(name).unwrap_or_else(|| {
        eprintln!("imap_bench: missing {name}");
        std::process::exit(2)
    })
}

/// One client connection: tagged commands, responses read up to the tagged line.
struct Client {
    io: BufReader<TlsStream<TcpStream>>,
    tag: u64,
}

impl Client {
    async fn connect(addr: &str, tls: &TlsConnector) -> std::io::Result<Client> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let stream = tls.connect(name, tcp).await?;
        let mut c = Client {
            io: BufReader::new(stream),
            tag: 0,
        };
        let greeting = c.line().await?;
        if !greeting.starts_with("* OK") {
            return Err(other(format!("greeting: {greeting}")));
        }
        Ok(c)
    }

    /// Reads one response line, with any literals it announces appended.
    async fn line(&mut self) -> std::io::Result<String> {
        let mut out = String::new();
        loop {
            let mut l = String::new();
            if self.io.read_line(&mut l).await? == 0 {
                return Err(other("connection closed".into()));
            }
            out.push_str(&l);
            let t = l.trim_end();
            let literal = t
                .strip_suffix('}')
                .and_then(|s| s.rsplit_once('{'))
                .and_then(|(_, n)| n.trim_end_matches('+').parse::<usize>().ok());
            match literal {
                Some(n) => {
                    let mut buf = vec![0u8; n];
                    self.io.read_exact(&mut buf).await?;
                    out.push_str(&String::from_utf8_lossy(&buf));
                }
                None => return Ok(out),
            }
        }
    }

    /// Sends a command and reads until its tagged reply; Err unless it is OK.
    async fn cmd(&mut self, command: &str) -> std::io::Result<Vec<String>> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        self.io
            .get_mut()
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        self.until_tagged(&tag, command).await
    }

    async fn until_tagged(&mut self, tag: &str, what: &str) -> std::io::Result<Vec<String>> {
        let mut lines = Vec::new();
        loop {
            let l = self.line().await?;
            if let Some(rest) = l.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
                if rest.starts_with("OK") {
                    return Ok(lines);
                }
                return Err(other(format!("{what}: {}", l.trim_end())));
            }
            lines.push(l);
        }
    }

    /// APPEND with a synchronizing literal.
    async fn append(&mut self, message: &[u8]) -> std::io::Result<()> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        let head = format!("{tag} APPEND INBOX (\\Seen) {{{}}}\r\n", message.len());
        self.io.get_mut().write_all(head.as_bytes()).await?;
        let cont = self.line().await?;
        if !cont.starts_with('+') {
            return Err(other(format!("APPEND: {}", cont.trim_end())));
        }
        self.io.get_mut().write_all(message).await?;
        self.io.get_mut().write_all(b"\r\n").await?;
        self.until_tagged(&tag, "APPEND").await.map(|_| ())
    }
}

fn other(msg: String) -> std::io::Error {
    std::io::Error::other(msg)
}

fn connector() -> TlsConnector {
    let ca = std::fs::read(required("--ca")).expect("read --ca");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&ca) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

fn message(n: u64, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Load <load@remote.test>\r\nTo: bench@load.test\r\nSubject: bench message {n}\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bench-{n}@remote.test>\r\n\r\n"
    )
    .into_bytes();
    while m.len() < size {
        m.extend_from_slice(b"The quick brown fox jumps over the lazy dog. 0123456789\r\n");
    }
    m
}

async fn login(addr: &str, tls: &TlsConnector, user: &str, pass: &str) -> std::io::Result<Client> {
    let mut c = Client::connect(addr, tls).await?;
    c.cmd(&format!("LOGIN \"{user}\" \"{pass}\"")).await?;
    Ok(c)
}

/// One round of the workload; returns the number of commands completed.
async fn round(
    addr: &str,
    tls: &TlsConnector,
    user: &str,
    pass: &str,
    size: usize,
) -> std::io::Result<u64> {
    let mut c = login(addr, tls, user, pass).await?;
    let mut ops = 1;
    let sel = c.cmd("SELECT INBOX").await?;
    ops += 1;
    let exists: u64 = sel
        .iter()
        .find_map(|l| {
            l.strip_prefix("* ")?
                .strip_suffix(" EXISTS\r\n")?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    if exists == 0 {
        return Err(other("INBOX is empty: run fill first".into()));
    }
    let fetched = c
        .cmd("FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID)])")
        .await?;
    if (fetched.len() as u64) < exists {
        return Err(other(format!(
            "FETCH returned {} responses for {exists} messages",
            fetched.len()
        )));
    }
    ops += 1;
    for i in 0..20 {
        let seq = 1 + (i * 37) % exists;
        let op = if i % 2 == 0 { "+" } else { "-" };
        c.cmd(&format!("STORE {seq} {op}FLAGS.SILENT (\\Flagged)"))
            .await?;
        ops += 1;
    }
    c.append(&message(exists + 1, size)).await?;
    ops += 1;
    for i in 0..5 {
        let seq = 1 + (i * 101) % exists;
        c.cmd(&format!("FETCH {seq} BODY.PEEK[]")).await?;
        ops += 1;
    }
    c.cmd("LOGOUT").await?;
    Ok(ops + 1)
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mode = std::env::args().nth(1).unwrap_or_default();
    if mode == "hash" {
        use argon2::PasswordHasher;
        let salt = argon2::password_hash::SaltString::generate(
            &mut argon2::password_hash::rand_core::OsRng,
        );
        let hash = argon2::Argon2::default()
            .hash_password(required("--pass").as_bytes(), &salt)
            .expect("argon2");
        println!("{hash}");
        return;
    }
    let (addr, user, pass) = (required("--addr"), required("--user"), required("--pass"));
    let tls = connector();
    let size = num("--size", 5120) as usize;
    match mode.as_str() {
        "fill" => {
            let mut c = login(&addr, &tls, &user, &pass).await.expect("login");
            for n in 0..num("--count", 1000) {
                c.append(&message(n, size)).await.expect("APPEND");
            }
            c.cmd("LOGOUT").await.expect("LOGOUT");
        }
        "run" => {
            let (sessions, rounds) = (num("--sessions", 10), num("--rounds", 5));
            let ops = Arc::new(AtomicU64::new(0));
            let t0 = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..sessions {
                let (addr, user, pass, tls, ops) = (
                    addr.clone(),
                    user.clone(),
                    pass.clone(),
                    tls.clone(),
                    ops.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    for _ in 0..rounds {
                        let n = round(&addr, &tls, &user, &pass, size).await?;
                        ops.fetch_add(n, Ordering::Relaxed);
                    }
                    Ok::<(), std::io::Error>(())
                }));
            }
            for t in tasks {
                if let Err(e) = t.await.expect("session task") {
                    eprintln!("imap_bench: {e}");
                    std::process::exit(1);
                }
            }
            let secs = t0.elapsed().as_secs_f64();
            println!("ops={} secs={secs:.3}", ops.load(Ordering::Relaxed));
        }
        "idle" => {
            let (n, hold) = (num("--connections", 1000), num("--hold", 10));
            // At most 64 logins in flight: a burst of 10,000 TLS handshakes would only
            // measure the accept queue.
            let logins = Arc::new(tokio::sync::Semaphore::new(64));
            let idling = Arc::new(AtomicU64::new(0));
            let (done_tx, _) = tokio::sync::broadcast::channel::<()>(1);
            let mut tasks = Vec::new();
            for _ in 0..n {
                let (addr, user, pass, tls) =
                    (addr.clone(), user.clone(), pass.clone(), tls.clone());
                let (logins, idling) = (logins.clone(), idling.clone());
                let mut done = done_tx.subscribe();
                tasks.push(tokio::spawn(async move {
                    let permit = logins.acquire_owned().await.unwrap();
                    let mut c = login(&addr, &tls, &user, &pass).await?;
                    c.cmd("SELECT INBOX").await?;
                    c.io.get_mut().write_all(b"i IDLE\r\n").await?;
                    let cont = c.line().await?;
                    if !cont.starts_with('+') {
                        return Err(other(format!("IDLE: {}", cont.trim_end())));
                    }
                    drop(permit);
                    idling.fetch_add(1, Ordering::Relaxed);
                    let _ = done.recv().await;
                    Ok::<Client, std::io::Error>(c)
                }));
            }
            let t0 = Instant::now();
            while idling.load(Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Some(t) = tasks.iter_mut().find(|t| t.is_finished()) {
                    let why = match t.await {
                        Ok(Err(e)) => e.to_string(),
                        Ok(Ok(_)) => "ended early".to_string(),
                        Err(e) => e.to_string(),
                    };
                    eprintln!("imap_bench: a session failed before IDLE: {why}");
                    std::process::exit(1);
                }
            }
            println!("idling={n} after {:.1}s", t0.elapsed().as_secs_f64());
            tokio::time::sleep(Duration::from_secs(hold)).await;
            let _ = done_tx.send(());
            for t in tasks {
                let _ = t.await;
            }
        }
        _ => {
            eprintln!("usage: imap_bench hash|fill|run|idle --addr A --ca F --user U --pass P ...");
            std::process::exit(2);
        }
    }
}
