//! TLS to the PostgreSQL server (rustls), with libpq's `sslmode` meanings.
//!
//! Owns the reading of `sslmode` and `sslrootcert` from `store.url` (tokio-postgres
//! knows only disable/prefer/require and no root file, so both are taken out of the
//! URL before it parses the rest) and the [`MakeTlsConnect`] that every connection of
//! the backend uses: the pool's, the migration connection's, the listener's.
//!
//! Modes, as libpq defines them:
//! - `disable`: plain.
//! - `prefer` (the default): TLS if the server offers it, else plain; no certificate
//!   check (an active attacker can downgrade or impersonate: it only stops a passive
//!   one).
//! - `require`: TLS or no connection. As in libpq, the certificate is not checked
//!   unless a root file is given (`sslrootcert`), in which case `require` checks the
//!   chain as `verify-ca` does (libpq's backward-compatible rule).
//! - `verify-ca`: TLS, the chain must end at a root in `sslrootcert`; any name.
//! - `verify-full`: as `verify-ca`, and the certificate must name the host of the URL
//!   (a DNS name, or an IP address SAN for an IP host).
//!
//! `verify-ca` and `verify-full` need `sslrootcert=PATH` (a PEM file of one or more
//! CA certificates): libpq's default `~/.postgresql/root.crt` and `sslrootcert=system`
//! are not read, so a missing root file is an error that names the key, not a silent
//! fallback. Client certificates (`sslcert`, `sslkey`) are not supported.
//! Channel binding (`tls-server-end-point`) is offered, so SCRAM-SHA-256-PLUS
//! and `channel_binding=require` work.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode as WireMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use crate::store::{Result, StoreError};

/// libpq's `sslmode` values (the module doc says what each checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// Parses a `sslmode` value; `allow` (plain first, TLS on refusal) is not
    /// offered: it is `prefer` the other way round and nobody needs it.
    fn parse(value: &str) -> Result<SslMode> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(StoreError::Io(format!(
                    "store.url: sslmode={other:?} is not one of disable, prefer, require, \
                     verify-ca, verify-full"
                )));
            }
        })
    }
}

/// What the URL asked of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsParams {
    pub mode: SslMode,
    /// `sslrootcert`: the PEM file of the CA certificates to trust.
    pub root_cert: Option<PathBuf>,
}

/// Takes `sslmode` and `sslrootcert` out of the query of `url`; returns the
/// rest of the URL (for tokio-postgres) and what they said. Pure.
pub fn split_url(url: &str) -> Result<(String, TlsParams)> {
    let mut params = TlsParams {
        mode: SslMode::Prefer,
        root_cert: None,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), params));
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => params.mode = SslMode::parse(&percent_decode(value))?,
            "sslrootcert" => params.root_cert = Some(PathBuf::from(percent_decode(value))),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, params))
}

/// `%XX` escapes decoded (a path in a URL may carry them); anything malformed
/// is kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How each connection of the backend is made: the parsed config (its wire
/// `sslmode` set) and the TLS connector.
#[derive(Clone)]
pub struct Connector {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustls,
}

impl Connector {
    /// Reads `url` (with `sslmode`/`sslrootcert`) into a config and a TLS
    /// connector; an unreadable root file or a verify mode without one is an
    /// error naming the key.
    pub fn from_url(url: &str) -> Result<Connector> {
        let (rest, params) = split_url(url)?;
        let mut config: tokio_postgres::Config = rest
            .parse()
            .map_err(|e| StoreError::Io(format!("store.url: {e}")))?;
        config.ssl_mode(match params.mode {
            SslMode::Disable => WireMode::Disable,
            SslMode::Prefer => WireMode::Prefer,
            _ => WireMode::Require,
        });
        let check = Check::of(&params)?;
        Ok(Connector {
            config,
            tls: MakeRustls {
                config: client_config(check)?,
            },
        })
    }

    /// One connection, its I/O driven by a spawned task.
    pub async fn connect(&self) -> Result<tokio_postgres::Client> {
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(super::pg_error)?;
        tokio::spawn(connection);
        Ok(client)
    }
}

/// What the certificate check does.
enum Check {
    /// No check (prefer, require without a root file).
    None,
    /// The chain ends at one of these roots; `names` also checks the host name.
    Chain { roots: RootCertStore, names: bool },
}

impl Check {
    fn of(params: &TlsParams) -> Result<Check> {
        let names = params.mode == SslMode::VerifyFull;
        match (params.mode, &params.root_cert) {
            (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => Ok(Check::None),
            (_, Some(path)) => Ok(Check::Chain {
                roots: roots_from(path)?,
                names,
            }),
            (_, None) => Err(StoreError::Io(
                "store.url: sslmode=verify-ca and verify-full need sslrootcert=PATH \
                 (the PEM file of the server's CA)"
                    .into(),
            )),
        }
    }
}

/// The CA certificates in the PEM file at `path`.
fn roots_from(path: &std::path::Path) -> Result<RootCertStore> {
    let at = |e: &dyn std::fmt::Display| {
        StoreError::Io(format!("store.url: sslrootcert ({}): {e}", path.display()))
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| at(&e))? {
        roots.add(cert.map_err(|e| at(&e))?).map_err(|e| at(&e))?;
    }
    if roots.is_empty() {
        return Err(at(&"no certificates in the file"));
    }
    Ok(roots)
}

fn client_config(check: Check) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain = match check {
        Check::None => None,
        Check::Chain { roots, names } => {
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| StoreError::Io(format!("store.url: sslrootcert: {e}")))?;
            Some((webpki, names))
        }
    };
    let verifier = Arc::new(Verifier {
        chain,
        algorithms: provider.signature_verification_algorithms,
    });
    let config = ClientConfig::builder_with_provider(provider as Arc<CryptoProvider>)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Io(format!("postgres TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The certificate check of every mode. `chain`: webpki's check and whether a
/// name mismatch counts (`verify-full`) or is forgiven (`verify-ca`: webpki
/// checks the name after the chain); without it (`prefer`, `require`) any
/// certificate passes. The handshake's signatures are always checked (the
/// session is encrypted to whoever holds the certificate's key).
#[derive(Debug)]
struct Verifier {
    chain: Option<(Arc<rustls::client::WebPkiServerVerifier>, bool)>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some((webpki, names)) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !names => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// tokio-postgres' TLS hook over rustls.
#[derive(Clone)]
pub struct MakeRustls {
    config: Arc<ClientConfig>,
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(
        &mut self,
        domain: &str,
    ) -> std::result::Result<RustlsConnect, Self::Error> {
        Ok(RustlsConnect {
            config: self.config.clone(),
            name: ServerName::try_from(domain)?.to_owned(),
        })
    }
}

/// One handshake to one host.
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move {
            let tls = connector.connect(self.name, stream).await?;
            Ok(RustlsStream(Box::new(tls)))
        })
    }
}

/// The TLS stream of a connection, offering `tls-server-end-point` channel
/// binding (SCRAM-SHA-256-PLUS) when the server's certificate allows it.
pub struct RustlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S> tokio_postgres::tls::TlsStream for RustlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| end_point_hash(cert.as_ref()))
            .map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point)
    }
}

/// RFC 5929's `tls-server-end-point`: the server certificate hashed with the
/// hash of its signature algorithm, SHA-256 for MD5 and SHA-1. `None` for an
/// algorithm not listed here (Ed25519 has no such hash; RSA-PSS names it in
/// parameters): no binding is offered rather than a wrong one, which would
/// fail authentication. Pure.
fn end_point_hash(der: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    match cert.signature_algorithm.algorithm.to_id_string().as_str() {
        // md5, sha1, sha256 WithRSAEncryption; ecdsa-with-SHA1, -SHA256.
        "1.2.840.113549.1.1.4"
        | "1.2.840.113549.1.1.5"
        | "1.2.840.113549.1.1.11"
        | "1.2.840.10045.4.1"
        | "1.2.840.10045.4.3.2" => Some(sha2::Sha256::digest(der).to_vec()),
        // sha384WithRSAEncryption, ecdsa-with-SHA384.
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => Some(sha2::Sha384::digest(der).to_vec()),
        // sha512WithRSAEncryption, ecdsa-with-SHA512.
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => Some(sha2::Sha512::digest(der).to_vec()),
        _ => None,
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_root_file_leave_the_url() {
        let (rest, p) =
            split_url("postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem").unwrap();
        assert_eq!(rest, "postgres://u@h/db");
        assert_eq!(p.mode, SslMode::VerifyFull);
        assert_eq!(p.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        let (rest, p) =
            split_url("postgres://u@h/db?application_name=mg&sslmode=require&connect_timeout=5")
                .unwrap();
        assert_eq!(
            rest,
            "postgres://u@h/db?application_name=mg&connect_timeout=5"
        );
        assert_eq!((p.mode, p.root_cert), (SslMode::Require, None));
    }

    #[test]
    fn prefer_is_the_default() {
        let (rest, p) = split_url("postgres://u@h/db").unwrap();
        assert_eq!(
            (rest.as_str(), p.mode),
            ("postgres://u@h/db", SslMode::Prefer)
        );
    }

    #[test]
    fn unknown_modes_and_verify_without_roots_are_refused() {
        let e = split_url("postgres://u@h/db?sslmode=allow")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslmode=\"allow\""), "{e}");
        for mode in ["verify-ca", "verify-full"] {
            let e = Connector::from_url(&format!("postgres://u@h/db?sslmode={mode}"))
                .err()
                .expect("refused")
                .to_string();
            assert!(e.contains("sslrootcert"), "{mode}: {e}");
        }
        let e = Connector::from_url("postgres://u@h/db?sslmode=require&sslrootcert=/nonexistent")
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("sslrootcert (/nonexistent)"), "{e}");
    }

    #[test]
    fn require_checks_the_chain_only_with_a_root_file() {
        let params = |mode, root: Option<&str>| TlsParams {
            mode,
            root_cert: root.map(PathBuf::from),
        };
        assert!(matches!(
            Check::of(&params(SslMode::Require, None)),
            Ok(Check::None)
        ));
        assert!(matches!(
            Check::of(&params(SslMode::Prefer, Some("/nonexistent"))),
            Ok(Check::None)
        ));
        assert!(Check::of(&params(SslMode::Require, Some("/nonexistent"))).is_err());
    }

    #[test]
    fn end_point_hash_follows_the_signature_hash() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let dev = crate::tls::generate_dev_cert(dir.path(), "db.test").unwrap();
        let der = CertificateDer::from_pem_file(&dev.cert).unwrap();
        // rcgen signs with ECDSA P-256 and SHA-256.
        assert_eq!(
            end_point_hash(der.as_ref()),
            Some(sha2::Sha256::digest(der.as_ref()).to_vec())
        );
        assert_eq!(end_point_hash(b"not a certificate"), None);
    }

    #[test]
    fn percent_escapes_decode_and_malformed_ones_stay() {
        assert_eq!(percent_decode("a%20b%2"), "a b%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
