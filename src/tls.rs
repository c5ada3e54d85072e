//! TLS for every listener: rustls with TLS 1.2 and 1.3 only, certificates chosen by
//! SNI, hot reload on SIGHUP, and the dev CA that a first start generates.
//!
//! One [`CertResolver`] is shared by all listeners; a reload swaps its certificate
//! set atomically, so handshakes in flight and established sessions are untouched
//! and the next handshake sees the new files. The outbound side (the smarthost relay,
//! HTTP event sinks) gets its connector here too ([`connector_trusting`]). A leaf below
//! the listeners: it knows certificates, not protocols.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, version};

use crate::config::CertificatePair;

/// A certificate or key that cannot be used; the message says which file and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

/// Installs the process-wide crypto provider (aws-lc-rs). Both aws-lc-rs and ring are
/// in the dependency tree, so rustls cannot pick one by itself.
pub fn install_crypto_provider() {
    // Err means another caller (a test) installed it first: that is fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

struct Entry {
    key: Arc<CertifiedKey>,
    end_entity: CertificateDer<'static>,
}

/// Picks a certificate by SNI; the first configured pair is the default.
#[derive(Default)]
pub struct CertResolver {
    entries: ArcSwap<Vec<Entry>>,
}

impl std::fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CertResolver({} certificates)",
            self.entries.load().len()
        )
    }
}

impl CertResolver {
    /// Loads every pair; on any error nothing changes and the error names the file.
    pub fn load(&self, pairs: &[CertificatePair]) -> Result<(), TlsError> {
        if pairs.is_empty() {
            return Err(TlsError(
                "tls.certificates: no certificate configured".into(),
            ));
        }
        let mut entries = Vec::with_capacity(pairs.len());
        for (i, pair) in pairs.iter().enumerate() {
            entries.push(load_pair(i, pair)?);
        }
        self.entries.store(Arc::new(entries));
        Ok(())
    }

    fn pick(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let entries = self.entries.load();
        if let Some(name) = sni.and_then(|n| ServerName::try_from(n.to_owned()).ok()) {
            for e in entries.iter() {
                let Ok(cert) = webpki::EndEntityCert::try_from(&e.end_entity) else {
                    continue;
                };
                if cert.verify_is_valid_for_subject_name(&name).is_ok() {
                    return Some(e.key.clone());
                }
            }
        }
        entries.first().map(|e| e.key.clone())
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(hello.server_name())
    }
}

fn load_pair(i: usize, pair: &CertificatePair) -> Result<Entry, TlsError> {
    let where_cert = format!("tls.certificates[{i}].cert ({})", pair.cert.display());
    let where_key = format!("tls.certificates[{i}].key ({})", pair.key.display());
    let cert_pem = std::fs::read(&pair.cert).map_err(|e| TlsError(format!("{where_cert}: {e}")))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError(format!("{where_cert}: not a PEM certificate: {e:?}")))?;
    let Some(end_entity) = chain.first().cloned() else {
        return Err(TlsError(format!(
            "{where_cert}: no certificate in the file"
        )));
    };
    webpki::EndEntityCert::try_from(&end_entity)
        .map_err(|e| TlsError(format!("{where_cert}: unparsable certificate: {e}")))?;
    let key_pem = std::fs::read(&pair.key).map_err(|e| TlsError(format!("{where_key}: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| TlsError(format!("{where_key}: no PEM private key: {e:?}")))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| TlsError(format!("{where_key}: does not fit the certificate: {e}")))?;
    Ok(Entry {
        key: Arc::new(certified),
        end_entity,
    })
}

/// A TLS client connector that trusts exactly the certificates in the PEM file at
/// `path` (a smarthost's or an event receiver's CA). Errors read `KEY (PATH): why`,
/// `key` being the config key that named the file.
pub fn connector_trusting(path: &Path, key: &str) -> Result<tokio_rustls::TlsConnector, TlsError> {
    let at = |e: &dyn std::fmt::Display| TlsError(format!("{key} ({}): {e}", path.display()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| at(&e))? {
        roots.add(cert.map_err(|e| at(&e))?).map_err(|e| at(&e))?;
    }
    if roots.is_empty() {
        return Err(at(&"no certificates in the file"));
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Builds the rustls server config shared by the listeners: TLS 1.2 and 1.3 only,
/// rustls' default (AEAD-only, forward-secret) cipher suites.
pub fn server_config(resolver: Arc<CertResolver>, alpn: &[&[u8]]) -> Arc<ServerConfig> {
    let mut cfg = ServerConfig::builder_with_protocol_versions(&[&version::TLS13, &version::TLS12])
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

/// Paths of a generated dev CA and the leaf certificate it signed.
#[derive(Debug, Clone)]
pub struct DevCert {
    pub ca: PathBuf,
    pub ca_key: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl DevCert {
    /// Where `gen-cert` writes into `dir`.
    pub fn in_dir(dir: &Path) -> DevCert {
        DevCert {
            ca: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    /// The pair to serve.
    pub fn pair(&self) -> CertificatePair {
        CertificatePair {
            cert: self.cert.clone(),
            key: self.key.clone(),
        }
    }
}

/// How long a generated leaf certificate is valid. Apple clients refuse server
/// certificates valid for more than 825 days, browsers more than 398.
pub const DEV_LEAF_DAYS: i64 = 397;
/// A leaf with less than this left is issued again at start.
pub const DEV_RENEW_DAYS: i64 = 30;
/// The dev CA lives long (a CA is not bound by the leaf limits), so clients that
/// trust `ca.pem` keep trusting each renewed leaf.
const DEV_CA_DAYS: i64 = 10 * 365;

/// Writes a dev CA and a leaf certificate for `host`, localhost, 127.0.0.1 and ::1,
/// so clients can verify against `ca.pem` instead of turning verification off.
pub fn generate_dev_cert(dir: &Path, host: &str) -> Result<DevCert, TlsError> {
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair};
    let fail =
        |what: &str, e: &dyn std::fmt::Display| TlsError(format!("{}: {what}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(|e| fail("cannot create directory", &e))?;

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| fail("CA", &e))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("mailgate dev CA ({host})"));
    ca_params.distinguished_name = dn;
    let (from, _) = validity(DEV_CA_DAYS);
    ca_params.not_before = from;
    ca_params.not_after = from + time::Duration::days(DEV_CA_DAYS);
    let ca_key = KeyPair::generate().map_err(|e| fail("CA key", &e))?;
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|e| fail("CA certificate", &e))?;
    let out = DevCert::in_dir(dir);
    write_file(&out.ca, ca_cert.pem().as_bytes(), 0o644)?;
    write_file(&out.ca_key, ca_key.serialize_pem().as_bytes(), 0o600)?;
    issue_leaf(&out, host)?;
    Ok(out)
}

/// Issues the leaf again, signed by the existing dev CA, when it has less than
/// [`DEV_RENEW_DAYS`] left or was made valid for longer than [`DEV_LEAF_DAYS`] (as
/// mailgate's first versions did: 1975 to 4096). True when it did. Without the CA
/// files, everything is generated afresh (clients must trust the new `ca.pem`).
pub fn renew_dev_cert_if_due(dir: &Path, host: &str) -> Result<bool, TlsError> {
    let dev = DevCert::in_dir(dir);
    let due = match leaf_validity(&dev.cert) {
        Some((from, until)) => {
            let now = time::OffsetDateTime::now_utc();
            until - now < time::Duration::days(DEV_RENEW_DAYS)
                || until - from > time::Duration::days(DEV_LEAF_DAYS)
        }
        None => true,
    };
    if !due {
        return Ok(false);
    }
    if dev.ca.exists() && dev.ca_key.exists() {
        issue_leaf(&dev, host)?;
    } else {
        generate_dev_cert(dir, host)?;
    }
    Ok(true)
}

/// From an hour ago (clocks differ) for `days` days.
fn validity(days: i64) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let from = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    (from, from + time::Duration::days(days))
}

/// The validity period of the first certificate in a PEM file.
pub fn leaf_validity(path: &Path) -> Option<(time::OffsetDateTime, time::OffsetDateTime)> {
    let pem = std::fs::read(path).ok()?;
    let der = CertificateDer::pem_slice_iter(&pem).next()?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    let v = cert.validity();
    Some((v.not_before.to_datetime(), v.not_after.to_datetime()))
}

/// Signs a leaf for `host`, localhost, 127.0.0.1 and ::1 with the dev CA in `dev`.
fn issue_leaf(dev: &DevCert, host: &str) -> Result<(), TlsError> {
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    };
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        TlsError(format!("{}: {what}: {e}", dev.cert.display()))
    };
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| TlsError(format!("{}: {e}", p.display())))
    };
    let ca_pem = read(&dev.ca)?;
    let ca_key = KeyPair::from_pem(&read(&dev.ca_key)?).map_err(|e| fail("CA key", &e))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key).map_err(|e| fail("CA", &e))?;

    let mut names = vec![host.to_string()];
    for n in ["localhost", "127.0.0.1", "::1"] {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    }
    let mut leaf = CertificateParams::new(names).map_err(|e| fail("host name", &e))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, host);
    leaf.distinguished_name = dn;
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    (leaf.not_before, leaf.not_after) = validity(DEV_LEAF_DAYS);
    let leaf_key = KeyPair::generate().map_err(|e| fail("key", &e))?;
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .map_err(|e| fail("certificate", &e))?;
    // Key first: a crash between the two writes leaves a mismatched pair, which the
    // next start reports and renews (the leaf no longer parses as due otherwise).
    write_file(&dev.key, leaf_key.serialize_pem().as_bytes(), 0o600)?;
    // The chain includes the CA so clients that only know ca.pem get a full path.
    write_file(
        &dev.cert,
        format!("{}{}", leaf_cert.pem(), ca_pem).as_bytes(),
        0o644,
    )?;
    Ok(())
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    res.map_err(|e| TlsError(format!("{}: cannot write: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_cert_loads_and_is_picked_by_sni() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let a = generate_dev_cert(&dir.path().join("a"), "mail.a.test").unwrap();
        let b = generate_dev_cert(&dir.path().join("b"), "mail.b.test").unwrap();
        let resolver = CertResolver::default();
        resolver.load(&[a.pair(), b.pair()]).unwrap();
        let first = resolver.pick(None).unwrap();
        let by_b = resolver.pick(Some("mail.b.test")).unwrap();
        let by_a = resolver.pick(Some("mail.a.test")).unwrap();
        let unknown = resolver.pick(Some("other.test")).unwrap();
        assert_eq!(first.cert[0], by_a.cert[0]);
        assert_ne!(by_a.cert[0], by_b.cert[0]);
        assert_eq!(
            unknown.cert[0], by_a.cert[0],
            "unknown names get the default"
        );
        let key_mode = std::fs::metadata(&a.key).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(key_mode.permissions().mode() & 0o777, 0o600);
    }

    /// Issue 20.14: at most 397 days (Apple refuses more than 825), renewed by the
    /// same CA when less than 30 days remain or when an old install's leaf runs to 4096.
    #[test]
    fn the_dev_leaf_is_short_lived_and_renewed_by_the_same_ca() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let dev = generate_dev_cert(dir.path(), "mail.a.test").unwrap();
        let (from, until) = leaf_validity(&dev.cert).unwrap();
        assert!(until - from <= time::Duration::days(DEV_LEAF_DAYS));
        assert!(from <= time::OffsetDateTime::now_utc());
        assert!(
            !renew_dev_cert_if_due(dir.path(), "mail.a.test").unwrap(),
            "fresh"
        );
        let ca_before = std::fs::read(&dev.ca).unwrap();

        // A leaf as the first versions made it: 1975 to 4096.
        let ca_pem = std::fs::read_to_string(&dev.ca).unwrap();
        let ca_key =
            rcgen::KeyPair::from_pem(&std::fs::read_to_string(&dev.ca_key).unwrap()).unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, &ca_key).unwrap();
        let mut old = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        old.not_before = rcgen::date_time_ymd(1975, 1, 1);
        old.not_after = rcgen::date_time_ymd(4096, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = old.signed_by(&key, &issuer).unwrap();
        std::fs::write(&dev.cert, cert.pem()).unwrap();
        std::fs::write(&dev.key, key.serialize_pem()).unwrap();
        assert!(
            renew_dev_cert_if_due(dir.path(), "mail.a.test").unwrap(),
            "too long"
        );
        let (from, until) = leaf_validity(&dev.cert).unwrap();
        assert!(until - from <= time::Duration::days(DEV_LEAF_DAYS));
        assert_eq!(std::fs::read(&dev.ca).unwrap(), ca_before, "same CA");

        // Nearly expired.
        let mut ending = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let now = time::OffsetDateTime::now_utc();
        ending.not_before = now - time::Duration::days(380);
        ending.not_after = now + time::Duration::days(10);
        let cert = ending.signed_by(&key, &issuer).unwrap();
        std::fs::write(&dev.cert, cert.pem()).unwrap();
        assert!(
            renew_dev_cert_if_due(dir.path(), "mail.a.test").unwrap(),
            "10 days left"
        );
        let (_, until) = leaf_validity(&dev.cert).unwrap();
        assert!(until - now > time::Duration::days(DEV_LEAF_DAYS - 2));
        // The renewed pair loads and chains to the unchanged CA.
        CertResolver::default().load(&[dev.pair()]).unwrap();
    }

    #[test]
    fn bad_files_are_named_and_leave_the_old_set() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let a = generate_dev_cert(&dir.path().join("a"), "mail.a.test").unwrap();
        let b = generate_dev_cert(&dir.path().join("b"), "mail.b.test").unwrap();
        let resolver = CertResolver::default();
        resolver.load(&[a.pair()]).unwrap();

        let missing = CertificatePair {
            cert: dir.path().join("nope.pem"),
            key: a.key.clone(),
        };
        let e = resolver.load(&[missing]).unwrap_err().0;
        assert!(
            e.contains("tls.certificates[0].cert") && e.contains("nope.pem"),
            "{e}"
        );

        let mismatched = CertificatePair {
            cert: a.cert.clone(),
            key: b.key.clone(),
        };
        let e = resolver.load(&[mismatched]).unwrap_err().0;
        assert!(e.contains("tls.certificates[0].key"), "{e}");

        std::fs::write(dir.path().join("garbage.pem"), "hello").unwrap();
        let garbage = CertificatePair {
            cert: dir.path().join("garbage.pem"),
            key: a.key.clone(),
        };
        let e = resolver.load(&[garbage]).unwrap_err().0;
        assert!(e.contains("no certificate"), "{e}");

        assert!(
            resolver.pick(Some("mail.a.test")).is_some(),
            "old set still served"
        );
    }
}
