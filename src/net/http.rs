//! HTTP/1.1 on the `https` and `metrics` listeners: routing by path (exact or
//! prefix, any letter case, longest match wins), a request-body limit per route,
//! keep-alive, graceful drain, and response bodies that are either complete or a
//! stream of chunks sent as they come (EWS streaming notifications).
//!
//! Slow clients are cut off: the request head must arrive within a deadline and a
//! body at a minimum rate ([`HttpLimits`]), and a handler can refuse a request or
//! lower its body limit from the head alone ([`Handler::admit`]), before any of
//! the body is read.
//!
//! Handlers see an [`HttpRequest`] with its body read and return an [`HttpResponse`];
//! they never touch hyper, so they can be tested without a socket. This module knows
//! no handler: `server` builds the [`Router`] from the routes each protocol offers.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::listener::{Protocol, Session};

/// A request with its body read (within the route's size limit).
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, as sent (routing ignores its letter case; handlers see it unchanged).
    pub path: String,
    /// The query string without `?`, empty when there is none.
    pub query: String,
    /// Header names (lowercase) and values, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Bytes,
    /// The client's address.
    pub peer: SocketAddr,
}

impl HttpRequest {
    /// First header with this name, any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response body: complete, or chunks sent as the handler produces them.
#[derive(Debug)]
pub enum HttpBody {
    /// The whole body, sent with a `Content-Length`.
    Full(Bytes),
    /// Chunks sent (chunked transfer encoding) as they arrive; the body ends when
    /// every sender is dropped. For long-lived answers such as EWS streaming
    /// subscriptions.
    Stream(mpsc::Receiver<Bytes>),
}

impl HttpBody {
    /// The complete body's bytes; empty for a stream (tests and logs read it).
    pub fn bytes(&self) -> &[u8] {
        match self {
            HttpBody::Full(b) => b,
            HttpBody::Stream(_) => &[],
        }
    }
}

/// A response: status, headers and a complete or streamed body.
#[derive(Debug)]
pub struct HttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// Header names and values.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: HttpBody,
}

impl HttpResponse {
    /// A response with a content type and a complete body.
    pub fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("content-type", content_type.to_string())],
            body: HttpBody::Full(body.into()),
        }
    }

    /// A response whose body is the chunks received on `chunks`, each sent as it
    /// arrives; the body ends when the sender is dropped.
    pub fn streaming(
        status: u16,
        content_type: &str,
        chunks: mpsc::Receiver<Bytes>,
    ) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("content-type", content_type.to_string())],
            body: HttpBody::Stream(chunks),
        }
    }

    fn text(status: u16, body: &'static str) -> HttpResponse {
        HttpResponse::new(status, "text/plain; charset=utf-8", body)
    }
}

/// Why a request body was not read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRefusal {
    /// Over the route's (or the handler's) limit: 413 by default.
    TooLarge,
    /// Arriving slower than `HttpLimits` allow: 408 by default.
    TooSlow,
    /// Broken framing: 400 by default.
    Unreadable,
}

impl BodyRefusal {
    /// The plain answer a handler gives unless it speaks its protocol's error.
    pub fn plain(self) -> HttpResponse {
        match self {
            BodyRefusal::TooLarge => HttpResponse::text(413, "request body too large\n"),
            BodyRefusal::TooSlow => HttpResponse::text(408, "request body too slow\n"),
            BodyRefusal::Unreadable => HttpResponse::text(400, "unreadable request body\n"),
        }
    }
}

/// Boxed handler future.
pub type HandlerFuture = Pin<Box<dyn Future<Output = HttpResponse> + Send>>;

/// Something that answers requests routed to it.
pub trait Handler: Send + Sync + 'static {
    /// Looks at the request head (its body not read yet, so empty) before the body
    /// is read: `Ok(limit)` reads a body of at most `limit` bytes (`max_body` is the
    /// route's; a handler may lower it, e.g. before authentication), `Err` answers
    /// with that response and never reads the body. Accepts by default.
    fn admit(&self, head: &HttpRequest, max_body: usize) -> Result<usize, HttpResponse> {
        let _ = head;
        Ok(max_body)
    }

    /// The answer when the body could not be read (EWS answers with a SOAP fault,
    /// since its clients treat a bare HTTP error as a lost connection).
    fn refuse_body(&self, why: BodyRefusal) -> HttpResponse {
        why.plain()
    }

    /// Answers one request (its body already read).
    fn handle(self: Arc<Self>, req: HttpRequest) -> HandlerFuture;
}

/// How a route's path is compared with the request path (always ignoring ASCII case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMatch {
    /// The whole path equals the route's.
    Exact,
    /// The path starts with the route's (`/EWS/` takes `/ews/exchange.asmx`).
    Prefix,
}

/// A test on the request head (body not read yet, so empty) that a route also
/// requires, e.g. the admin API's `POST` with `X-Amz-Target`.
pub type Guard = fn(&HttpRequest) -> bool;

/// One entry of a [`Router`]: where requests go and how large a body they may carry.
pub struct Route {
    path: String,
    matching: PathMatch,
    max_body: usize,
    guard: Option<Guard>,
    handler: Arc<dyn Handler>,
}

impl Route {
    /// A route for exactly `path` (any letter case). Its body limit starts at 0.
    pub fn exact(path: &str, handler: Arc<dyn Handler>) -> Route {
        Route::new(path, PathMatch::Exact, handler)
    }

    /// A route for every path starting with `path` (any letter case). Its body
    /// limit starts at 0.
    pub fn prefix(path: &str, handler: Arc<dyn Handler>) -> Route {
        Route::new(path, PathMatch::Prefix, handler)
    }

    fn new(path: &str, matching: PathMatch, handler: Arc<dyn Handler>) -> Route {
        Route {
            path: path.to_ascii_lowercase(),
            matching,
            max_body: 0,
            guard: None,
            handler,
        }
    }

    /// Largest request body this route reads, in bytes; larger ones get 413.
    pub fn max_body(mut self, bytes: usize) -> Route {
        self.max_body = bytes;
        self
    }

    /// Also requires `guard` to accept the request head; otherwise the route does
    /// not match (and another may, or 404).
    pub fn when(mut self, guard: Guard) -> Route {
        self.guard = Some(guard);
        self
    }

    fn matches_path(&self, path: &str) -> bool {
        let (route, path) = (self.path.as_bytes(), path.as_bytes());
        match self.matching {
            PathMatch::Exact => path.eq_ignore_ascii_case(route),
            PathMatch::Prefix => {
                path.len() >= route.len() && path[..route.len()].eq_ignore_ascii_case(route)
            }
        }
    }
}

/// How long a client may take to send a request, so that a slow client
/// (slowloris) cannot hold a connection and its buffers indefinitely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// The whole request head (request line and headers) must arrive within this.
    pub header_read: Duration,
    /// A body may take this long plus one second per `body_min_rate` bytes
    /// received; a client sending slower is answered 408 and closed.
    pub body_grace: Duration,
    /// Minimum body rate, bytes per second, once the grace time is used up.
    pub body_min_rate: u32,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            header_read: Duration::from_secs(30),
            body_grace: Duration::from_secs(10),
            body_min_rate: 1024,
        }
    }
}

impl HttpLimits {
    /// The latest moment the body may still be arriving, `received` bytes in.
    fn body_deadline(&self, start: tokio::time::Instant, received: usize) -> tokio::time::Instant {
        let rate = u64::from(self.body_min_rate.max(1));
        let earned = Duration::from_millis((received as u64).saturating_mul(1000) / rate);
        start + self.body_grace + earned
    }
}

/// Routes requests by path to the handlers the protocols offer.
pub struct Router {
    routes: Vec<Route>,
    limits: HttpLimits,
}

impl Router {
    /// A router over `routes`; the order does not matter (longest match wins).
    pub fn new(routes: Vec<Route>) -> Router {
        Router {
            routes,
            limits: HttpLimits::default(),
        }
    }

    /// The same router with other time limits for slow clients.
    pub fn with_limits(mut self, limits: HttpLimits) -> Router {
        self.limits = limits;
        self
    }

    /// The route for a request head: of the routes whose path and guard match, the
    /// one with the longest path; an exact route beats a prefix of the same length.
    fn find(&self, head: &HttpRequest) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|r| r.matches_path(&head.path) && r.guard.is_none_or(|g| g(head)))
            .max_by_key(|r| (r.path.len(), r.matching == PathMatch::Exact))
    }
}

impl Protocol for Router {
    fn busy_reply(&self) -> &'static [u8] {
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    }

    fn serve(self: Arc<Self>, session: Session) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.serve_connection(session.stream, session.peer, session.draining))
    }
}

impl Router {
    /// Serves HTTP/1.1 (keep-alive) on one connection until the client leaves, or
    /// until `draining` is cancelled and the request in progress is answered.
    pub async fn serve_connection<S>(
        self: Arc<Self>,
        io: S,
        peer: SocketAddr,
        draining: CancellationToken,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let router = self.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let router = router.clone();
            async move { Ok::<_, Infallible>(router.answer(req, peer).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .max_buf_size(64 * 1024)
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read)
            .serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "http connection ended");
                }
            }
            _ = draining.cancelled() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    }

    /// Routes on the head, reads the body within the route's limit, and converts
    /// to hyper's types.
    async fn answer(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<ResBody> {
        let (parts, body) = req.into_parts();
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut request = HttpRequest {
            method: parts.method.as_str().to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or("").to_string(),
            headers,
            body: Bytes::new(),
            peer,
        };
        let Some(route) = self.find(&request) else {
            return to_hyper(HttpResponse::text(404, "not found\n"));
        };
        let max_body = match route.handler.admit(&request, route.max_body) {
            Ok(limit) => limit.min(route.max_body),
            Err(refusal) => return to_hyper(refusal),
        };
        request.body = match read_body(body, max_body, &self.limits).await {
            Ok(b) => b,
            Err(why) => return to_hyper(route.handler.refuse_body(why)),
        };
        to_hyper(route.handler.clone().handle(request).await)
    }
}

/// Reads a request body of at most `max` bytes arriving at least as fast as
/// `limits` demand; otherwise why not.
async fn read_body(body: Incoming, max: usize, limits: &HttpLimits) -> Result<Bytes, BodyRefusal> {
    let start = tokio::time::Instant::now();
    let mut body = Limited::new(body, max);
    let mut buf = bytes::BytesMut::new();
    loop {
        let deadline = limits.body_deadline(start, buf.len());
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(BodyRefusal::TooSlow),
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(frame)) => frame,
        };
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return Err(BodyRefusal::TooLarge);
            }
            Err(_) => return Err(BodyRefusal::Unreadable),
        }
    }
}

/// A streamed response body: each chunk received is one data frame.
struct ChunkBody(mpsc::Receiver<Bytes>);

impl Body for ChunkBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// The body hyper sends: complete (with a length) or chunked.
type ResBody = Either<Full<Bytes>, ChunkBody>;

/// The hyper response of `resp`. A header hyper refuses (a value with a control
/// character) is left out and logged rather than turning the whole answer into
/// an error page: an EWS client meeting HTTP 500 asks for the password again.
/// Every status mailgate answers is a constant; one hyper refused would be a
/// bug, answered 500.
fn to_hyper(resp: HttpResponse) -> Response<ResBody> {
    let body = match resp.body {
        HttpBody::Full(b) => Either::Left(Full::new(b)),
        HttpBody::Stream(rx) => Either::Right(ChunkBody(rx)),
    };
    let mut r = Response::new(body);
    *r.status_mut() =
        StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in resp.headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            (Ok(name), Ok(value)) => {
                r.headers_mut().append(name, value);
            }
            _ => tracing::warn!(header = name, "response header refused by hyper; left out"),
        }
    }
    r
}

#[cfg(test)]
mod tests;
