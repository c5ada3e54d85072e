//! The TOML configuration: schema, defaults and validation.
//!
//! Parsing uses serde with `deny_unknown_fields` everywhere, so a typo is an error
//! that names the key instead of a setting silently ignored. Semantic checks that
//! serde cannot express live in [`Config::validate`] and name the dotted key too.
//! A leaf: it reads files and nothing else of the daemon.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The example config shipped in `config/mailgate.toml`; `serve` without `--config` runs on it.
pub const EMBEDDED_DEFAULT: &str = include_str!("../config/mailgate.toml");

/// A configuration problem, always phrased as "where: what".
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerSection,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub listeners: Listeners,
    #[serde(default)]
    pub events: EventsSection,
    #[serde(default)]
    pub smtp: SmtpSection,
    #[serde(default)]
    pub access: AccessSection,
    #[serde(default)]
    pub admin: AdminSection,
    #[serde(default)]
    pub ews: EwsSection,
    #[serde(default)]
    pub retention: RetentionSection,
    #[serde(default)]
    pub export: ExportSection,
}

/// Exchange Web Services (on the `https` listener).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EwsSection {
    /// Serve `/EWS/Exchange.asmx` and Autodiscover (on unless turned off: EWS
    /// clients have nowhere else to go).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The base URL clients reach EWS and Autodiscover at (`https://host[:port]`),
    /// when the request's `Host` header cannot be trusted to say it (a proxy in
    /// front). Unset: Autodiscover answers with the `Host` the client used.
    #[serde(default)]
    pub public_url: Option<String>,
}

fn yes() -> bool {
    true
}

impl Default for EwsSection {
    fn default() -> Self {
        EwsSection {
            enabled: true,
            public_url: None,
        }
    }
}

impl EwsSection {
    /// `public_url` must be `https://` and a host with an optional port, nothing more.
    fn check(&self) -> Result<(), ConfigError> {
        let Some(url) = &self.public_url else {
            return Ok(());
        };
        let authority = url
            .strip_prefix("https://")
            .map(|rest| rest.strip_suffix('/').unwrap_or(rest));
        let ok = authority.is_some_and(|a| {
            let (host, port) = match a.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (a, None),
            };
            looks_like_domain(host) && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
        });
        if ok {
            Ok(())
        } else {
            Err(ConfigError(format!(
                "ews.public_url: {url:?} must be https://HOST or https://HOST:PORT (no path)"
            )))
        }
    }
}

/// The retention sweeper (organization retention policies, README "Retention").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Seconds from the end of one sweep to the start of the next; the first
    /// sweep runs 60 s after start, or after this when shorter.
    #[serde(default = "default_retention_interval")]
    pub interval_secs: u64,
    /// Items moved or deleted per store write (1-5000): bounds how long one
    /// sweep write holds the store's writer while deliveries wait.
    #[serde(default = "default_retention_batch")]
    pub batch_size: usize,
}

fn default_retention_interval() -> u64 {
    3600
}
fn default_retention_batch() -> usize {
    500
}

impl Default for RetentionSection {
    fn default() -> Self {
        RetentionSection {
            interval_secs: default_retention_interval(),
            batch_size: default_retention_batch(),
        }
    }
}

impl RetentionSection {
    fn check(&self) -> Result<(), ConfigError> {
        if self.interval_secs == 0 {
            return Err(ConfigError(
                "retention.interval_secs: must be at least 1".into(),
            ));
        }
        if !(1..=5000).contains(&self.batch_size) {
            return Err(ConfigError(
                "retention.batch_size: must be between 1 and 5000".into(),
            ));
        }
        Ok(())
    }
}

/// SMTP protocol limits (the message size limit is `limits.max_message_size`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSection {
    /// RCPT TO per message (WorkMail: 500); more get 452 4.5.3.
    #[serde(default = "default_max_recipients")]
    pub max_recipients: usize,
    /// Protocol errors tolerated per session before 421 and disconnect.
    #[serde(default = "default_max_errors")]
    pub max_errors: u32,
    /// Messages per minute one client IP may send to the MX listener (MAIL FROM
    /// beyond it gets 450 4.7.1); 0, the default, is no limit, as Postfix's
    /// `smtpd_client_message_rate_limit`. Authenticated submission is not limited.
    #[serde(default)]
    pub max_message_rate_per_ip: u32,
    /// Waiting for a command (RFC 5321 §4.5.3.2: at least 5 minutes).
    #[serde(default = "default_command_timeout")]
    pub command_timeout_secs: u64,
    /// Waiting for message data, per read (RFC 5321: 3 to 10 minutes).
    #[serde(default = "default_data_timeout")]
    pub data_timeout_secs: u64,
    /// The smarthost that takes mail for remote recipients. Without it, submission
    /// refuses remote recipients at RCPT (550 5.7.1).
    #[serde(default)]
    pub relay: Option<RelaySection>,
    /// SPF, DKIM and DMARC checks of MX mail.
    #[serde(default)]
    pub sender_auth: SenderAuthSection,
}

/// `[smtp.sender_auth]`: where the SPF, DKIM and DMARC checks get DNS answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderAuthSection {
    #[serde(default)]
    pub resolver: ResolverKind,
    /// A records file (`NAME TYPE VALUE` lines, see `smtp::sender_auth`) answered
    /// before any DNS query; with `resolver = "static"` the only source. Relative
    /// paths are under `server.data_dir`.
    #[serde(default)]
    pub static_records: Option<PathBuf>,
    /// Name servers to ask (`"127.0.0.1"`, `"127.0.0.1:5353"`, `"[::1]:53"`) instead
    /// of `/etc/resolv.conf`'s: point it at a local caching resolver.
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// The whole check of one message (SPF, DKIM and DMARC together) gets this long;
    /// past it the verdicts are TEMPERROR (PROCESSING_FAILED in the events) and the
    /// message is accepted. Each DNS query gets half of it.
    #[serde(default = "default_sender_auth_timeout")]
    pub timeout_ms: u64,
}

impl Default for SenderAuthSection {
    fn default() -> Self {
        SenderAuthSection {
            resolver: ResolverKind::default(),
            static_records: None,
            nameservers: Vec::new(),
            timeout_ms: default_sender_auth_timeout(),
        }
    }
}

fn default_sender_auth_timeout() -> u64 {
    4_000
}

impl SenderAuthSection {
    /// `nameservers` as socket addresses (port 53 unless given).
    pub fn nameserver_addrs(&self) -> Result<Vec<std::net::SocketAddr>, ConfigError> {
        self.nameservers
            .iter()
            .map(|s| {
                s.parse::<std::net::SocketAddr>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(|ip| (ip, 53).into()))
                    .map_err(|_| {
                        ConfigError(format!(
                            "smtp.sender_auth.nameservers: {s:?} is not an address or address:port"
                        ))
                    })
            })
            .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.nameserver_addrs()?;
        if !(100..=25_000).contains(&self.timeout_ms) {
            return Err(ConfigError(
                "smtp.sender_auth.timeout_ms: must be between 100 and 25000 (a reply must come within 30 s of the final dot)"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Which DNS the sender checks use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResolverKind {
    /// `/etc/resolv.conf`.
    #[default]
    System,
    /// Only `static_records`; nothing is ever sent to a DNS server.
    Static,
}

/// `[smtp.relay]`: the smarthost the outbound queue delivers to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySection {
    pub host: String,
    pub port: u16,
    /// `none`, `starttls` (required, not opportunistic) or `implicit`.
    pub tls: TlsMode,
    /// PEM CA certificates the smarthost's certificate must chain to; required with
    /// TLS (no system roots are bundled). Relative to `server.data_dir`.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// AUTH PLAIN credentials; both or neither.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// First retry delay after a temporary failure; doubles per attempt.
    #[serde(default = "default_retry_initial")]
    pub retry_initial_secs: u64,
    /// Upper bound of the retry delay.
    #[serde(default = "default_retry_max")]
    pub retry_max_secs: u64,
    /// How long a message may wait before it bounces (default 5 days).
    #[serde(default = "default_lifetime")]
    pub lifetime_secs: u64,
}

fn default_retry_initial() -> u64 {
    60
}
fn default_retry_max() -> u64 {
    3600
}
fn default_lifetime() -> u64 {
    5 * 24 * 3600
}

impl RelaySection {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.host.is_empty() || self.host.contains(char::is_whitespace) {
            return Err(ConfigError(
                "smtp.relay.host: must be a host name or address".into(),
            ));
        }
        if self.port == 0 {
            return Err(ConfigError("smtp.relay.port: must not be 0".into()));
        }
        if self.tls != TlsMode::None && self.ca.is_none() {
            return Err(ConfigError("smtp.relay.ca: required when smtp.relay.tls is not \"none\" (no system CA roots are bundled)".into()));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(ConfigError(
                "smtp.relay.username, smtp.relay.password: set both or neither".into(),
            ));
        }
        if self.username.is_some() && self.tls == TlsMode::None {
            return Err(ConfigError(
                "smtp.relay.password: AUTH needs tls = \"starttls\" or \"implicit\"".into(),
            ));
        }
        if self.retry_initial_secs == 0 || self.retry_max_secs < self.retry_initial_secs {
            return Err(ConfigError("smtp.relay.retry_max_secs: must be at least retry_initial_secs, which must be at least 1".into()));
        }
        if self.lifetime_secs == 0 {
            return Err(ConfigError(
                "smtp.relay.lifetime_secs: must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

fn default_max_recipients() -> usize {
    500
}
fn default_max_errors() -> u32 {
    10
}
fn default_command_timeout() -> u64 {
    300
}
fn default_data_timeout() -> u64 {
    600
}

impl Default for SmtpSection {
    fn default() -> Self {
        SmtpSection {
            max_recipients: default_max_recipients(),
            max_errors: default_max_errors(),
            max_message_rate_per_ip: 0,
            command_timeout_secs: default_command_timeout(),
            data_timeout_secs: default_data_timeout(),
            relay: None,
            sender_auth: SenderAuthSection::default(),
        }
    }
}

/// Access control limits and impersonation-token keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSection {
    /// Access control rules per organization (WorkMail: 10).
    #[serde(default = "default_max_rules")]
    pub max_rules: usize,
    /// Impersonation roles per organization.
    #[serde(default = "default_max_roles")]
    pub max_impersonation_roles: usize,
    /// Token signing keys (`KEY_ID HEX_SECRET` per line; generated on first start);
    /// relative to `server.data_dir`. Daemons sharing it accept each other's tokens.
    #[serde(default = "default_token_keys")]
    pub token_keys: PathBuf,
}

fn default_max_rules() -> usize {
    10
}
fn default_max_roles() -> usize {
    20
}
fn default_token_keys() -> PathBuf {
    PathBuf::from("token-keys")
}

impl Default for AccessSection {
    fn default() -> Self {
        AccessSection {
            max_rules: default_max_rules(),
            max_impersonation_roles: default_max_roles(),
            token_keys: default_token_keys(),
        }
    }
}

/// The WorkMail admin API (on the `https` listener).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// Region and account used in ARNs.
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default = "default_account")]
    pub account: String,
    /// The key generated on first start (AWS shared-credentials format, profile
    /// `mailgate`); relative to `server.data_dir`.
    #[serde(default = "default_credentials")]
    pub credentials: PathBuf,
    /// Further SigV4 access keys accepted.
    #[serde(default)]
    pub access_keys: Vec<crate::admin::credentials::AccessKey>,
}

fn default_region() -> String {
    "local".into()
}
fn default_account() -> String {
    "000000000000".into()
}
fn default_credentials() -> PathBuf {
    PathBuf::from("admin-credentials")
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            region: default_region(),
            account: default_account(),
            credentials: default_credentials(),
            access_keys: Vec::new(),
        }
    }
}
/// Where email events and audit events go (defined next to the sinks).
pub use crate::events::config::EventsSection;
/// Where mailbox export jobs write (defined next to the jobs).
pub use crate::export::ExportSection;

/// Identity and filesystem layout of this daemon.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// The name this server greets with (SMTP banner, certificate name when generated).
    pub hostname: String,
    /// Everything mailgate writes lives under here (store, dev TLS, run/ports.json).
    pub data_dir: PathBuf,
    /// Mail domain of the organization created on first start.
    #[serde(default = "default_domain")]
    pub default_domain: String,
    /// How long SIGTERM waits for live sessions before cutting them.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_secs: u64,
}

fn default_domain() -> String {
    "example.test".into()
}
fn default_shutdown_grace() -> u64 {
    30
}

/// Certificates served by every TLS listener.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// Certificate + key pairs. The first is served when the client sends no SNI or
    /// an unknown name; the others are chosen by the names in their certificates.
    /// Empty: a dev CA and certificate are generated under `data_dir/tls` on first start.
    #[serde(default)]
    pub certificates: Vec<CertificatePair>,
}

/// One PEM certificate chain and its private key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificatePair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Resource limits shared by all listeners.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// New connections per minute from one IP, on all listeners together; beyond
    /// it a connection is turned away like one over `max_connections_per_ip`.
    /// 0, the default, is no limit (Postfix's `smtpd_client_connection_rate_limit`).
    #[serde(default)]
    pub max_connection_rate_per_ip: u32,
    /// Largest message accepted, in bytes of MIME (advertised as SMTP SIZE and IMAP APPENDLIMIT).
    #[serde(default = "default_max_message_size")]
    pub max_message_size: u64,
    /// A TLS handshake that takes longer than this is dropped.
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout_secs: u64,
    /// A session silent for longer than this is closed (IMAP IDLE included).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Before login, each whole IMAP command must arrive within this long (a
    /// client dribbling one byte at a time is cut off; the idle timeout restarts
    /// with every byte).
    #[serde(default = "default_login_timeout")]
    pub login_timeout_secs: u64,
    /// Bytes of SMTP message data (DATA, BDAT) all sessions together may hold in
    /// memory while it arrives; beyond it, data waits in unnamed files under
    /// `data_dir/spool/data` until its message is complete.
    #[serde(default = "default_data_memory_budget")]
    pub data_memory_budget: u64,
    /// An HTTP request's head (request line and headers) must arrive within this.
    #[serde(default = "default_http_header_timeout")]
    pub http_header_timeout_secs: u64,
    /// An HTTP request body may take this long, plus one second per
    /// `http_body_min_rate` bytes received; a slower client gets 408.
    #[serde(default = "default_http_body_grace")]
    pub http_body_grace_secs: u64,
    /// Bytes per second an HTTP body must keep up once its grace time is used.
    #[serde(default = "default_http_body_min_rate")]
    pub http_body_min_rate: u32,
}

fn default_max_connections() -> usize {
    20_000
}
fn default_max_connections_per_ip() -> usize {
    200
}
fn default_max_message_size() -> u64 {
    40 * 1024 * 1024
}
fn default_handshake_timeout() -> u64 {
    10
}
fn default_idle_timeout() -> u64 {
    1800
}
fn default_login_timeout() -> u64 {
    60
}
fn default_data_memory_budget() -> u64 {
    64 * 1024 * 1024
}
fn default_http_header_timeout() -> u64 {
    30
}
fn default_http_body_grace() -> u64 {
    10
}
fn default_http_body_min_rate() -> u32 {
    1024
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: default_max_connections(),
            max_connections_per_ip: default_max_connections_per_ip(),
            max_connection_rate_per_ip: 0,
            max_message_size: default_max_message_size(),
            handshake_timeout_secs: default_handshake_timeout(),
            idle_timeout_secs: default_idle_timeout(),
            login_timeout_secs: default_login_timeout(),
            data_memory_budget: default_data_memory_budget(),
            http_header_timeout_secs: default_http_header_timeout(),
            http_body_grace_secs: default_http_body_grace(),
            http_body_min_rate: default_http_body_min_rate(),
        }
    }
}

impl Limits {
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_secs)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
    pub fn login_timeout(&self) -> Duration {
        Duration::from_secs(self.login_timeout_secs)
    }
}

/// Which store backend holds mail and the directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    #[serde(default)]
    pub backend: StoreBackend,
    /// Database file; relative paths are under `server.data_dir`.
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
    /// `backend = "postgres"`: the server, as `postgres://user[:password]@host[:port]/db`.
    #[serde(default)]
    pub url: Option<String>,
    /// `backend = "postgres"`: connections this daemon keeps at most (1-1000).
    #[serde(default = "default_store_pool_size")]
    pub pool_size: usize,
}

fn default_store_pool_size() -> usize {
    16
}

impl StoreSection {
    /// Checks the keys of the chosen backend: PostgreSQL needs a `postgres://` url.
    fn check(&self) -> Result<(), ConfigError> {
        if self.backend == StoreBackend::Postgres {
            let url = self.url.as_deref().unwrap_or_default();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError(
                    "store.url: backend \"postgres\" needs url = \"postgres://...\"".into(),
                ));
            }
        }
        if !(1..=1000).contains(&self.pool_size) {
            return Err(ConfigError(
                "store.pool_size: must be between 1 and 1000".into(),
            ));
        }
        Ok(())
    }
}

fn default_store_path() -> PathBuf {
    PathBuf::from("store.sqlite")
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            backend: StoreBackend::Sqlite,
            path: default_store_path(),
            url: None,
            pool_size: default_store_pool_size(),
        }
    }
}

/// Store backends.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// The embedded default: one SQLite file under `data_dir`.
    #[default]
    Sqlite,
    /// PostgreSQL at `url`, shared by many daemons (issue 19; refused at start
    /// until the backend is complete).
    Postgres,
}

/// How a listener speaks TLS.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS 993, SMTPS 465, HTTPS).
    Implicit,
    /// Plaintext that upgrades with STARTTLS.
    Starttls,
    /// Never TLS (the loopback metrics listener).
    None,
}

/// One listening socket.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    pub address: IpAddr,
    /// 0 lets the kernel choose; the chosen port is written to `data_dir/run/ports.json`.
    pub port: u16,
    pub tls: TlsMode,
    /// A load balancer in front sends a PROXY protocol v1/v2 header before anything
    /// else, naming the real client (README "Behind a load balancer"). Off by default.
    #[serde(default)]
    pub proxy_protocol: bool,
    /// The addresses allowed to send that header (`"10.0.0.0/8"`, or one address);
    /// required with `proxy_protocol`: there is no "trust everyone" mode. Anyone else
    /// connecting to the listener is refused.
    #[serde(default, deserialize_with = "ip_nets")]
    pub proxy_from: Vec<ipnet::IpNet>,
}

fn default_true() -> bool {
    true
}

/// CIDR ranges, or bare addresses meaning just that host.
fn ip_nets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .map(|n| n.trunc())
                .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{s:?} is not an address or a CIDR range such as \"10.0.0.0/8\""
                    ))
                })
        })
        .collect()
}

impl ListenerConfig {
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }
}

/// The fixed set of listeners; each name implies its protocol.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listeners {
    /// SMTP MX: inbound mail for the organizations' domains.
    pub smtp: Option<ListenerConfig>,
    /// SMTP submission with STARTTLS required before AUTH.
    pub submission: Option<ListenerConfig>,
    /// SMTP submission over implicit TLS.
    pub submissions: Option<ListenerConfig>,
    /// IMAP with STARTTLS required before LOGIN.
    pub imap: Option<ListenerConfig>,
    /// IMAP over implicit TLS.
    pub imaps: Option<ListenerConfig>,
    /// EWS, Autodiscover and the admin API.
    pub https: Option<ListenerConfig>,
    /// Prometheus metrics, plain HTTP, loopback.
    pub metrics: Option<ListenerConfig>,
}

impl Listeners {
    /// Every configured listener with its name, enabled or not.
    pub fn all(&self) -> Vec<(&'static str, &ListenerConfig)> {
        [
            ("smtp", &self.smtp),
            ("submission", &self.submission),
            ("submissions", &self.submissions),
            ("imap", &self.imap),
            ("imaps", &self.imaps),
            ("https", &self.https),
            ("metrics", &self.metrics),
        ]
        .into_iter()
        .filter_map(|(name, l)| l.as_ref().map(|l| (name, l)))
        .collect()
    }

    /// Mutable access by name, for tests and CLI overrides.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Option<ListenerConfig>> {
        Some(match name {
            "smtp" => &mut self.smtp,
            "submission" => &mut self.submission,
            "submissions" => &mut self.submissions,
            "imap" => &mut self.imap,
            "imaps" => &mut self.imaps,
            "https" => &mut self.https,
            "metrics" => &mut self.metrics,
            _ => return None,
        })
    }
}

impl Config {
    /// Parses and validates `text`; `origin` names the file in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let cfg: Config =
            toml::from_str(text).map_err(|e| describe_toml_error(&e, text, origin))?;
        cfg.validate()
            .map_err(|e| ConfigError(format!("{origin}: {e}")))?;
        Ok(cfg)
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: cannot read config: {e}", path.display())))?;
        // Relative paths are relative to the working directory, as with other daemons.
        Config::parse(&text, &path.display().to_string())
    }

    /// The embedded default (`config/mailgate.toml`).
    pub fn embedded() -> Config {
        Config::parse(EMBEDDED_DEFAULT, "embedded config/mailgate.toml")
            .expect("the embedded default config is valid (checked by a unit test)")
    }

    /// Checks what the types cannot: ranges, combinations, duplicates.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.hostname.trim().is_empty() {
            return Err(ConfigError("server.hostname: must not be empty".into()));
        }
        if self.server.data_dir.as_os_str().is_empty() {
            return Err(ConfigError("server.data_dir: must not be empty".into()));
        }
        if !looks_like_domain(&self.server.default_domain) {
            return Err(ConfigError(format!(
                "server.default_domain: {:?} is not a domain name",
                self.server.default_domain
            )));
        }
        self.ews.check()?;
        self.retention.check()?;
        self.store.check()?;
        let l = &self.limits;
        if l.max_connections == 0 {
            return Err(ConfigError(
                "limits.max_connections: must be at least 1".into(),
            ));
        }
        if l.max_connections_per_ip == 0 || l.max_connections_per_ip > l.max_connections {
            return Err(ConfigError(
                "limits.max_connections_per_ip: must be between 1 and limits.max_connections"
                    .into(),
            ));
        }
        if l.max_message_size < 1024 {
            return Err(ConfigError(
                "limits.max_message_size: must be at least 1024 bytes".into(),
            ));
        }
        if l.handshake_timeout_secs == 0
            || l.idle_timeout_secs == 0
            || l.login_timeout_secs == 0
            || l.http_header_timeout_secs == 0
            || l.http_body_min_rate == 0
        {
            return Err(ConfigError(
                "limits: timeouts must be at least 1 second".into(),
            ));
        }
        let mut seen: Vec<(SocketAddr, &str)> = Vec::new();
        for (name, lc) in self.listeners.all() {
            if !lc.enabled {
                continue;
            }
            let key = format!("listeners.{name}");
            match (name, lc.tls) {
                ("metrics", TlsMode::None) => {}
                ("metrics", _) => {
                    return Err(ConfigError(format!(
                        "{key}.tls: the metrics listener is plain HTTP; use \"none\""
                    )));
                }
                ("https" | "imaps" | "submissions", TlsMode::Implicit) => {}
                ("https" | "imaps" | "submissions", _) => {
                    return Err(ConfigError(format!(
                        "{key}.tls: {name} is implicit TLS; use \"implicit\""
                    )));
                }
                ("submission" | "imap", TlsMode::None) => {
                    return Err(ConfigError(format!(
                        "{key}.tls: {name} carries passwords; use \"starttls\" or \"implicit\""
                    )));
                }
                _ => {}
            }
            match (lc.proxy_protocol, lc.proxy_from.is_empty()) {
                (true, true) => {
                    return Err(ConfigError(format!(
                        "{key}.proxy_from: required with proxy_protocol = true (the load balancer addresses allowed to send the PROXY header)"
                    )));
                }
                (false, false) => {
                    return Err(ConfigError(format!(
                        "{key}.proxy_from: has no effect without proxy_protocol = true"
                    )));
                }
                _ => {}
            }
            if lc.port != 0 {
                let addr = lc.socket_addr();
                if let Some((_, other)) = seen.iter().find(|(a, _)| *a == addr) {
                    return Err(ConfigError(format!(
                        "{key}.port: {addr} is also used by listeners.{other}"
                    )));
                }
                seen.push((addr, name));
            }
        }
        if self.smtp.max_recipients == 0 || self.smtp.max_errors == 0 {
            return Err(ConfigError(
                "smtp: max_recipients and max_errors must be at least 1".into(),
            ));
        }
        if self.smtp.command_timeout_secs == 0 || self.smtp.data_timeout_secs == 0 {
            return Err(ConfigError(
                "smtp: timeouts must be at least 1 second".into(),
            ));
        }
        if let Some(relay) = &self.smtp.relay {
            relay.validate()?;
        }
        self.smtp.sender_auth.validate()?;
        self.events
            .validate()
            .map_err(|e| ConfigError(e.to_string()))?;
        if self.access.max_rules == 0 || self.access.max_rules > 1000 {
            return Err(ConfigError(
                "access.max_rules: must be between 1 and 1000".into(),
            ));
        }
        if self.access.max_impersonation_roles == 0 || self.access.max_impersonation_roles > 1000 {
            return Err(ConfigError(
                "access.max_impersonation_roles: must be between 1 and 1000".into(),
            ));
        }
        if !self.admin.account.chars().all(|c| c.is_ascii_digit()) || self.admin.account.len() != 12
        {
            return Err(ConfigError("admin.account: must be 12 digits".into()));
        }
        if self.admin.region.is_empty()
            || !self
                .admin
                .region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(ConfigError(
                "admin.region: letters, digits and '-' only".into(),
            ));
        }
        for (i, k) in self.admin.access_keys.iter().enumerate() {
            if k.access_key_id.len() < 16 || k.secret_access_key.len() < 16 {
                return Err(ConfigError(format!(
                    "admin.access_keys[{i}]: id and secret must be at least 16 characters"
                )));
            }
        }
        for (i, pair) in self.tls.certificates.iter().enumerate() {
            if pair.cert.as_os_str().is_empty() || pair.key.as_os_str().is_empty() {
                return Err(ConfigError(format!(
                    "tls.certificates[{i}]: cert and key must both be set"
                )));
            }
        }
        Ok(())
    }

    /// A path from the config, resolved against `server.data_dir` when relative.
    pub fn data_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.server.data_dir.join(p)
        }
    }
}

fn looks_like_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Turns a toml/serde error into one line: file, line, the key, and what is wrong.
fn describe_toml_error(e: &toml::de::Error, text: &str, origin: &str) -> ConfigError {
    let msg = e.message().replace('\n', " ");
    let Some(span) = e.span() else {
        return ConfigError(format!("{origin}: {msg}"));
    };
    let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
    let key = line.split('=').next().unwrap_or("").trim();
    let table = current_table(text, span.start);
    let dotted = match (table.as_deref(), key.starts_with('[')) {
        (_, true) => key.trim_matches(|c| c == '[' || c == ']').to_string(),
        (Some(t), false) if !key.is_empty() => format!("{t}.{key}"),
        _ => key.to_string(),
    };
    if dotted.is_empty() {
        ConfigError(format!("{origin}:{line_no}: {msg}"))
    } else {
        ConfigError(format!("{origin}:{line_no}: key `{dotted}`: {msg}"))
    }
}

/// The `[table]` header in force at byte `pos`, for naming keys in errors.
fn current_table(text: &str, pos: usize) -> Option<String> {
    let before = &text[..pos.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "[server]\nhostname = \"mx.example.org\"\ndata_dir = \"/var/lib/mailgate\"\n";

    fn err(text: &str) -> String {
        Config::parse(text, "t.toml").unwrap_err().0
    }

    #[test]
    fn embedded_default_is_valid_and_keeps_unfinished_listeners_off() {
        let cfg = Config::embedded();
        assert_eq!(cfg.server.data_dir, PathBuf::from("./data"));
        for (name, l) in cfg.listeners.all() {
            // Metrics waits for its protocol; SMTP, IMAP and https are complete.
            let finished = [
                "smtp",
                "submission",
                "submissions",
                "imap",
                "imaps",
                "https",
            ]
            .contains(&name);
            assert_eq!(
                l.enabled, finished,
                "listener {name}: only finished protocols are enabled"
            );
        }
        assert_eq!(cfg.listeners.imaps.as_ref().unwrap().port, 9993);
        assert_eq!(cfg.listeners.smtp.as_ref().unwrap().port, 2525);
        assert_eq!(cfg.limits.max_message_size, 40 * 1024 * 1024);
        assert!(cfg.ews.enabled, "EWS's mail tier is served");
    }

    #[test]
    fn retention_sweeps_hourly_in_batches_of_500_unless_configured() {
        let cfg = Config::parse(MINIMAL, "t").unwrap();
        assert_eq!(
            (cfg.retention.interval_secs, cfg.retention.batch_size),
            (3600, 500)
        );
        let embedded = Config::embedded().retention;
        assert_eq!((embedded.interval_secs, embedded.batch_size), (3600, 500));
        let set = format!("{MINIMAL}[retention]\ninterval_secs = 2\nbatch_size = 1\n");
        let cfg = Config::parse(&set, "t").unwrap();
        assert_eq!(
            (cfg.retention.interval_secs, cfg.retention.batch_size),
            (2, 1)
        );
        for (bad, key) in [
            ("interval_secs = 0", "retention.interval_secs"),
            ("batch_size = 0", "retention.batch_size"),
            ("batch_size = 5001", "retention.batch_size"),
            ("period = 3", "period"),
        ] {
            let e = err(&format!("{MINIMAL}[retention]\n{bad}\n"));
            assert!(e.contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn ews_is_on_unless_turned_off() {
        assert!(Config::parse(MINIMAL, "t").unwrap().ews.enabled);
        let off = Config::parse(&format!("{MINIMAL}[ews]\nenabled = false\n"), "t").unwrap();
        assert!(!off.ews.enabled);
        let url = format!("{MINIMAL}[ews]\npublic_url = \"https://mail.example.com\"\n");
        assert!(Config::parse(&url, "t").unwrap().ews.enabled);
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let cfg = Config::parse(MINIMAL, "t").unwrap();
        assert_eq!(cfg.limits.max_connections, 20_000);
        assert_eq!(cfg.store.backend, StoreBackend::Sqlite);
        assert_eq!(
            cfg.data_path(&cfg.store.path),
            PathBuf::from("/var/lib/mailgate/store.sqlite")
        );
        assert!(cfg.listeners.all().is_empty());
    }

    #[test]
    fn a_postgres_store_needs_a_postgres_url_and_a_sane_pool() {
        let with = |store: &str| {
            let text = EMBEDDED_DEFAULT.replace("backend = \"sqlite\"", store);
            Config::parse(&text, "t")
        };
        let cfg =
            with("backend = \"postgres\"\nurl = \"postgres://mg@127.0.0.1/mail\"\npool_size = 4")
                .unwrap();
        assert_eq!(cfg.store.backend, StoreBackend::Postgres);
        assert_eq!(cfg.store.pool_size, 4);
        for bad in [
            "backend = \"postgres\"",
            "backend = \"postgres\"\nurl = \"mysql://x/y\"",
            "backend = \"sqlite\"\npool_size = 0",
            "backend = \"postgres\"\nurl = \"postgres://h/d\"\npool_size = 1001",
        ] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains("store."), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_key_is_named_with_its_table() {
        let e = err(&format!("{MINIMAL}[limits]\nmax_conections = 5\n"));
        assert!(e.contains("limits.max_conections"), "{e}");
        assert!(e.contains("t.toml:5"), "{e}");
    }

    #[test]
    fn unknown_listener_is_named() {
        let e = err(&format!(
            "{MINIMAL}[listeners.pop3]\naddress = \"127.0.0.1\"\nport = 110\ntls = \"none\"\n"
        ));
        assert!(e.contains("pop3"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = err(&format!("{MINIMAL}[limits]\nmax_connections = \"many\"\n"));
        assert!(e.contains("limits.max_connections"), "{e}");
    }

    #[test]
    fn bad_address_and_tls_mode_are_named() {
        let e = err(&format!(
            "{MINIMAL}[listeners.imaps]\naddress = \"localhost\"\nport = 993\ntls = \"implicit\"\n"
        ));
        assert!(e.contains("listeners.imaps.address"), "{e}");
        let e = err(&format!(
            "{MINIMAL}[listeners.imaps]\naddress = \"::1\"\nport = 993\ntls = \"sometimes\"\n"
        ));
        assert!(e.contains("listeners.imaps.tls"), "{e}");
    }

    #[test]
    fn missing_required_key_is_reported() {
        let e = err("[server]\nhostname = \"a\"\n");
        assert!(e.contains("data_dir"), "{e}");
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let l = |name: &str, port: u16, tls: &str| {
            format!("[listeners.{name}]\naddress = \"127.0.0.1\"\nport = {port}\ntls = \"{tls}\"\n")
        };
        let e = err(&format!("{MINIMAL}{}", l("imap", 143, "none")));
        assert!(e.contains("listeners.imap.tls"), "{e}");
        let e = err(&format!("{MINIMAL}{}", l("imaps", 993, "starttls")));
        assert!(e.contains("listeners.imaps.tls"), "{e}");
        let e = err(&format!(
            "{MINIMAL}{}{}",
            l("imaps", 993, "implicit"),
            l("https", 993, "implicit")
        ));
        assert!(
            e.contains("listeners.https.port") && e.contains("listeners.imaps"),
            "{e}"
        );
        // Two listeners on port 0 never collide.
        Config::parse(
            &format!(
                "{MINIMAL}{}{}",
                l("imaps", 0, "implicit"),
                l("https", 0, "implicit")
            ),
            "t",
        )
        .unwrap();
        let e = err(&format!(
            "{MINIMAL}[limits]\nmax_connections = 10\nmax_connections_per_ip = 11\n"
        ));
        assert!(e.contains("limits.max_connections_per_ip"), "{e}");
        let e = err(&format!("{MINIMAL}[limits]\nmax_message_size = 10\n"));
        assert!(e.contains("limits.max_message_size"), "{e}");
        let e =
            err("[server]\nhostname = \"a\"\ndata_dir = \"d\"\ndefault_domain = \"bad domain\"\n");
        assert!(e.contains("server.default_domain"), "{e}");
    }

    #[test]
    fn relay_is_optional_checked_and_defaulted() {
        assert!(Config::parse(MINIMAL, "t").unwrap().smtp.relay.is_none());
        let relay =
            |body: &str| format!("{MINIMAL}[smtp.relay]\nhost = \"smart.test\"\nport = 25\n{body}");
        let cfg = Config::parse(&relay("tls = \"none\"\n"), "t").unwrap();
        let r = cfg.smtp.relay.unwrap();
        assert_eq!(
            (r.retry_initial_secs, r.retry_max_secs, r.lifetime_secs),
            (60, 3600, 5 * 86_400)
        );
        let e = err(&relay("tls = \"starttls\"\n"));
        assert!(e.contains("smtp.relay.ca"), "{e}");
        let e = err(&relay(
            "tls = \"implicit\"\nca = \"ca.pem\"\nusername = \"u\"\n",
        ));
        assert!(e.contains("smtp.relay.username"), "{e}");
        let e = err(&relay(
            "tls = \"none\"\nusername = \"u\"\npassword = \"p\"\n",
        ));
        assert!(e.contains("smtp.relay.password"), "{e}");
        let e = err(&relay(
            "tls = \"none\"\nretry_initial_secs = 10\nretry_max_secs = 5\n",
        ));
        assert!(e.contains("smtp.relay.retry_max_secs"), "{e}");
        let e = err(&relay("tls = \"none\"\nretries = 5\n"));
        assert!(e.contains("smtp.relay.retries"), "{e}");
    }

    #[test]
    fn proxy_protocol_is_off_by_default_and_needs_proxy_from() {
        let l = |extra: &str| {
            format!(
                "{MINIMAL}[listeners.imaps]\naddress = \"127.0.0.1\"\nport = 0\ntls = \"implicit\"\n{extra}"
            )
        };
        let cfg = Config::parse(&l(""), "t").unwrap();
        let imaps = cfg.listeners.imaps.unwrap();
        assert!(!imaps.proxy_protocol && imaps.proxy_from.is_empty());
        for (_, lc) in Config::embedded().listeners.all() {
            assert!(!lc.proxy_protocol, "off in the embedded default");
        }
        let cfg = Config::parse(
            &l("proxy_protocol = true\nproxy_from = [\"10.1.2.3/8\", \"::1\", \"192.0.2.7\"]\n"),
            "t",
        )
        .unwrap();
        let from: Vec<String> = cfg
            .listeners
            .imaps
            .unwrap()
            .proxy_from
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(from, ["10.0.0.0/8", "::1/128", "192.0.2.7/32"]);
        let e = err(&l("proxy_protocol = true\n"));
        assert!(
            e.contains("listeners.imaps.proxy_from") && e.contains("required"),
            "{e}"
        );
        let e = err(&l("proxy_protocol = true\nproxy_from = []\n"));
        assert!(e.contains("listeners.imaps.proxy_from"), "{e}");
        let e = err(&l("proxy_from = [\"10.0.0.0/8\"]\n"));
        assert!(e.contains("listeners.imaps.proxy_from"), "{e}");
        let e = err(&l(
            "proxy_protocol = true\nproxy_from = [\"10.0.0.0/33\"]\n",
        ));
        assert!(e.contains("listeners.imaps.proxy_from"), "{e}");
        let e = err(&l("proxy_protocol = true\nproxy_from = [\"lb.example\"]\n"));
        assert!(
            e.contains("listeners.imaps.proxy_from") && e.contains("lb.example"),
            "{e}"
        );
    }

    #[test]
    fn disabled_listeners_are_not_checked_for_conflicts() {
        let text = format!(
            "{MINIMAL}[listeners.imaps]\nenabled = false\naddress = \"127.0.0.1\"\nport = 1\ntls = \"implicit\"\n[listeners.https]\nenabled = false\naddress = \"127.0.0.1\"\nport = 1\ntls = \"implicit\"\n"
        );
        Config::parse(&text, "t").unwrap();
    }
}
