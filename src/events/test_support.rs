//! Helpers shared by the event tests: a record to emit, polling, and an HTTPS
//! receiver on loopback whose certificate can be swapped while it runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use super::audit::{AuditProtocol, Authentication};
use super::{AuditEvent, new_id};
use crate::config::CertificatePair;
use crate::tls::CertResolver;

/// One authentication audit record.
pub fn auth_event(ok: bool) -> AuditEvent {
    AuditEvent::Authentication(Authentication {
        request_id: new_id(),
        organization_arn: "arn".into(),
        user_id: "u".into(),
        user: "a@example.test".into(),
        protocol: AuditProtocol::Smtp,
        source_ip: "127.0.0.1".parse().unwrap(),
        user_agent: None,
        method: "basic",
        auth_successful: ok,
        auth_failed_reason: (!ok).then(|| "bad password".into()),
        personal_access_token_id: None,
    })
}

/// Polls `what` for up to 10 s.
pub fn wait_for(what: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if what() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// An HTTPS receiver on 127.0.0.1 that keeps every line POSTed to it.
pub struct HttpsReceiver {
    /// The port it listens on.
    pub port: u16,
    /// Lines received, in order.
    pub got: Arc<Mutex<Vec<String>>>,
    /// TLS handshakes that failed (the client refused the certificate).
    pub refused: Arc<AtomicUsize>,
    /// The certificate served; `load` swaps it for the next handshake.
    pub resolver: Arc<CertResolver>,
    _rt: tokio::runtime::Runtime,
}

impl HttpsReceiver {
    /// Starts serving `pair` on a free loopback port.
    pub fn start(pair: &CertificatePair) -> HttpsReceiver {
        crate::tls::install_crypto_provider();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let resolver = Arc::new(CertResolver::default());
        resolver.load(std::slice::from_ref(pair)).unwrap();
        // No session resumption: a resumed session skips the certificate, and every
        // connection here must show the one served now.
        let mut config = (*crate::tls::server_config(resolver.clone(), &[])).clone();
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(AtomicUsize::new(0));
        let (g, r) = (got.clone(), refused.clone());
        rt.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, got, refused) = (acceptor.clone(), g.clone(), r.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        refused.fetch_add(1, Ordering::SeqCst);
                        return;
                    };
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let got = got.clone();
                            async move {
                                let body = req.into_body().collect().await?.to_bytes();
                                let text = String::from_utf8_lossy(&body).into_owned();
                                got.lock().unwrap().extend(text.lines().map(String::from));
                                Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::new())))
                            }
                        },
                    );
                    // One request per connection, so every POST needs a handshake
                    // and a certificate swap shows at once.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        HttpsReceiver {
            port,
            got,
            refused,
            resolver,
            _rt: rt,
        }
    }

    /// Lines received so far.
    pub fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }
}
