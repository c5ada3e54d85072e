//! The HTTP(S) sink: records go to the on-disk [`Spool`] first, then out as
//! `POST`s of JSON-lines batches (`application/x-ndjson`); a failed POST (no
//! connection, timeout, any non-2xx status) is retried with doubling backoff and
//! the records wait in the spool meanwhile. All of it runs on the sink's own
//! thread, so a slow or dead receiver never slows mail flow: producers only ever
//! `try_send` to the sink's in-memory queue.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use super::EventsError;
use super::config::SinkConfig;
use super::metrics::SinkStats;
use super::sink::{Discard, Record, Replace, Worker};
use super::spool::Spool;

/// Where the POSTs go, parsed from the sink's `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https`: TLS with the sink's CA.
    pub tls: bool,
    /// Name or address to connect to (and the TLS server name).
    pub host: String,
    /// Port, 80 or 443 unless the URL says otherwise.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Target {
    /// Parses `http://host[:port]/path` or `https://…`; IPv6 hosts in brackets.
    pub fn parse(url: &str) -> Result<Target, EventsError> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            return Err(EventsError::Config(
                "must start with http:// or https://".into(),
            ));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(EventsError::Config(
                "credentials in the URL are not supported; use `authorization`".into(),
            ));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| EventsError::Config("unclosed '[' in the host".into()))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p
                    .parse()
                    .map_err(|_| EventsError::Config("bad port".into()))?,
                None if after.is_empty() => default_port,
                None => return Err(EventsError::Config("junk after the IPv6 host".into())),
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse()
                        .map_err(|_| EventsError::Config("bad port".into()))?,
                ),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(EventsError::Config("no host".into()));
        }
        Ok(Target {
            tls,
            host,
            port,
            path: path.to_string(),
        })
    }

    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Retry delays: doubling from `initial` up to `max`, back to `initial` on success.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// The first delay, and the delay after a success.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    current: Duration,
}

impl Backoff {
    /// Starts at `initial`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
            current: initial,
        }
    }
    /// The delay before the next attempt after a failure.
    pub fn fail(&mut self) -> Duration {
        let d = self.current;
        self.current = (self.current * 2).min(self.max);
        d
    }
    /// A success resets the delay.
    pub fn ok(&mut self) {
        self.current = self.initial;
    }
}

/// The writer of one HTTP sink: its client and its spool.
pub struct HttpSink {
    client: Client,
    spool: Spool,
    next_attempt: Instant,
    conn: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
    /// When records were first appended since the spool's last fsync.
    unsynced: Option<Instant>,
    stats: SinkStats,
}

/// An HTTP sink without its spool: everything that can fail (URL, CA file,
/// runtime) is done, so a reload can prepare it before stopping anything.
pub struct Client {
    name: String,
    target: Target,
    authorization: Option<String>,
    connector: Option<tokio_rustls::TlsConnector>,
    timeout: Duration,
    batch_max: usize,
    spool_max_bytes: u64,
    backoff: Backoff,
    rt: tokio::runtime::Runtime,
}

/// The longest time spooled records stay without an fsync.
const SPOOL_SYNC: Duration = Duration::from_secs(1);

impl Client {
    /// Parses the URL and reads the CA (`ca` already resolved).
    pub fn new(c: &SinkConfig, ca: Option<&Path>) -> Result<Client, EventsError> {
        let url = c.url.as_deref().unwrap_or("");
        let target =
            Target::parse(url).map_err(|e| EventsError::Sink(format!("url {url:?}: {e}")))?;
        let connector = match (target.tls, ca) {
            (true, Some(ca)) => Some(crate::tls::connector_trusting(ca, "ca")?),
            (true, None) => return Err(EventsError::Sink("an https url needs `ca`".into())),
            (false, _) => None,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| EventsError::Sink(e.to_string()))?;
        Ok(Client {
            name: c.name.clone(),
            target,
            authorization: c.authorization.clone(),
            connector,
            timeout: Duration::from_secs(c.timeout_secs.unwrap_or(10)),
            batch_max: c.batch_max.unwrap_or(1000),
            spool_max_bytes: c.spool_max_bytes.unwrap_or(1 << 30),
            backoff: Backoff::new(
                Duration::from_millis(c.retry_initial_ms.unwrap_or(200)),
                Duration::from_millis(c.retry_max_ms.unwrap_or(30_000)),
            ),
            rt,
        })
    }

    /// Opens the spool under `spool_dir` (no other sink may have it open).
    pub fn open_spool(self, spool_dir: &Path, stats: SinkStats) -> Result<HttpSink, EventsError> {
        let spool = Spool::open(spool_dir, self.spool_max_bytes)
            .map_err(|e| EventsError::Sink(format!("spool {}: {e}", spool_dir.display())))?;
        Ok(self.with_spool(spool, stats))
    }

    /// The replacement of a running HTTP sink of the same name: it takes over that
    /// sink's spool, so what it has not delivered goes to the new URL (with the new
    /// CA). Should the old worker have no spool, the directory is opened instead;
    /// should that fail, records are dropped and counted rather than blocking.
    pub fn take_over(self, spool_dir: PathBuf, stats: SinkStats) -> Replace {
        Box::new(move |old: Box<dyn Worker>| -> Box<dyn Worker> {
            if let Some(mut spool) = old.into_spool() {
                spool.set_max_bytes(self.spool_max_bytes);
                return Box::new(self.with_spool(spool, stats));
            }
            let name = self.name.clone();
            match self.open_spool(&spool_dir, stats.clone()) {
                Ok(sink) => Box::new(sink),
                Err(e) => {
                    tracing::error!(sink = %name, error = %e, "event spool cannot be opened; records dropped");
                    Box::new(Discard { stats })
                }
            }
        })
    }

    fn with_spool(self, spool: Spool, stats: SinkStats) -> HttpSink {
        stats.spool_bytes.set(spool.bytes() as i64);
        HttpSink {
            client: self,
            spool,
            next_attempt: Instant::now(),
            conn: None,
            unsynced: None,
            stats,
        }
    }
}

impl HttpSink {
    /// Opens the spool under `spool_dir` and prepares the client; `ca` resolved.
    pub fn open(
        c: &SinkConfig,
        spool_dir: &Path,
        ca: Option<&Path>,
        stats: SinkStats,
    ) -> Result<HttpSink, EventsError> {
        Client::new(c, ca)?.open_spool(spool_dir, stats)
    }

    /// One POST of `body`; Ok once the receiver answered 2xx.
    fn post(&mut self, body: Bytes) -> Result<(), EventsError> {
        let timeout = self.client.timeout;
        let target = self.client.target.clone();
        let connector = self.client.connector.clone();
        let mut conn = self.conn.take();
        let req = hyper::Request::post(&target.path)
            .header(hyper::header::HOST, target.authority())
            .header(hyper::header::CONTENT_TYPE, "application/x-ndjson");
        let req = match &self.client.authorization {
            Some(a) => req.header(hyper::header::AUTHORIZATION, a),
            None => req,
        };
        let req = req
            .body(Full::new(body))
            .map_err(|e| EventsError::Delivery(e.to_string()))?;
        let res = self.client.rt.block_on(async {
            tokio::time::timeout(timeout, async {
                if conn.as_ref().is_none_or(|c| c.is_closed()) {
                    conn = Some(connect(&target, connector.as_ref()).await?);
                }
                let sender = conn
                    .as_mut()
                    .ok_or_else(|| EventsError::Delivery("no connection".into()))?;
                sender
                    .ready()
                    .await
                    .map_err(|e| EventsError::Delivery(e.to_string()))?;
                let resp = sender
                    .send_request(req)
                    .await
                    .map_err(|e| EventsError::Delivery(e.to_string()))?;
                let status = resp.status();
                // Read the body so the connection can carry the next request.
                let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
                if status.is_success() {
                    Ok(())
                } else {
                    Err(EventsError::Delivery(format!("receiver answered {status}")))
                }
            })
            .await
            .map_err(|_| EventsError::Delivery("timed out".into()))?
        });
        if res.is_ok() {
            self.conn = conn;
        }
        res
    }
}

async fn connect(
    target: &Target,
    connector: Option<&tokio_rustls::TlsConnector>,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, EventsError> {
    let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| EventsError::Delivery(format!("connect: {e}")))?;
    let _ = tcp.set_nodelay(true);
    match connector {
        Some(c) => {
            let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|e| EventsError::Delivery(e.to_string()))?;
            let tls = c
                .connect(name, tcp)
                .await
                .map_err(|e| EventsError::Delivery(format!("TLS: {e}")))?;
            handshake(TokioIo::new(tls)).await
        }
        None => handshake(TokioIo::new(tcp)).await,
    }
}

async fn handshake<I>(
    io: I,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, EventsError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| EventsError::Delivery(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// How long one tick may keep POSTing before the thread goes back to its queue.
const SEND_SLICE: Duration = Duration::from_millis(250);

impl Worker for HttpSink {
    fn write(&mut self, batch: &[Record]) -> bool {
        let all = match self.spool.append(batch.iter().map(|r| &*r.line)) {
            Ok(n) => {
                self.unsynced.get_or_insert_with(Instant::now);
                self.stats.spooled.inc_by(n as u64);
                self.stats.dropped.inc_by((batch.len() - n) as u64);
                if n < batch.len() {
                    tracing::warn!(sink = %self.client.name, dropped = batch.len() - n, "event spool full; records dropped");
                }
                n == batch.len()
            }
            Err(e) => {
                self.stats.failed.inc();
                self.stats.dropped.inc_by(batch.len() as u64);
                tracing::error!(sink = %self.client.name, error = %e, "event spool write failed; records dropped");
                false
            }
        };
        self.stats.spool_bytes.set(self.spool.bytes() as i64);
        all
    }

    fn tick(&mut self) -> Duration {
        let wait = self.deliver();
        match self.unsynced {
            Some(since) if since.elapsed() >= SPOOL_SYNC => {
                if let Err(e) = self.spool.sync() {
                    self.stats.failed.inc();
                    tracing::error!(sink = %self.client.name, error = %e, "event spool fsync failed");
                }
                self.unsynced = None;
                wait
            }
            Some(since) => wait.min(SPOOL_SYNC - since.elapsed()),
            None => wait,
        }
    }

    fn finish(&mut self) {
        let _ = self.spool.sync();
    }

    fn into_spool(self: Box<Self>) -> Option<Spool> {
        Some(self.spool)
    }
}

impl HttpSink {
    /// POSTs from the spool until it is empty, a POST fails (then waits for the
    /// backoff) or the time slice is used; returns how long the thread may wait.
    fn deliver(&mut self) -> Duration {
        let started = Instant::now();
        while !self.spool.is_empty() {
            let now = Instant::now();
            if now < self.next_attempt {
                return self.next_attempt - now;
            }
            if now - started > SEND_SLICE {
                return Duration::ZERO;
            }
            let peeked = match self.spool.peek(self.client.batch_max) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(sink = %self.client.name, error = %e, "event spool read failed");
                    self.stats.failed.inc();
                    self.next_attempt = now + self.client.backoff.fail();
                    continue;
                }
            };
            let n = peeked.lines.len();
            let body = if n == 0 {
                None
            } else {
                let mut body = peeked.lines.join("\n");
                body.push('\n');
                Some(body)
            };
            let sent = match body {
                None => Ok(()),
                Some(b) => self.post(Bytes::from(b)),
            };
            match sent.and_then(|_| {
                self.spool
                    .ack(&peeked)
                    .map_err(|e| EventsError::Sink(e.to_string()))
            }) {
                Ok(()) => {
                    self.client.backoff.ok();
                    self.stats.sent.inc_by(n as u64);
                }
                Err(e) => {
                    self.stats.failed.inc();
                    let delay = self.client.backoff.fail();
                    tracing::debug!(sink = %self.client.name, error = %e, retry_ms = delay.as_millis() as u64, "event POST failed");
                    self.next_attempt = Instant::now() + delay;
                }
            }
            self.stats.spool_bytes.set(self.spool.bytes() as i64);
        }
        Duration::from_secs(3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let t = Target::parse("http://127.0.0.1:8080/in?x=1").unwrap();
        assert_eq!(
            t,
            Target {
                tls: false,
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/in?x=1".into()
            }
        );
        let t = Target::parse("https://[::1]/").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (true, "::1", 443));
        assert_eq!(t.authority(), "[::1]:443");
        assert_eq!(Target::parse("http://h").unwrap().path, "/");
        for bad in [
            "ftp://h/",
            "http://",
            "http://h:x/",
            "http://u:p@h/",
            "http://[::1/",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_doubles_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let d: Vec<_> = (0..4).map(|_| b.fail().as_millis()).collect();
        assert_eq!(d, [100, 200, 350, 350]);
        b.ok();
        assert_eq!(b.fail().as_millis(), 100);
    }
}
