//! Accept loops: admission against the limits, the PROXY header on listeners behind
//! a load balancer, implicit TLS handshakes, and the hand-off of each connection to
//! its protocol's session.
//!
//! Owns [`Stream`], [`Session`], the [`Protocol`] trait and the accept loop; knows
//! nothing of any protocol or of where its metrics are rendered.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::limits::{ConnLimits, ConnPermit};
use super::proxy::{self, Declared, ProxyPolicy};
use crate::config::{Limits, TlsMode};

/// The transport under a [`Stream`].
enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// A client connection, before or after TLS, that fails reads with `TimedOut` once
/// the client has sent nothing for the idle timeout. Every protocol gets the
/// `limits.idle_timeout_secs` autologout for free; protocols wanting a shorter
/// per-command timeout wrap their reads in their own.
pub struct Stream {
    transport: Transport,
    idle: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Stream {
    /// A plaintext stream with the given idle timeout.
    pub fn plain(tcp: TcpStream, idle: Duration) -> Stream {
        Stream {
            transport: Transport::Plain(tcp),
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    /// Upgrades a plaintext stream (STARTTLS); a TLS stream is returned unchanged.
    pub async fn start_tls(self, acceptor: &TlsAcceptor, timeout: Duration) -> io::Result<Stream> {
        let Stream {
            transport,
            idle,
            mut deadline,
        } = self;
        let transport = match transport {
            Transport::Plain(tcp) => {
                let tls = tokio::time::timeout(timeout, acceptor.accept(tcp))
                    .await
                    .map_err(|_| {
                        io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
                    })??;
                Transport::Tls(Box::new(tls))
            }
            tls => tls,
        };
        deadline.as_mut().reset(tokio::time::Instant::now() + idle);
        Ok(Stream {
            transport,
            idle,
            deadline,
        })
    }

    /// Whether TLS is up (implicit, or after STARTTLS).
    pub fn is_tls(&self) -> bool {
        matches!(self.transport, Transport::Tls(_))
    }

    /// The TLS session, once there is one (SNI, ALPN, protocol version).
    pub fn tls_connection(&self) -> Option<&rustls::ServerConnection> {
        match &self.transport {
            Transport::Tls(t) => Some(t.get_ref().1),
            Transport::Plain(_) => None,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let res = match &mut me.transport {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s).poll_read(cx, buf),
        };
        match res {
            Poll::Ready(r) => {
                me.deadline
                    .as_mut()
                    .reset(tokio::time::Instant::now() + me.idle);
                Poll::Ready(r)
            }
            Poll::Pending => match me.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client idle too long",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().transport {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().transport {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().transport {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Everything a protocol session gets about its connection.
pub struct Session {
    /// The client connection.
    pub stream: Stream,
    /// The client's address: on a PROXY listener, the one the load balancer's
    /// header declared (access rules, audit records, rate limits and logs use it).
    pub peer: SocketAddr,
    /// The address the client connected to (on a PROXY listener, as declared).
    pub local: SocketAddr,
    /// The listener's name (`imaps`, `submission`, ...).
    pub listener: &'static str,
    /// For STARTTLS.
    pub tls: TlsAcceptor,
    /// Cancelled when the daemon starts draining: finish the current command,
    /// say goodbye the protocol's way (`421`, `* BYE`) and close.
    pub draining: CancellationToken,
    /// The daemon's `[limits]`.
    pub limits: Arc<Limits>,
}

/// A protocol served on a listener.
pub trait Protocol: Send + Sync + 'static {
    /// Sent to a plaintext client turned away by the connection limits (e.g. SMTP 421).
    fn busy_reply(&self) -> &'static [u8];
    /// Runs one session to its end.
    fn serve(self: Arc<Self>, session: Session) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// A bound socket waiting for its accept loop.
pub struct BoundListener {
    /// The listener's name (a key of `config::Listeners`).
    pub name: &'static str,
    /// Implicit TLS, STARTTLS or plain.
    pub tls_mode: TlsMode,
    /// The bound socket.
    pub socket: TcpListener,
    /// What each session on it runs.
    pub protocol: Arc<dyn Protocol>,
    /// For implicit TLS and STARTTLS.
    pub acceptor: TlsAcceptor,
    /// `proxy_protocol = true`: who may connect, each connection starting with a
    /// PROXY header (`None`: clients connect directly).
    pub proxy: Option<Arc<ProxyPolicy>>,
}

/// What every accept loop shares.
#[derive(Clone)]
pub struct AcceptContext {
    /// Admission: total and per-IP caps, connection rate.
    pub conn_limits: Arc<ConnLimits>,
    /// The daemon's `[limits]` (idle and handshake timeouts).
    pub limits: Arc<Limits>,
    /// Every session runs on it, so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// Cancelled at shutdown: stop accepting and tell sessions to drain.
    pub draining: CancellationToken,
    /// Connection and session counts per listener are kept here, once for every
    /// protocol.
    pub metrics: Arc<dyn ListenerMetrics>,
}

/// Connection and session counts of one listener, updated by the accept loop.
#[derive(Clone, Default)]
pub struct ListenerStats {
    /// Connections accepted (including those then refused by the limits).
    pub connections: Counter,
    /// Connections refused by the connection limits.
    pub refused: Counter,
    /// Connections to a PROXY listener from an address not in `proxy_from`.
    pub proxy_untrusted: Counter,
    /// Connections to a PROXY listener closed for a missing, malformed, oversized
    /// or late header.
    pub proxy_bad_header: Counter,
    /// Sessions running now.
    pub sessions: Gauge,
}

/// Where the accept loop finds its listener's counters: implemented by the daemon's
/// metrics registry (`events::Metrics`), so `net` never names `events`.
pub trait ListenerMetrics: Send + Sync {
    /// The counters of listener `name`.
    fn listener(&self, name: &'static str) -> ListenerStats;
}

/// Decrements the listener's session gauge however the session ends.
struct SessionGauge(Gauge);

impl Drop for SessionGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Accepts until draining starts; each session runs on the tracker.
pub async fn accept_loop(bound: BoundListener, ctx: AcceptContext) {
    let BoundListener {
        name,
        tls_mode,
        socket,
        protocol,
        acceptor,
        proxy,
    } = bound;
    let stats = ctx.metrics.listener(name);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = ctx.draining.cancelled() => break,
            r = socket.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        stats.connections.inc();
        let permit = match &proxy {
            // Postfix's smtpd_upstream_proxy_protocol and HAProxy's accept-proxy:
            // a marked listener serves only its load balancers.
            Some(policy) if !policy.allows(peer.ip()) => {
                stats.proxy_untrusted.inc();
                tracing::info!(listener = name, %peer, "connection refused: not in proxy_from");
                continue;
            }
            // The per-IP limits wait for the header to name the client.
            Some(_) => ctx.conn_limits.try_acquire_total(),
            None => ctx.conn_limits.try_acquire(peer.ip()),
        };
        let Some(permit) = permit else {
            refuse_busy(&stats, name, peer, tls_mode, &*protocol, tcp);
            continue;
        };
        let local = tcp.local_addr().unwrap_or(peer);
        let (protocol, acceptor, ctx2) = (protocol.clone(), acceptor.clone(), ctx.clone());
        let (stats2, proxied) = (stats.clone(), proxy.is_some());
        ctx.tracker.spawn(async move {
            let mut tcp = tcp;
            let (mut peer, mut local, mut permit) = (peer, local, permit);
            if proxied {
                let Some(found) = take_proxy_header(&mut tcp, name, peer, &ctx2, &stats2).await
                else {
                    return;
                };
                (peer, local) = found.unwrap_or((peer, local));
                let Some(admitted) = ctx2.conn_limits.admit_client(permit, peer.ip()) else {
                    refuse_busy(&stats2, name, peer, tls_mode, &*protocol, tcp);
                    return;
                };
                permit = admitted;
            }
            let _permit: ConnPermit = permit;
            let sessions = stats2.sessions.clone();
            sessions.inc();
            let _running = SessionGauge(sessions);
            let plain = Stream::plain(tcp, ctx2.limits.idle_timeout());
            let stream = match tls_mode {
                // Boxed: the handshake's future is large and would otherwise
                // stay in the task of every connection for its whole life.
                TlsMode::Implicit => match Box::pin(
                    plain.start_tls(&acceptor, ctx2.limits.handshake_timeout()),
                )
                .await
                {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(listener = name, %peer, error = %e, "TLS handshake failed");
                        return;
                    }
                },
                _ => plain,
            };
            let session = Session {
                stream,
                peer,
                local,
                listener: name,
                tls: acceptor,
                draining: ctx2.draining.clone(),
                limits: ctx2.limits.clone(),
            };
            protocol.serve(session).await;
        });
    }
    tracing::debug!(listener = name, "accept loop stopped");
}

/// Turns away a connection over the limits: counted, logged, and told so when the
/// protocol speaks first in plaintext (e.g. SMTP 421), never waiting long on it.
fn refuse_busy(
    stats: &ListenerStats,
    name: &'static str,
    peer: SocketAddr,
    tls_mode: TlsMode,
    protocol: &dyn Protocol,
    tcp: TcpStream,
) {
    stats.refused.inc();
    tracing::info!(listener = name, %peer, "connection refused: connection limit reached");
    if tls_mode != TlsMode::Implicit {
        let reply = protocol.busy_reply();
        tokio::spawn(async move {
            let mut tcp = tcp;
            let _ = tokio::time::timeout(Duration::from_secs(2), tcp.write_all(reply)).await;
        });
    }
}

/// Reads the PROXY header of a connection from a load balancer within the
/// handshake timeout: `Some(Some((client, local)))` when it names the client,
/// `Some(None)` when the connection's own addresses stand (LOCAL, UNKNOWN), `None`
/// when the connection must close without a word (counted and logged).
async fn take_proxy_header(
    tcp: &mut TcpStream,
    name: &'static str,
    from: SocketAddr,
    ctx: &AcceptContext,
    stats: &ListenerStats,
) -> Option<Option<(SocketAddr, SocketAddr)>> {
    let error = match tokio::time::timeout(ctx.limits.handshake_timeout(), proxy::read_header(tcp))
        .await
    {
        Ok(Ok(Declared::Proxied {
            source,
            destination,
        })) => {
            tracing::debug!(listener = name, proxy = %from, client = %source, "PROXY header");
            return Some(Some((source, destination)));
        }
        Ok(Ok(Declared::Own)) => {
            tracing::debug!(listener = name, proxy = %from, "PROXY header without a client (LOCAL or UNKNOWN)");
            return Some(None);
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no complete PROXY header within limits.handshake_timeout_secs".to_string(),
    };
    stats.proxy_bad_header.inc();
    tracing::info!(listener = name, proxy = %from, error, "connection closed: PROXY header");
    None
}
