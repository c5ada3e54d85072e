//! TLS for every listener: rustls with TLS 1.2 and 1.3 only, certificates chosen by
//! SNI, hot reload on SIGHUP, and the dev CA that a first start generates.
//!
//! One [`CertResolver`] is shared by all listeners; a reload swaps its certificate
//! set atomically, so handshakes in flight and established sessions are untouched
//! and the next handshake sees the new files.

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

/// Writes a dev CA and a leaf certificate for `host`, localhost, 127.0.0.1 and ::1,
/// so clients can verify against `ca.pem` instead of turning verification off.
pub fn generate_dev_cert(dir: &Path, host: &str) -> Result<DevCert, TlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let fail =
        |what: &str, e: &dyn std::fmt::Display| TlsError(format!("{}: {what}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(|e| fail("cannot create directory", &e))?;

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| fail("CA", &e))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("mailgate dev CA ({host})"));
    ca_params.distinguished_name = dn;
    let ca_key = KeyPair::generate().map_err(|e| fail("CA key", &e))?;
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|e| fail("CA certificate", &e))?;

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
    let leaf_key = KeyPair::generate().map_err(|e| fail("key", &e))?;
    let issuer = Issuer::new(ca_params, &ca_key);
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .map_err(|e| fail("certificate", &e))?;

    let out = DevCert::in_dir(dir);
    write_file(&out.ca, ca_cert.pem().as_bytes(), 0o644)?;
    write_file(&out.ca_key, ca_key.serialize_pem().as_bytes(), 0o600)?;
    // The chain includes the CA so clients that only know ca.pem get a full path.
    write_file(
        &out.cert,
        format!("{}{}", leaf_cert.pem(), ca_cert.pem()).as_bytes(),
        0o644,
    )?;
    write_file(&out.key, leaf_key.serialize_pem().as_bytes(), 0o600)?;
    Ok(out)
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
