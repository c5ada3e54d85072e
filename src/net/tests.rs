//! Accept-loop tests: draining, the per-IP cap's busy reply, the idle timeout, and
//! the PROXY header (before plaintext and implicit TLS, untrusted senders, garbage,
//! stalls, per-IP limits on the declared client), against a line-echo protocol on
//! 127.0.0.1 port 0.

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

/// Says who it thinks the client is (`peer local tls`), then echoes like [`Echo`].
struct WhoAmI;
impl Protocol for WhoAmI {
    fn busy_reply(&self) -> &'static [u8] {
        b"busy\r\n"
    }
    fn serve(self: Arc<Self>, mut session: Session) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let hello = format!(
                "{} {} tls={}\r\n",
                session.peer,
                session.local,
                session.stream.is_tls()
            );
            if session.stream.write_all(hello.as_bytes()).await.is_err() {
                return;
            }
            Arc::new(Echo).serve(session).await
        })
    }
}

/// One listener's counters, shared with the test.
#[derive(Clone, Default)]
struct Stats(ListenerStats);
impl ListenerMetrics for Stats {
    fn listener(&self, _name: &'static str) -> ListenerStats {
        self.0.clone()
    }
}

/// A `WhoAmI` listener expecting PROXY headers from `from`.
async fn proxied_server(
    tls_mode: TlsMode,
    from: &str,
    max_per_ip: usize,
    limits: crate::config::Limits,
) -> (u16, ListenerStats, std::path::PathBuf, tempfile::TempDir) {
    tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let dev = tls::generate_dev_cert(dir.path(), "localhost").unwrap();
    let resolver = Arc::new(CertResolver::default());
    resolver.load(&[dev.pair()]).unwrap();
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let stats = Stats::default();
    let ctx = AcceptContext {
        conn_limits: ConnLimits::new(100, max_per_ip, 0),
        limits: Arc::new(limits),
        tracker: TaskTracker::new(),
        draining: CancellationToken::new(),
        metrics: Arc::new(stats.clone()),
    };
    let bound = BoundListener {
        name: "imaps",
        tls_mode,
        socket,
        protocol: Arc::new(WhoAmI),
        acceptor: TlsAcceptor::from(tls::server_config(resolver, &[])),
        proxy: Some(Arc::new(ProxyPolicy::new(vec![from.parse().unwrap()]))),
    };
    tokio::spawn(accept_loop(bound, ctx));
    (port, stats.0, dev.ca, dir)
}

const V1: &str = "PROXY TCP4 203.0.113.7 10.0.0.1 40000 25\r\n";

/// A v2 PROXY header for a TCP client `src` → `dst` (IPv4 or IPv6 alike).
fn v2_header(src: std::net::SocketAddr, dst: std::net::SocketAddr) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n\x21".to_vec();
    let (family, mut addrs) = match (src.ip(), dst.ip()) {
        (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => {
            (0x11, [s.octets().to_vec(), d.octets().to_vec()].concat())
        }
        (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) => {
            (0x21, [s.octets().to_vec(), d.octets().to_vec()].concat())
        }
        _ => panic!("one family"),
    };
    addrs.extend_from_slice(&src.port().to_be_bytes());
    addrs.extend_from_slice(&dst.port().to_be_bytes());
    h.push(family);
    h.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
    h.extend_from_slice(&addrs);
    h
}

async fn read_line<S: tokio::io::AsyncRead + Unpin>(c: &mut BufReader<S>) -> String {
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), c.read_line(&mut line))
        .await
        .expect("an answer in time")
        .unwrap();
    line
}

/// Reads to the end: what a refused connection got before it was closed.
async fn rest(mut tcp: TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut all))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    all
}

#[tokio::test]
async fn v1_and_v2_headers_name_the_client_and_leave_the_protocol_bytes() {
    let (port, stats, _, _dir) =
        proxied_server(TlsMode::Starttls, "127.0.0.1/32", 10, Default::default()).await;
    // v1, with the client's first line in the same segment.
    let mut c = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    c.get_mut()
        .write_all(format!("{V1}hello\r\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(
        read_line(&mut c).await,
        "203.0.113.7:40000 10.0.0.1:25 tls=false\r\n"
    );
    assert_eq!(
        read_line(&mut c).await,
        "hello\r\n",
        "bytes after the header kept"
    );
    // v2 over IPv6 addresses.
    let mut c = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    let h = v2_header(
        "[2001:db8::7]:40001".parse().unwrap(),
        "[2001:db8::1]:587".parse().unwrap(),
    );
    c.get_mut()
        .write_all(&[h, b"hi\r\n".to_vec()].concat())
        .await
        .unwrap();
    assert_eq!(
        read_line(&mut c).await,
        "[2001:db8::7]:40001 [2001:db8::1]:587 tls=false\r\n"
    );
    assert_eq!(read_line(&mut c).await, "hi\r\n");
    // LOCAL (a health check) and UNKNOWN keep the proxy's own address.
    for header in [
        b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00".to_vec(),
        b"PROXY UNKNOWN\r\n".to_vec(),
    ] {
        let mut c = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
        let own = c.get_ref().local_addr().unwrap();
        c.get_mut().write_all(&header).await.unwrap();
        let line = read_line(&mut c).await;
        assert!(
            line.starts_with(&format!("{own} 127.0.0.1:{port} ")),
            "{line}"
        );
    }
    assert_eq!(stats.proxy_bad_header.get(), 0);
    assert_eq!(stats.proxy_untrusted.get(), 0);
}

#[tokio::test]
async fn the_header_precedes_the_client_hello_on_implicit_tls() {
    let (port, _stats, ca, _dir) =
        proxied_server(TlsMode::Implicit, "127.0.0.1/32", 10, Default::default()).await;
    for header in [
        V1.as_bytes().to_vec(),
        v2_header(
            "203.0.113.7:40000".parse().unwrap(),
            "10.0.0.1:25".parse().unwrap(),
        ),
    ] {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        tcp.write_all(&header).await.unwrap();
        let tls = crate::test_harness::tls_upgrade(&ca, tcp).await;
        let mut c = BufReader::new(tls);
        assert_eq!(
            read_line(&mut c).await,
            "203.0.113.7:40000 10.0.0.1:25 tls=true\r\n"
        );
    }
}

#[tokio::test]
async fn a_peer_not_in_proxy_from_is_closed_without_a_word() {
    let (port, stats, _, _dir) =
        proxied_server(TlsMode::Starttls, "10.0.0.0/8", 10, Default::default()).await;
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // Even with a well-formed header: only the load balancers may declare clients.
    let _ = tcp.write_all(V1.as_bytes()).await;
    assert_eq!(rest(tcp).await, b"");
    assert_eq!(stats.proxy_untrusted.get(), 1);
    assert_eq!(stats.sessions.get(), 0);
}

#[tokio::test]
async fn garbage_or_a_missing_header_closes_without_a_greeting() {
    let (port, stats, _, _dir) =
        proxied_server(TlsMode::Starttls, "127.0.0.1/32", 10, Default::default()).await;
    for bad in [
        &b"EHLO client.example\r\n"[..],
        b"PROXY TCP4 203.0.113.7 10.0.0.1 40000 99999\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        format!("PROXY TCP4 {}", "9".repeat(150)).as_bytes(),
    ] {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        tcp.write_all(bad).await.unwrap();
        assert_eq!(rest(tcp).await, b"", "{bad:?}");
    }
    assert_eq!(stats.proxy_bad_header.get(), 4);
    assert_eq!(stats.connections.get(), 4);
}

#[tokio::test]
async fn a_stalled_header_times_out_while_others_are_served() {
    let limits = crate::config::Limits {
        handshake_timeout_secs: 1,
        ..Default::default()
    };
    let (port, stats, _, _dir) =
        proxied_server(TlsMode::Starttls, "127.0.0.1/32", 10, limits).await;
    let t0 = std::time::Instant::now();
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stalled.write_all(b"PROXY TCP4 203.0.113.").await.unwrap();
    // Meanwhile another client gets through at once.
    let mut c = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    c.get_mut().write_all(V1.as_bytes()).await.unwrap();
    assert!(read_line(&mut c).await.starts_with("203.0.113.7:40000 "));
    assert!(
        t0.elapsed() < Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(rest(stalled).await, b"", "closed without a greeting");
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(stats.proxy_bad_header.get(), 1);
}

#[tokio::test]
async fn per_ip_limits_apply_to_the_declared_client_not_the_balancer() {
    let (port, stats, _, _dir) =
        proxied_server(TlsMode::Starttls, "127.0.0.1/32", 1, Default::default()).await;
    let connect = |client: &'static str| async move {
        let mut c = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
        let h = format!("PROXY TCP4 {client} 10.0.0.1 40000 25\r\n");
        c.get_mut().write_all(h.as_bytes()).await.unwrap();
        let line = read_line(&mut c).await;
        (c, line)
    };
    // Two clients through one balancer address, over a per-IP cap of one.
    let (_a, line) = connect("203.0.113.7").await;
    assert!(line.starts_with("203.0.113.7:"), "{line}");
    let (_b, line) = connect("203.0.113.8").await;
    assert!(line.starts_with("203.0.113.8:"), "{line}");
    // A second connection of one client is over its cap.
    let (_c, line) = connect("203.0.113.7").await;
    assert_eq!(line, "busy\r\n");
    assert_eq!(stats.refused.get(), 1);
}
