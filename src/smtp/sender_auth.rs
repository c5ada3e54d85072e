//! SPF, DKIM and DMARC checks of inbound (MX) mail with mail-auth: the verdicts the
//! ORGANIZATION_EMAIL_RECEIVED event reports, the DMARC policy an enforcing
//! organization applies, and the Authentication-Results header (RFC 8601) stored
//! with the message so mail clients can show it.
//!
//! DNS comes from the system resolver (or the configured name servers) through the
//! caches of [`super::dns`], or, with `resolver = "static"`, only from a records
//! file: every name it lacks answers NXDOMAIN and no query leaves the process (tests,
//! and hosts that must not resolve). The whole check has a deadline: past it the
//! verdicts are TEMPERROR and the message goes on, so a dead DNS server delays a
//! message by the deadline at most, and for a minute not at all.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use super::dns::{Tracked, TtlCache};

use mail_auth::common::headers::HeaderWriter;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::{Dmarc, Policy};
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::spf::Spf;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimResult, DmarcResult, DnsError, DnssecStatus,
    MX, MessageAuthenticator, Parameters, RecordSet, ResolverCache, SpfResult, Txt,
};

/// Why the sender checks cannot be set up: a records file or the resolver.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SenderAuthError(pub String);

impl From<crate::config::ConfigError> for SenderAuthError {
    fn from(e: crate::config::ConfigError) -> Self {
        SenderAuthError(e.0)
    }
}

/// A verdict as SES receipt notifications (and so WorkMail's events) spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// No policy or signature to judge by.
    Gray,
    /// DNS or record errors prevented a verdict.
    ProcessingFailed,
}

impl Verdict {
    /// The event field value.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Gray => "GRAY",
            Verdict::ProcessingFailed => "PROCESSING_FAILED",
        }
    }
}

/// The sending domain's DMARC policy, as `dmarcPolicy` and DMARC_POLICY_APPLIED name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcPolicy {
    None,
    Quarantine,
    Reject,
}

impl DmarcPolicy {
    /// The event field value.
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcPolicy::None => "NONE",
            DmarcPolicy::Quarantine => "QUARANTINE",
            DmarcPolicy::Reject => "REJECT",
        }
    }
}

/// What the checks found for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdicts {
    pub spf: Verdict,
    pub dkim: Verdict,
    pub dmarc: Verdict,
    /// Set only when `dmarc` is FAIL (as WorkMail reports it).
    pub dmarc_policy: Option<DmarcPolicy>,
    /// `Authentication-Results: ...\r\n`, to prepend to the stored message.
    pub header: String,
}

/// The SMTP facts the checks need besides the message.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    pub client_ip: IpAddr,
    pub helo: &'a str,
    /// MAIL FROM, empty for the null sender.
    pub mail_from: &'a str,
}

/// The checker shared by every MX session.
pub struct SenderAuth {
    hostname: String,
    authenticator: MessageAuthenticator,
    records: StaticRecords,
    caches: Caches,
    deadline: Duration,
}

/// mailgate's own DNS caches, one per record type mail-auth asks for.
#[derive(Default)]
struct Caches {
    txt: TtlCache<Box<str>, Txt>,
    mx: TtlCache<Box<str>, RecordSet<MX>>,
    ipv4: TtlCache<Box<str>, RecordSet<Ipv4Addr>>,
    ipv6: TtlCache<Box<str>, RecordSet<Ipv6Addr>>,
    ptr: TtlCache<IpAddr, RecordSet<Box<str>>>,
}

/// One record type's lookups in one check: static records, then the cache.
type Layer<'a, K, V> = Tracked<'a, Fixed<K, V>, K, V>;

/// One check's lookups: static records first, then the caches, misses noted.
struct Lookups<'a> {
    txt: Layer<'a, Box<str>, Txt>,
    mx: Layer<'a, Box<str>, RecordSet<MX>>,
    ipv4: Layer<'a, Box<str>, RecordSet<Ipv4Addr>>,
    ipv6: Layer<'a, Box<str>, RecordSet<Ipv6Addr>>,
    ptr: Layer<'a, IpAddr, RecordSet<Box<str>>>,
}

impl<'a> Lookups<'a> {
    fn new(records: &'a StaticRecords, caches: &'a Caches) -> Self {
        Lookups {
            txt: Tracked::new(&records.txt, &caches.txt),
            mx: Tracked::new(&records.mx, &caches.mx),
            ipv4: Tracked::new(&records.ipv4, &caches.ipv4),
            ipv6: Tracked::new(&records.ipv6, &caches.ipv6),
            ptr: Tracked::new(&records.ptr, &caches.ptr),
        }
    }

    /// The names this check could not resolve are remembered as failed.
    fn failed(&self) {
        self.txt.failed();
        self.mx.failed();
        self.ipv4.failed();
        self.ipv6.failed();
        self.ptr.failed();
    }

    /// Verifier parameters that consult these lookups before any resolver.
    #[allow(clippy::type_complexity)]
    fn params<P>(
        &self,
        input: P,
    ) -> Parameters<
        '_,
        P,
        Layer<'a, Box<str>, Txt>,
        Layer<'a, Box<str>, RecordSet<MX>>,
        Layer<'a, Box<str>, RecordSet<Ipv4Addr>>,
        Layer<'a, Box<str>, RecordSet<Ipv6Addr>>,
        Layer<'a, IpAddr, RecordSet<Box<str>>>,
    > {
        Parameters {
            params: input,
            cache_txt: Some(&self.txt),
            cache_mx: Some(&self.mx),
            cache_ptr: Some(&self.ptr),
            cache_ipv4: Some(&self.ipv4),
            cache_ipv6: Some(&self.ipv6),
        }
    }
}

impl SenderAuth {
    /// As `[smtp.sender_auth]` says (`records_path` resolved against the data dir).
    pub fn from_config(
        hostname: &str,
        section: &crate::config::SenderAuthSection,
        records_path: Option<&Path>,
    ) -> Result<SenderAuth, SenderAuthError> {
        let records = match records_path {
            Some(p) => StaticRecords::load(p)?,
            None => StaticRecords::default(),
        };
        let deadline = Duration::from_millis(section.timeout_ms);
        match section.resolver {
            crate::config::ResolverKind::System => {
                let authenticator =
                    super::dns::resolver(&section.nameserver_addrs()?, deadline / 2)?;
                Ok(SenderAuth {
                    hostname: hostname.to_string(),
                    authenticator,
                    records,
                    caches: Caches::default(),
                    deadline,
                })
            }
            crate::config::ResolverKind::Static => Ok(SenderAuth::fixed(hostname, records)),
        }
    }

    /// Checks that only ever see `records`; no query is sent to any DNS server.
    pub fn fixed(hostname: &str, records: StaticRecords) -> SenderAuth {
        use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
        let records = records.answering_everything();
        // Never asked (the records answer every name), so it has no name server.
        let authenticator = MessageAuthenticator::new(
            ResolverConfig::from_parts(None, vec![], vec![]),
            ResolverOpts::default(),
        )
        .expect("a resolver without name servers builds");
        SenderAuth {
            hostname: hostname.to_string(),
            authenticator,
            records,
            caches: Caches::default(),
            deadline: Duration::from_millis(crate::config::SenderAuthSection::default().timeout_ms),
        }
    }

    /// SPF (of MAIL FROM, or of HELO for the null sender), DKIM and DMARC, within
    /// the deadline. A check that ends in a DNS failure, or runs out of time, makes
    /// the names it could not resolve fail at once for a minute.
    pub async fn check(&self, envelope: Envelope<'_>, message: &[u8]) -> Verdicts {
        let lookups = Lookups::new(&self.records, &self.caches);
        match tokio::time::timeout(self.deadline, self.verify(&lookups, envelope, message)).await {
            Ok((verdicts, dns_failed)) => {
                if dns_failed {
                    lookups.failed();
                }
                verdicts
            }
            Err(_) => {
                lookups.failed();
                tracing::info!(
                    deadline_ms = self.deadline.as_millis() as u64,
                    "sender checks timed out: TEMPERROR"
                );
                self.timed_out(envelope)
            }
        }
    }

    /// Verdicts when the deadline passed: TEMPERROR for each (RFC 8601 `temperror`).
    fn timed_out(&self, envelope: Envelope<'_>) -> Verdicts {
        let mail_from = if envelope.mail_from.is_empty() {
            String::new()
        } else {
            format!(" smtp.mailfrom={}", envelope.mail_from)
        };
        Verdicts {
            spf: Verdict::ProcessingFailed,
            dkim: Verdict::ProcessingFailed,
            dmarc: Verdict::ProcessingFailed,
            dmarc_policy: None,
            header: format!(
                "Authentication-Results: {};\r\n\tspf=temperror{mail_from};\r\n\tdkim=temperror;\r\n\tdmarc=temperror\r\n",
                self.hostname
            ),
        }
    }

    /// The checks, and whether any ended in a DNS failure (TEMPERROR).
    async fn verify(
        &self,
        r: &Lookups<'_>,
        envelope: Envelope<'_>,
        message: &[u8],
    ) -> (Verdicts, bool) {
        let a = &self.authenticator;
        let helo = if envelope.helo.is_empty() {
            "unknown"
        } else {
            envelope.helo
        };
        let spf_params = if envelope.mail_from.is_empty() {
            SpfParameters::verify_ehlo(envelope.client_ip, helo, &self.hostname)
        } else {
            SpfParameters::verify_mail_from(
                envelope.client_ip,
                helo,
                &self.hostname,
                envelope.mail_from,
            )
        };
        let spf = a.verify_spf(r.params(spf_params)).await;
        let mut results = AuthenticationResults::new(&self.hostname).with_spf_mailfrom_result(
            &spf,
            envelope.client_ip,
            envelope.mail_from,
            helo,
        );
        let spf_failed = spf.result() == SpfResult::TempError;
        let Some(parsed) = AuthenticatedMessage::parse(message) else {
            let verdicts = Verdicts {
                spf: spf_verdict(spf.result()),
                dkim: Verdict::ProcessingFailed,
                dmarc: Verdict::ProcessingFailed,
                dmarc_policy: None,
                header: results.to_header(),
            };
            return (verdicts, spf_failed);
        };
        let dkim = a.verify_dkim(r.params(&parsed)).await;
        results = results.with_dkim_results(&dkim, parsed.from());
        let mail_from_domain = envelope.mail_from.rsplit_once('@').map_or(helo, |(_, d)| d);
        let dmarc = a
            .verify_dmarc(r.params(DmarcParameters::new(&parsed, &dkim, mail_from_domain, &spf)))
            .await;
        results = results.with_dmarc_result(&dmarc);
        let dmarc_verdict = dmarc_verdict(&dmarc.result());
        let dns_failed = spf_failed
            || dkim
                .iter()
                .any(|d| matches!(d.result(), DkimResult::TempError(_)))
            || matches!(dmarc.result(), DmarcResult::TempError(_));
        let verdicts = Verdicts {
            spf: spf_verdict(spf.result()),
            dkim: dkim_verdict(dkim.iter().map(|d| d.result())),
            dmarc: dmarc_verdict,
            dmarc_policy: (dmarc_verdict == Verdict::Fail).then(|| match dmarc.policy() {
                Policy::Reject => DmarcPolicy::Reject,
                Policy::Quarantine => DmarcPolicy::Quarantine,
                _ => DmarcPolicy::None,
            }),
            header: results.to_header(),
        };
        (verdicts, dns_failed)
    }
}

fn spf_verdict(r: SpfResult) -> Verdict {
    match r {
        SpfResult::Pass => Verdict::Pass,
        SpfResult::Fail | SpfResult::SoftFail => Verdict::Fail,
        SpfResult::Neutral | SpfResult::None => Verdict::Gray,
        SpfResult::TempError | SpfResult::PermError => Verdict::ProcessingFailed,
    }
}

/// Any passing signature passes; else any failing one fails; no signature is GRAY.
fn dkim_verdict<'a>(results: impl Iterator<Item = &'a DkimResult>) -> Verdict {
    let mut verdict = Verdict::Gray;
    for r in results {
        let v = match r {
            DkimResult::Pass => return Verdict::Pass,
            DkimResult::Fail(_) | DkimResult::Neutral(_) => Verdict::Fail,
            DkimResult::None => Verdict::Gray,
            _ => Verdict::ProcessingFailed,
        };
        if v == Verdict::Fail || verdict == Verdict::Gray {
            verdict = v;
        }
    }
    verdict
}

fn dmarc_verdict(r: &DmarcResult) -> Verdict {
    match r {
        DmarcResult::Pass => Verdict::Pass,
        DmarcResult::Fail(_) => Verdict::Fail,
        DmarcResult::None => Verdict::Gray,
        DmarcResult::TempError(_) | DmarcResult::PermError(_) => Verdict::ProcessingFailed,
    }
}

/// DNS records loaded from a file. With `resolver = "static"` they answer every
/// lookup: a name without a TXT record is NXDOMAIN, one without MX/A/AAAA/PTR
/// records has none. One record per line, `NAME TYPE VALUE`, `#` comments:
///
/// ```text
/// example.org.                 TXT "v=spf1 ip4:192.0.2.0/24 -all"
/// _dmarc.example.org.          TXT "v=DMARC1; p=reject"
/// s1._domainkey.example.org.   TXT "v=DKIM1; k=ed25519; p=..."
/// example.org.                 MX  10 mx.example.org.
/// mx.example.org.              A   192.0.2.1
/// mx.example.org.              AAAA 2001:db8::1
/// 1.2.0.192.in-addr.arpa.      PTR mx.example.org.
/// ```
/// TXT values are one or more quoted strings, joined; one TXT record per name
/// (an SPF policy, a DKIM key or a DMARC policy).
#[derive(Default)]
pub struct StaticRecords {
    txt: Fixed<Box<str>, Txt>,
    mx: Fixed<Box<str>, RecordSet<MX>>,
    ipv4: Fixed<Box<str>, RecordSet<Ipv4Addr>>,
    ipv6: Fixed<Box<str>, RecordSet<Ipv6Addr>>,
    ptr: Fixed<IpAddr, RecordSet<Box<str>>>,
}

impl StaticRecords {
    /// Reads a records file; errors name the file and line.
    pub fn load(path: &Path) -> Result<StaticRecords, SenderAuthError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SenderAuthError(format!("{}: {e}", path.display())))?;
        StaticRecords::parse(&text).map_err(|e| SenderAuthError(format!("{}: {e}", path.display())))
    }

    /// Parses the records file format.
    pub fn parse(text: &str) -> Result<StaticRecords, SenderAuthError> {
        let mut mx: HashMap<Box<str>, Vec<MX>> = HashMap::new();
        let mut v4: HashMap<Box<str>, Vec<Ipv4Addr>> = HashMap::new();
        let mut v6: HashMap<Box<str>, Vec<Ipv6Addr>> = HashMap::new();
        let mut out = StaticRecords::default();
        for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |what: &str| SenderAuthError(format!("line {n}: {what}"));
            let mut parts = line.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                return Err(bad("expected NAME TYPE VALUE"));
            };
            let value = line
                .split_once(kind)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| bad("expected NAME TYPE VALUE"))?;
            let name: Box<str> = fqdn(name).into();
            match kind.to_ascii_uppercase().as_str() {
                "TXT" => {
                    let data = txt_value(value).ok_or_else(|| bad("TXT wants quoted strings"))?;
                    let record = parse_txt(data.as_bytes()).map_err(|e| bad(&e.0))?;
                    out.txt.map.insert(name, record);
                }
                "MX" => {
                    let (pref, host) = value
                        .split_once(char::is_whitespace)
                        .and_then(|(p, h)| Some((p.parse::<u16>().ok()?, h.trim())))
                        .ok_or_else(|| bad("MX wants PREFERENCE HOST"))?;
                    mx.entry(name).or_default().push(MX {
                        exchanges: vec![Box::<str>::from(fqdn(host))].into(),
                        preference: pref,
                    });
                }
                "A" => v4
                    .entry(name)
                    .or_default()
                    .push(value.parse().map_err(|_| bad("A wants an IPv4 address"))?),
                "AAAA" => v6.entry(name).or_default().push(
                    value
                        .parse()
                        .map_err(|_| bad("AAAA wants an IPv6 address"))?,
                ),
                "PTR" => {
                    let ip = reverse_name_ip(&name)
                        .ok_or_else(|| bad("PTR wants an in-addr.arpa name"))?;
                    out.ptr.map.insert(ip, set(vec![fqdn(value).into()]));
                }
                other => return Err(bad(&format!("unsupported record type {other}"))),
            }
        }
        out.mx.map.extend(mx.into_iter().map(|(k, v)| (k, set(v))));
        out.ipv4
            .map
            .extend(v4.into_iter().map(|(k, v)| (k, set(v))));
        out.ipv6
            .map
            .extend(v6.into_iter().map(|(k, v)| (k, set(v))));
        Ok(out)
    }

    /// These records as the only DNS: a name without records answers "none".
    fn answering_everything(mut self) -> StaticRecords {
        self.txt.exhaustive = true;
        self.mx.exhaustive = true;
        self.ipv4.exhaustive = true;
        self.ipv6.exhaustive = true;
        self.ptr.exhaustive = true;
        self
    }
}

fn set<T>(records: Vec<T>) -> RecordSet<T> {
    RecordSet {
        rrset: records.into(),
        dnssec_status: DnssecStatus::Insecure,
    }
}

fn fqdn(name: &str) -> String {
    let mut n = name.to_ascii_lowercase();
    if !n.ends_with('.') {
        n.push('.');
    }
    n
}

/// `"a" "b"` → `ab`; `None` unless every piece is quoted.
fn txt_value(value: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('"')?;
        let end = inner.find('"')?;
        out.push_str(&inner[..end]);
        rest = inner[end + 1..].trim_start();
    }
    Some(out)
}

/// The record type is told by its content, as the lookups that reach it expect.
fn parse_txt(data: &[u8]) -> Result<Txt, SenderAuthError> {
    let text = String::from_utf8_lossy(data).to_ascii_lowercase();
    let parsed = if text.starts_with("v=spf1") {
        Spf::parse(data).map(Txt::from)
    } else if text.starts_with("v=dmarc1") {
        Dmarc::parse(data).map(Txt::from)
    } else if text.starts_with("v=dkim1") || text.contains("p=") {
        DomainKey::parse(data).map(Txt::from)
    } else {
        return Err(SenderAuthError(
            "TXT must be an SPF policy, a DMARC policy or a DKIM key".into(),
        ));
    };
    parsed.map_err(|e| SenderAuthError(format!("unparseable record: {e}")))
}

/// `4.3.2.1.in-addr.arpa.` → 1.2.3.4 (IPv4 only).
fn reverse_name_ip(name: &str) -> Option<IpAddr> {
    let v4 = name.strip_suffix(".in-addr.arpa.")?;
    let mut octets: Vec<u8> = v4
        .split('.')
        .map(|o| o.parse().ok())
        .collect::<Option<_>>()?;
    if octets.len() != 4 {
        return None;
    }
    octets.reverse();
    Some(IpAddr::from([octets[0], octets[1], octets[2], octets[3]]))
}

/// A fixed answer table. When exhaustive, a name it lacks gets the "nothing
/// there" answer (NXDOMAIN for TXT, an empty set otherwise) instead of a query.
pub struct Fixed<K, V> {
    map: HashMap<K, V>,
    exhaustive: bool,
}

impl<K, V> Default for Fixed<K, V> {
    fn default() -> Self {
        Fixed {
            map: HashMap::new(),
            exhaustive: false,
        }
    }
}

/// The answer for a name that has no records of a type.
trait Nothing {
    fn nothing() -> Self;
}

impl Nothing for Txt {
    fn nothing() -> Self {
        Txt::Error(mail_auth::Error::Dns(DnsError::RecordNotFound(
            ResponseCode::NXDomain,
        )))
    }
}

impl<T> Nothing for RecordSet<T> {
    fn nothing() -> Self {
        set(Vec::new())
    }
}

impl<K: Hash + Eq, V: Clone + Nothing> ResolverCache<K, V> for Fixed<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.map.get(name) {
            Some(v) => Some(v.clone()),
            None => self.exhaustive.then(V::nothing),
        }
    }

    fn remove<Q>(&self, _: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, _: K, _: V, _: Instant) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use mail_auth::common::crypto::Ed25519Key;
    use mail_auth::dkim::DkimSigner;

    const MESSAGE: &str = "From: Ann <ann@remote.test>\r\nTo: bob@acme.test\r\nSubject: numbers\r\nMessage-ID: <n1@remote.test>\r\n\r\nQ3 figures.\r\n";

    fn envelope(ip: &str) -> Envelope<'static> {
        Envelope {
            client_ip: ip.parse().unwrap(),
            helo: "mx.remote.test",
            mail_from: "ann@remote.test",
        }
    }

    /// remote.test's policies: SPF allows 192.0.2.1, DKIM key s1, DMARC `policy`.
    fn records(policy: &str, key: &[u8]) -> StaticRecords {
        let p = base64::engine::general_purpose::STANDARD.encode(key);
        StaticRecords::parse(&format!(
            "# remote.test\n\
             remote.test. TXT \"v=spf1 ip4:192.0.2.1 -all\"\n\
             s1._domainkey.remote.test TXT \"v=DKIM1; k=ed25519; \" \"p={p}\"\n\
             _dmarc.remote.test TXT \"v=DMARC1; p={policy}\"\n\
             remote.test MX 10 mx.remote.test\n\
             mx.remote.test A 192.0.2.1\n"
        ))
        .unwrap()
    }

    thread_local! {
        /// One key per test thread: generating is cheap, but one is enough.
        static KEY_DER: Vec<u8> = Ed25519Key::generate_pkcs8().unwrap();
    }

    fn key() -> Ed25519Key {
        Ed25519Key::from_pkcs8_der(&KEY_DER.with(Vec::clone)).unwrap()
    }

    /// MESSAGE with a DKIM signature by remote.test, selector s1.
    fn signed() -> Vec<u8> {
        let sig = DkimSigner::from_key(key())
            .domain("remote.test")
            .selector("s1")
            .headers(["From", "To", "Subject", "Message-ID"])
            .sign(MESSAGE.as_bytes())
            .unwrap();
        format!("{}{MESSAGE}", sig.to_header()).into_bytes()
    }

    #[tokio::test]
    async fn aligned_spf_and_dkim_pass_everything() {
        let k = key();
        let auth = SenderAuth::fixed("mx.acme.test", records("reject", &k.public_key()));
        let v = auth.check(envelope("192.0.2.1"), &signed()).await;
        assert_eq!(
            (v.spf, v.dkim, v.dmarc),
            (Verdict::Pass, Verdict::Pass, Verdict::Pass)
        );
        assert_eq!(v.dmarc_policy, None, "a policy is reported only on FAIL");
        assert!(
            v.header
                .starts_with("Authentication-Results: mx.acme.test;"),
            "{}",
            v.header
        );
        for needle in ["spf=pass", "dkim=pass", "dmarc=pass"] {
            assert!(v.header.contains(needle), "{needle} in {}", v.header);
        }
        assert!(v.header.ends_with("\r\n"));
    }

    #[tokio::test]
    async fn a_forged_sender_fails_dmarc_and_reports_the_domains_policy() {
        let k = key();
        for (policy, expected) in [
            ("reject", DmarcPolicy::Reject),
            ("quarantine", DmarcPolicy::Quarantine),
            ("none", DmarcPolicy::None),
        ] {
            let auth = SenderAuth::fixed("mx.acme.test", records(policy, &k.public_key()));
            // Wrong IP and no signature.
            let v = auth
                .check(envelope("203.0.113.9"), MESSAGE.as_bytes())
                .await;
            assert_eq!(
                (v.spf, v.dkim, v.dmarc),
                (Verdict::Fail, Verdict::Gray, Verdict::Fail)
            );
            assert_eq!(v.dmarc_policy, Some(expected), "p={policy}");
        }
    }

    #[tokio::test]
    async fn a_tampered_body_fails_dkim_but_spf_still_aligns() {
        let k = key();
        let auth = SenderAuth::fixed("mx.acme.test", records("reject", &k.public_key()));
        let mut m = signed();
        let n = m.len();
        m[n - 4] = b'X';
        let v = auth.check(envelope("192.0.2.1"), &m).await;
        assert_eq!(
            (v.spf, v.dkim, v.dmarc),
            (Verdict::Pass, Verdict::Fail, Verdict::Pass)
        );
    }

    #[tokio::test]
    async fn unknown_domains_are_gray_and_nothing_is_queried() {
        let auth = SenderAuth::fixed("mx.acme.test", StaticRecords::default());
        let e = Envelope {
            client_ip: "198.51.100.7".parse().unwrap(),
            helo: "elsewhere.test",
            mail_from: "",
        };
        let v = auth
            .check(e, b"From: x@nowhere.test\r\nSubject: hi\r\n\r\nbody\r\n")
            .await;
        assert_eq!(
            (v.spf, v.dkim, v.dmarc),
            (Verdict::Gray, Verdict::Gray, Verdict::Gray)
        );
        let v = auth.check(e, b"no header section at all").await;
        assert_eq!(v.spf, Verdict::Gray);
    }

    #[test]
    fn records_file_errors_name_the_line() {
        for (text, needle) in [
            ("a.test TXT v=spf1", "line 1: TXT wants quoted strings"),
            ("\n\na.test TXT \"hello\"", "line 3: TXT must be"),
            ("a.test MX mx.a.test", "line 1: MX wants PREFERENCE HOST"),
            ("a.test A ::1", "line 1: A wants an IPv4 address"),
            ("a.test SRV 1 2 3 x", "line 1: unsupported record type SRV"),
            ("a.test", "line 1: expected NAME TYPE VALUE"),
            (
                "x.test PTR a.test",
                "line 1: PTR wants an in-addr.arpa name",
            ),
        ] {
            let e = StaticRecords::parse(text).err().unwrap();
            assert!(e.0.contains(needle), "{text:?}: {e}");
        }
        let ok = StaticRecords::parse("1.2.0.192.in-addr.arpa. PTR mx.remote.test\n").unwrap();
        assert!(
            ok.ptr
                .map
                .contains_key(&"192.0.2.1".parse::<IpAddr>().unwrap())
        );
    }

    /// Issue 20.8: a name server that never answers costs a message the deadline at
    /// most (TEMPERROR, accepted), and once the names a check needs have failed, no
    /// time at all, for a minute. (The first message learns the SPF name, the next
    /// the DMARC name, which the first never reached.)
    #[tokio::test]
    async fn a_dead_name_server_costs_a_deadline_then_nothing() {
        let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let section = crate::config::SenderAuthSection {
            resolver: crate::config::ResolverKind::System,
            nameservers: vec![dead.local_addr().unwrap().to_string()],
            timeout_ms: 400,
            ..Default::default()
        };
        let checker = SenderAuth::from_config("mx.acme.test", &section, None).unwrap();
        let mut took = Vec::new();
        for _ in 0..6 {
            let started = Instant::now();
            let v = checker
                .check(envelope("192.0.2.1"), MESSAGE.as_bytes())
                .await;
            took.push(started.elapsed());
            assert_eq!(v.spf, Verdict::ProcessingFailed);
            assert!(v.header.contains("spf=temperror"), "{}", v.header);
        }
        assert!(
            took.iter().all(|t| *t < Duration::from_millis(900)),
            "{took:?}"
        );
        assert!(
            took[2..].iter().all(|t| *t < Duration::from_millis(50)),
            "{took:?}"
        );
    }
}
