//! Accept-loop tests: draining, the per-IP cap's busy reply, the idle timeout,
//! against a line-echo protocol on 127.0.0.1 port 0.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::*;
use crate::config::TlsMode;
use crate::tls::{self, CertResolver};

/// Counters that nothing renders.
struct NoMetrics;
impl ListenerMetrics for NoMetrics {
    fn listener(&self, _name: &'static str) -> ListenerStats {
        ListenerStats::default()
    }
}

/// Echoes lines until the client leaves or the daemon drains; then says "bye".
struct Echo;
impl Protocol for Echo {
    fn busy_reply(&self) -> &'static [u8] {
        b"busy\r\n"
    }
    fn serve(self: Arc<Self>, session: Session) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let mut lines = BufReader::new(session.stream);
            loop {
                let mut line = String::new();
                tokio::select! {
                    r = lines.read_line(&mut line) => {
                        if r.unwrap_or(0) == 0 { return; }
                        lines.get_mut().write_all(line.as_bytes()).await.unwrap();
                    }
                    _ = session.draining.cancelled() => {
                        let _ = lines.get_mut().write_all(b"bye\r\n").await;
                        return;
                    }
                }
            }
        })
    }
}

async fn echo_server(max_per_ip: usize) -> (u16, AcceptContext) {
    echo_server_with(max_per_ip, crate::config::Limits::default()).await
}

async fn echo_server_with(
    max_per_ip: usize,
    limits: crate::config::Limits,
) -> (u16, AcceptContext) {
    tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let dev = tls::generate_dev_cert(dir.path(), "localhost").unwrap();
    let resolver = Arc::new(CertResolver::default());
    resolver.load(&[dev.pair()]).unwrap();
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let ctx = AcceptContext {
        conn_limits: ConnLimits::new(100, max_per_ip, 0),
        limits: Arc::new(limits),
        tracker: TaskTracker::new(),
        draining: CancellationToken::new(),
        metrics: Arc::new(NoMetrics),
    };
    let bound = BoundListener {
        name: "smtp",
        tls_mode: TlsMode::Starttls,
        socket,
        protocol: Arc::new(Echo),
        acceptor: TlsAcceptor::from(tls::server_config(resolver, &[])),
        proxy: None,
    };
    tokio::spawn(accept_loop(bound, ctx.clone()));
    (port, ctx)
}

#[tokio::test]
async fn draining_stops_accepting_and_lets_sessions_finish() {
    let (port, ctx) = echo_server(10).await;
    let mut live = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    live.get_mut().write_all(b"hello\r\n").await.unwrap();
    let mut line = String::new();
    live.read_line(&mut line).await.unwrap();
    assert_eq!(line, "hello\r\n");

    ctx.draining.cancel();
    ctx.tracker.close();
    line.clear();
    live.read_line(&mut line).await.unwrap();
    assert_eq!(line, "bye\r\n", "the session is told to finish");
    tokio::time::timeout(Duration::from_secs(2), ctx.tracker.wait())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn over_the_per_ip_limit_gets_the_busy_reply() {
    let (port, ctx) = echo_server(1).await;
    let _first = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut second = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut reply = String::new();
    second.read_to_string(&mut reply).await.unwrap();
    assert_eq!(reply, "busy\r\n");
    assert_eq!(ctx.conn_limits.total(), 1);
}

#[tokio::test]
async fn a_silent_client_is_cut_at_the_idle_timeout() {
    let limits = crate::config::Limits {
        idle_timeout_secs: 1,
        ..Default::default()
    };
    let (port, ctx) = echo_server_with(10, limits).await;
    let mut c = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    // Activity keeps the session alive past the timeout...
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        c.get_mut().write_all(b"ping\r\n").await.unwrap();
        let mut line = String::new();
        c.read_line(&mut line).await.unwrap();
        assert_eq!(line, "ping\r\n");
    }
    // ...silence ends it.
    let t0 = std::time::Instant::now();
    let mut rest = String::new();
    let n = tokio::time::timeout(Duration::from_secs(3), c.read_to_string(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "closed without a word from the echo protocol");
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    tokio::time::timeout(Duration::from_secs(1), async {
        while ctx.conn_limits.total() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
}
