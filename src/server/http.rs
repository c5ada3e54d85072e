//! HTTP/1.1 on the `https` listener: body limits, graceful drain, and routing by
//! path to the admin API (and, as they land, EWS and Autodiscover).
//!
//! Handlers see a fully read [`HttpRequest`] and return an [`HttpResponse`]; they
//! never touch hyper, so they can be tested without a socket.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::listener::{Protocol, Session};

/// A request with its body read (within the size limit).
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
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

/// A complete response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl HttpResponse {
    /// A response with a content type and body.
    pub fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("content-type", content_type.to_string())],
            body: body.into(),
        }
    }

    fn text(status: u16, body: &'static str) -> HttpResponse {
        HttpResponse::new(status, "text/plain; charset=utf-8", body)
    }
}

/// Boxed handler future.
pub type HandlerFuture = Pin<Box<dyn Future<Output = HttpResponse> + Send>>;

/// Something that answers requests routed to it.
pub trait Handler: Send + Sync + 'static {
    fn handle(self: Arc<Self>, req: HttpRequest) -> HandlerFuture;
}

/// Routes requests by path to the handlers that exist.
pub struct Router {
    /// The WorkMail admin API: `POST /` with `X-Amz-Target`.
    pub admin: Option<Arc<dyn Handler>>,
    /// Prometheus text at `GET /metrics` (only on the plain-HTTP `metrics` listener).
    pub metrics: Option<Arc<dyn Handler>>,
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
}

impl Router {
    async fn route(self: Arc<Self>, req: HttpRequest) -> HttpResponse {
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/") if req.header("x-amz-target").is_some() => match &self.admin {
                Some(admin) => admin.clone().handle(req).await,
                None => HttpResponse::text(404, "not found\n"),
            },
            ("GET", "/metrics") if self.metrics.is_some() => match &self.metrics {
                Some(m) => m.clone().handle(req).await,
                None => HttpResponse::text(404, "not found\n"),
            },
            _ => HttpResponse::text(404, "not found\n"),
        }
    }
}

impl Protocol for Router {
    fn busy_reply(&self) -> &'static [u8] {
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    }

    fn serve(self: Arc<Self>, session: Session) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let peer = session.peer;
            let router = self.clone();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let router = router.clone();
                async move { Ok::<_, Infallible>(router.answer(req, peer).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(session.stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "http connection ended");
                    }
                }
                _ = session.draining.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        })
    }
}

impl Router {
    /// Reads the body within the limit, routes, and converts to hyper's types.
    async fn answer(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, self.max_body).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return to_hyper(HttpResponse::text(413, "request body too large\n"));
            }
            Err(_) => return to_hyper(HttpResponse::text(400, "unreadable request body\n")),
        };
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
        let request = HttpRequest {
            method: parts.method.as_str().to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or("").to_string(),
            headers,
            body,
            peer,
        };
        to_hyper(self.route(request).await)
    }
}

fn to_hyper(resp: HttpResponse) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (k, v) in resp.headers {
        builder = builder.header(k, v);
    }
    builder.body(Full::new(resp.body)).unwrap_or_else(|_| {
        let mut r = Response::new(Full::new(Bytes::from_static(b"bad response headers\n")));
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}
