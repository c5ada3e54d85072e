//! The one harness protocol tests stand on (SMTP and IMAP now, EWS next): a real
//! store in a temporary directory, a directory with organization `acme.test` and
//! users alice and bob, the access engine with WorkMail's default rule, captured
//! events, the shared authenticator, a dev CA and TLS acceptor, listeners on port 0
//! through `net`'s real accept loop, and a line client with TLS upgrade.
//!
//! Test-only; it wires what `server` wires for the daemon, without `server`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::login::Authenticator;
use crate::access::{AccessEngine, AccessLimits, TokenKeys};
use crate::config::{Limits, TlsMode};
use crate::directory::Directory;
use crate::events::{Captured, Events};
use crate::net::{AcceptContext, BoundListener, ConnLimits, Protocol, accept_loop};
use crate::store::Backend;
use crate::tls::{self, CertResolver};

/// The password of every user the harness creates.
pub const PASSWORD: &str = "Corr3ct-Horse";

/// Everything a protocol's sessions need, built the way the daemon builds it.
pub struct World {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn Backend>,
    pub directory: Arc<Directory>,
    pub access: Arc<AccessEngine>,
    /// The organization `acme` with mail domain `acme.test`.
    pub org: String,
    /// Users alice@acme.test and bob@acme.test, password [`PASSWORD`].
    pub alice: String,
    pub bob: String,
    pub events: Events,
    pub captured: Captured,
    pub auth: Arc<Authenticator>,
    /// The dev CA that signed the listeners' certificate (for `localhost`).
    pub ca: PathBuf,
    pub acceptor: TlsAcceptor,
    pub draining: CancellationToken,
}

impl World {
    /// A fresh world; `setup(directory, org, alice, bob)` runs before anything is
    /// served (for the groups, aliases and grants a test module wants).
    pub async fn new(setup: impl FnOnce(&Directory, &str, &str, &str) + Send + 'static) -> World {
        tls::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::testing::open(&dir.path().join("store.sqlite"));
        let (directory, access, org, alice, bob) = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                let d = Arc::new(Directory::open(store.clone()).unwrap());
                let org = d.create_organization("acme", "acme.test").unwrap();
                let alice = crate::directory::testing::user(&d, &org, "alice", PASSWORD);
                let bob = crate::directory::testing::user(&d, &org, "bob", PASSWORD);
                setup(&d, &org, &alice, &bob);
                let access = Arc::new(
                    AccessEngine::open(store, AccessLimits::default(), TokenKeys::generate("k1"))
                        .unwrap(),
                );
                access.create_organization_defaults(&org, 1).unwrap();
                (d, access, org, alice, bob)
            })
            .await
            .unwrap()
        };
        let (events, captured) = Events::capture();
        let auth = Arc::new(Authenticator::new(
            directory.clone(),
            access.clone(),
            events.clone(),
            "local",
            "000000000000",
        ));
        let dev = tls::generate_dev_cert(&dir.path().join("tls"), "localhost").unwrap();
        let resolver = Arc::new(CertResolver::default());
        resolver.load(&[dev.pair()]).unwrap();
        World {
            acceptor: TlsAcceptor::from(tls::server_config(resolver, &[])),
            ca: dev.ca,
            dir,
            store,
            directory,
            access,
            org,
            alice,
            bob,
            events,
            captured,
            auth,
            draining: CancellationToken::new(),
        }
    }

    /// What every listener of a test shares: these limits, generous connection caps.
    pub fn accept_context(&self, limits: Limits) -> AcceptContext {
        AcceptContext {
            conn_limits: ConnLimits::new(100, 100, 0),
            limits: Arc::new(limits),
            tracker: TaskTracker::new(),
            draining: self.draining.clone(),
            metrics: Arc::new(crate::events::Metrics::new()),
        }
    }

    /// Serves `protocol` on 127.0.0.1, a port the kernel picks; returns the port.
    pub async fn listen(
        &self,
        accept: &AcceptContext,
        name: &'static str,
        tls_mode: TlsMode,
        protocol: Arc<dyn Protocol>,
    ) -> u16 {
        self.listen_proxied(accept, name, tls_mode, protocol, None)
            .await
    }

    /// [`World::listen`] on a listener expecting a PROXY header from `proxy`'s
    /// addresses (`None`: a direct listener).
    pub async fn listen_proxied(
        &self,
        accept: &AcceptContext,
        name: &'static str,
        tls_mode: TlsMode,
        protocol: Arc<dyn Protocol>,
        proxy: Option<crate::net::ProxyPolicy>,
    ) -> u16 {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let bound = BoundListener {
            name,
            tls_mode,
            socket,
            protocol,
            acceptor: self.acceptor.clone(),
            proxy: proxy.map(Arc::new),
        };
        tokio::spawn(accept_loop(bound, accept.clone()));
        port
    }
}

/// A raw line client over any stream.
pub struct LineClient<S> {
    pub io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> LineClient<S> {
    /// A client over `stream`.
    pub fn new(stream: S) -> LineClient<S> {
        LineClient {
            io: BufReader::new(stream),
        }
    }

    /// Sends `text` as it is.
    pub async fn send(&mut self, text: &str) {
        self.io.get_mut().write_all(text.as_bytes()).await.unwrap();
        self.io.get_mut().flush().await.unwrap();
    }

    /// One line with its ending, `<EOF>` when the server closed; fails the test
    /// after 10 s of silence.
    pub async fn line(&mut self) -> String {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(10), self.io.read_line(&mut line))
            .await
            .expect("server answered in time")
            .unwrap();
        if n == 0 {
            return "<EOF>".into();
        }
        line
    }
}

/// The client side of TLS on `tcp`, trusting only the CA in `ca`, for `localhost`.
pub async fn tls_upgrade(ca: &Path, tcp: TcpStream) -> tokio_rustls::client::TlsStream<TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap()
}
