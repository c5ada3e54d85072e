//! The daemon's life: start-up checks, listener supervision, readiness, SIGHUP
//! reload and graceful shutdown.
//!
//! Start-up is all-or-nothing: every problem an operator can fix (config, certificate,
//! port, data directory, store file) becomes a [`StartError`] with one line naming
//! what and where, and the process exits 78 before it reports ready.

pub mod http;
pub mod limits;
pub mod listener;
pub mod memory;
pub mod notify;
pub mod rate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::login::Authenticator;
use crate::access::{AccessEngine, AccessLimits};
use crate::admin::api::AdminApi;
use crate::admin::credentials::{self, AccessKey};
use crate::admin::state::AdminState;
use crate::config::{CertificatePair, Config};
use crate::directory::Directory;
use crate::events::{Events, Metrics};
use crate::imap::{ImapContext, ImapService};
use crate::smtp::sender_auth::SenderAuth;
use crate::smtp::{Flavor, SmtpContext, SmtpLimits, SmtpService, queue};
use crate::store::Backend;
use crate::tls::{self, CertResolver, DevCert};
use http::Router;
use limits::ConnLimits;
use listener::{AcceptContext, BoundListener, Protocol};

/// A refusal to start: the operator's to fix. Exit code 78 (EX_CONFIG).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// A started daemon: listeners bound and accepting, ready reported.
pub struct Daemon {
    config: Config,
    config_path: Option<PathBuf>,
    resolver: Arc<CertResolver>,
    /// Ports actually bound, by listener name.
    pub ports: BTreeMap<&'static str, u16>,
    pub store: Arc<dyn Backend>,
    pub directory: Arc<Directory>,
    pub access: Arc<AccessEngine>,
    /// SigV4 keys the admin API accepts: the configured ones and the generated one.
    pub admin_keys: Arc<Vec<AccessKey>>,
    pub events: Events,
    tracker: TaskTracker,
    draining: CancellationToken,
    /// Installed during start, taken by `run_until_signal`.
    signals: Option<Signals>,
}

/// The signals the daemon answers: TERM and INT drain and stop, HUP reloads.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

impl Daemon {
    /// Runs every start-up step; on success the listeners accept connections.
    pub async fn start(config: Config, config_path: Option<PathBuf>) -> Result<Daemon, StartError> {
        let data_dir = config.server.data_dir.clone();
        prepare_data_dir(&data_dir)?;
        let ports_file = data_dir.join("run").join("ports.json");
        let _ = std::fs::remove_file(&ports_file);

        let resolver = Arc::new(CertResolver::default());
        let pairs = certificate_pairs(&config)?;
        resolver.load(&pairs).map_err(|e| StartError(e.0))?;

        let store_path = config.data_path(&config.store.path);
        let store = crate::store::open(&config)
            .map_err(|e| StartError(format!("store.path ({}): {e}", store_path.display())))?;
        let State {
            directory,
            access,
            admin_keys,
        } = open_state(&store, &config).await?;
        let metrics = Arc::new(Metrics::new());
        metrics.count_at_scrape(store_counters(&store));
        let events =
            Events::from_config(&config.events, &data_dir, metrics.clone()).map_err(StartError)?;
        let org_ids: Vec<String> = directory
            .list_organizations()
            .into_iter()
            .map(|o| o.id)
            .collect();
        crate::admin::actions::monitoring::restore(
            &store,
            &events,
            &org_ids,
            &config.admin.region,
            &config.admin.account,
        );
        let admin_state = Arc::new(AdminState {
            directory: directory.clone(),
            access: access.clone(),
            store: store.clone(),
            events: events.clone(),
            region: config.admin.region.clone(),
            account: config.admin.account.clone(),
        });
        let https = Arc::new(Router {
            admin: Some(Arc::new(AdminApi::new(admin_state, admin_keys.clone()))),
            metrics: None,
            max_body: usize::try_from(config.limits.max_message_size).unwrap_or(usize::MAX),
        });
        let metrics_router = Arc::new(Router {
            admin: None,
            metrics: Some(Arc::new(MetricsPage {
                metrics: metrics.clone(),
                store: store.clone(),
            })),
            max_body: 0,
        });

        let auth = Arc::new(Authenticator::new(
            directory.clone(),
            access.clone(),
            events.clone(),
            &config.admin.region,
            &config.admin.account,
        ));
        let command_timeout = Duration::from_secs(config.smtp.command_timeout_secs);
        let data_timeout = Duration::from_secs(config.smtp.data_timeout_secs);
        let relay = match &config.smtp.relay {
            Some(r) => {
                let ca = r.ca.as_ref().map(|p| config.data_path(p));
                Some(
                    queue::from_config(
                        r,
                        ca.as_deref(),
                        &config.server.hostname,
                        command_timeout,
                        data_timeout,
                    )
                    .map_err(StartError)?,
                )
            }
            None => None,
        };
        let records = config.smtp.sender_auth.static_records.as_ref();
        let sender_auth = SenderAuth::from_config(
            &config.server.hostname,
            &config.smtp.sender_auth,
            records.map(|p| config.data_path(p)).as_deref(),
        )
        .map_err(|e| StartError(format!("smtp.sender_auth: {e}")))?;
        let wake = Arc::new(tokio::sync::Notify::new());
        let outbound = relay.as_ref().map(|_| {
            Arc::new(queue::Outbound {
                queue: store.clone(),
                wake: wake.clone(),
            })
        });
        let smtp = Arc::new(SmtpContext {
            hostname: config.server.hostname.clone(),
            store: store.clone(),
            directory: directory.clone(),
            auth,
            events: events.clone(),
            limits: SmtpLimits {
                max_message_size: config.limits.max_message_size as usize,
                max_recipients: config.smtp.max_recipients,
                max_errors: config.smtp.max_errors,
                message_rate_per_ip: config.smtp.max_message_rate_per_ip,
                command_timeout,
                data_timeout,
                body_budget: crate::smtp::body::BodyBudget::new(
                    config.limits.data_memory_budget as usize,
                    config.server.data_dir.join("spool").join("data"),
                ),
            },
            outbound,
            mx_rate: rate::RateLimiter::per_minute(config.smtp.max_message_rate_per_ip),
            sender_auth,
            quota_hints: Default::default(),
        });
        let imap = Arc::new(ImapService {
            ctx: Arc::new(ImapContext {
                hostname: config.server.hostname.clone(),
                store: store.clone(),
                directory: directory.clone(),
                auth: smtp.auth.clone(),
                events: events.clone(),
                max_message_size: u32::try_from(config.limits.max_message_size).unwrap_or(u32::MAX),
                arn_prefix: format!(
                    "arn:aws:workmail:{}:{}:organization/",
                    config.admin.region, config.admin.account
                ),
            }),
        });
        let mut bound = Vec::new();
        let mut ports = BTreeMap::new();
        for (name, lc) in config.listeners.all() {
            if !lc.enabled {
                continue;
            }
            let addr = lc.socket_addr();
            let socket = TcpListener::bind(addr).await.map_err(|e| {
                StartError(format!("listeners.{name} ({addr}): cannot listen: {e}"))
            })?;
            let port = socket
                .local_addr()
                .map_err(|e| StartError(format!("listeners.{name}: {e}")))?
                .port();
            ports.insert(name, port);
            let alpn: &[&[u8]] = if name == "https" { &[b"http/1.1"] } else { &[] };
            bound.push(BoundListener {
                name,
                tls_mode: lc.tls,
                socket,
                protocol: protocol_for(name, &smtp, &imap, &https, &metrics_router),
                acceptor: TlsAcceptor::from(tls::server_config(resolver.clone(), alpn)),
            });
        }
        // Before ports.json says "ready": a SIGTERM from then on must drain, not kill.
        let signals = Signals::install()
            .map_err(|e| StartError(format!("cannot install signal handlers: {e}")))?;
        write_ports_file(&ports_file, &ports)?;

        let tracker = TaskTracker::new();
        let draining = CancellationToken::new();
        let ctx = AcceptContext {
            conn_limits: ConnLimits::new(
                config.limits.max_connections,
                config.limits.max_connections_per_ip,
                config.limits.max_connection_rate_per_ip,
            ),
            limits: Arc::new(config.limits.clone()),
            tracker: tracker.clone(),
            draining: draining.clone(),
            metrics: metrics.clone(),
        };
        if let Some((settings, backoff)) = relay {
            tracing::info!(smarthost = %settings.host, port = settings.port, "outbound queue running");
            let runner = queue::Runner {
                queue: store.clone(),
                ctx: smtp.clone(),
                relay: Arc::new(settings),
                backoff,
                wake,
            };
            tracker.spawn(runner.run(draining.clone()));
        }
        for b in bound {
            tracing::info!(listener = b.name, port = ports[b.name], tls = ?b.tls_mode, "listening");
            tokio::spawn(listener::accept_loop(b, ctx.clone()));
        }
        Ok(Daemon {
            config,
            config_path,
            resolver,
            ports,
            store,
            directory,
            access,
            admin_keys,
            events,
            tracker,
            draining,
            signals: Some(signals),
        })
    }

    /// Serves until SIGTERM or SIGINT, reloading on SIGHUP; then drains.
    pub async fn run_until_signal(mut self) -> std::io::Result<()> {
        let Some(Signals {
            mut term,
            mut int,
            mut hup,
        }) = self.signals.take()
        else {
            return Err(std::io::Error::other("signal handlers already taken"));
        };
        tracing::info!(ports = ?self.ports, "ready");
        notify::ready(&format!("serving {} listeners", self.ports.len()));
        let watchdog = notify::spawn_watchdog();
        let trimmer = memory::spawn_trimmer();
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => self.reload(),
            }
        }
        if let Some(w) = watchdog {
            w.abort();
        }
        trimmer.abort();
        self.shutdown().await;
        Ok(())
    }

    /// Re-reads the config file, the certificates, the token keys and the event
    /// sinks. Listener, store, data directory and limit changes need a restart;
    /// certificate changes apply to the next handshake; sink changes apply as
    /// `events::reload` describes (matched by name, records in flight written by
    /// the writer they were queued for, all or nothing). A config that fails to
    /// load changes nothing.
    pub fn reload(&self) {
        notify::reloading();
        let config = match &self.config_path {
            Some(p) => match Config::load(p) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "reload: config rejected; keeping the running one");
                    notify::ready("reload failed: config rejected");
                    return;
                }
            },
            None => self.config.clone(),
        };
        match certificate_pairs(&config)
            .and_then(|p| self.resolver.load(&p).map_err(|e| StartError(e.0)))
        {
            Ok(()) => tracing::info!("reload: certificates re-read"),
            Err(e) => {
                tracing::error!(error = %e, "reload: certificates rejected; keeping the old ones")
            }
        }
        let keys_path = config.data_path(&config.access.token_keys);
        let keys = crate::access::keyfile::load_or_create(&keys_path)
            .and_then(|k| self.access.set_token_keys(k).map_err(|e| e.to_string()));
        match keys {
            Ok(()) => tracing::info!("reload: token keys re-read"),
            Err(e) => {
                tracing::error!(error = %e, "reload: token keys rejected; keeping the old ones")
            }
        }
        self.reload_sinks(&config);
        notify::ready("reloaded");
    }

    /// Applies `[events]` of `config` to the running sinks (relative to the running
    /// data directory), then routes organizations again whose email monitoring
    /// names a sink this reload added.
    fn reload_sinks(&self, config: &Config) {
        let base = &self.config.server.data_dir;
        match self.events.reload(&config.events, base) {
            Ok(report) => {
                if report.late.is_empty() {
                    tracing::info!(%report, "reload: event sinks applied");
                } else {
                    tracing::warn!(%report, "reload: event sinks applied; some are still finishing");
                }
                let orgs: Vec<String> = self
                    .directory
                    .list_organizations()
                    .into_iter()
                    .map(|o| o.id)
                    .collect();
                crate::admin::actions::monitoring::restore(
                    &self.store,
                    &self.events,
                    &orgs,
                    &self.config.admin.region,
                    &self.config.admin.account,
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "reload: event sinks rejected; keeping the running ones")
            }
        }
    }

    /// Stops accepting, lets sessions finish until the grace deadline, then returns.
    pub async fn shutdown(self) {
        notify::stopping();
        let grace = Duration::from_secs(self.config.server.shutdown_grace_secs);
        tracing::info!(
            sessions = self.tracker.len(),
            grace_secs = grace.as_secs(),
            "draining"
        );
        self.draining.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                sessions = self.tracker.len(),
                "grace period over; closing the remaining sessions"
            );
        }
        // The last audit and email records reach their files before the process ends.
        let events = self.events.clone();
        let flushed =
            tokio::task::spawn_blocking(move || events.flush(Duration::from_secs(5))).await;
        if !matches!(flushed, Ok(true)) {
            tracing::warn!("some event records may not have been written");
        }
        tracing::info!("stopped");
    }
}

/// The protocol behind each listener name (the fixed set of `config::Listeners`).
/// `https` serves the router (the admin API; EWS paths answer 404 until EWS lands).
fn protocol_for(
    name: &str,
    smtp: &Arc<SmtpContext>,
    imap: &Arc<ImapService>,
    https: &Arc<Router>,
    metrics: &Arc<Router>,
) -> Arc<dyn Protocol> {
    let flavor = match name {
        "https" => return https.clone(),
        "metrics" => return metrics.clone(),
        "imap" | "imaps" => return imap.clone(),
        "smtp" => Flavor::Mx,
        "submission" => Flavor::Submission,
        "submissions" => Flavor::Submissions,
        other => unreachable!("listener {other} is not in config::Listeners"),
    };
    Arc::new(SmtpService {
        flavor,
        ctx: smtp.clone(),
    })
}

/// The store's group-commit counters: writes per commit is the batch size.
fn store_counters(store: &Arc<dyn Backend>) -> Vec<crate::events::ScrapedCounter> {
    use crate::store::WriterStats;
    use std::sync::atomic::{AtomicU64, Ordering};
    let counter = |name, help, field: fn(&WriterStats) -> &AtomicU64| {
        let store = store.clone();
        let read = move || field(store.writer_stats()).load(Ordering::Relaxed);
        (
            name,
            help,
            Box::new(read) as Box<dyn Fn() -> u64 + Send + Sync>,
        )
    };
    vec![
        counter(
            "mailgate_store_commits",
            "Store transactions committed, one WAL fsync each",
            |s| &s.commits,
        ),
        counter(
            "mailgate_store_writes",
            "Store writes run (writes / commits = the group-commit batch size)",
            |s| &s.writes,
        ),
        counter(
            "mailgate_store_lingered",
            "Commits that waited for announced deliveries",
            |s| &s.lingered,
        ),
        counter(
            "mailgate_store_redone",
            "Batches run again with a savepoint per write because a write failed",
            |s| &s.redone,
        ),
    ]
}

/// `GET /metrics`: the registry, with the gauges read from the store refreshed first.
struct MetricsPage {
    metrics: Arc<Metrics>,
    store: Arc<dyn Backend>,
}

impl http::Handler for MetricsPage {
    fn handle(self: Arc<Self>, _req: http::HttpRequest) -> http::HandlerFuture {
        Box::pin(async move {
            if let Ok(n) = self.store.queued_recipients().await {
                self.metrics
                    .queue_depth
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            // `due` at the end of time lists every message, oldest first.
            if let Ok(oldest) = self.store.due(i64::MAX, 1).await {
                let age_ms = oldest
                    .first()
                    .map_or(0, |d| crate::store::now_ms() - d.message.enqueued_ms);
                self.metrics
                    .queue_oldest_age
                    .set(age_ms.max(0) as f64 / 1000.0);
            }
            http::HttpResponse::new(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render(),
            )
        })
    }
}

/// Directory, access engine and admin keys, as loaded at start.
struct State {
    directory: Arc<Directory>,
    access: Arc<AccessEngine>,
    admin_keys: Arc<Vec<AccessKey>>,
}

/// Loads the directory and the access rules from the store; on first start creates
/// the organization for `server.default_domain`, the token keys and the admin key,
/// and says so.
async fn open_state(store: &Arc<dyn Backend>, config: &Config) -> Result<State, StartError> {
    let store = store.clone();
    let config = config.clone();
    let task = tokio::task::spawn_blocking(move || -> Result<State, String> {
        let directory =
            Directory::open(store.clone()).map_err(|e| format!("directory in the store: {e}"))?;
        if directory.list_organizations().is_empty() {
            let domain = &config.server.default_domain;
            let alias = organization_alias(domain);
            let org = directory.create_organization(&alias, domain).map_err(|e| {
                format!(
                    "server.default_domain ({domain}): cannot create the first organization: {e}"
                )
            })?;
            println!(
                "mailgate: created organization {org} (alias {alias}) with mail domain {domain}"
            );
        }
        let keys_path = config.data_path(&config.access.token_keys);
        let keys = crate::access::keyfile::load_or_create(&keys_path)
            .map_err(|e| format!("access.token_keys: {e}"))?;
        let limits = AccessLimits {
            max_rules_per_org: config.access.max_rules,
            max_roles_per_org: config.access.max_impersonation_roles,
        };
        let access = AccessEngine::open(store, limits, keys)
            .map_err(|e| format!("access rules in the store: {e}"))?;
        // Organizations without access state get WorkMail's default allow-all rule;
        // one whose rules were all deleted keeps none.
        for org in directory.list_organizations() {
            access
                .create_organization_defaults(&org.id, crate::store::now_ms() as u64)
                .map_err(|e| format!("access rules for {}: {e}", org.id))?;
        }
        let cred_path = config.data_path(&config.admin.credentials);
        let (generated, created) = credentials::load_or_create(&cred_path)
            .map_err(|e| format!("admin.credentials: {e}"))?;
        if created {
            println!(
                "mailgate: wrote the admin access key to {} (profile {})",
                cred_path.display(),
                credentials::PROFILE
            );
        }
        let mut admin_keys = config.admin.access_keys.clone();
        admin_keys.push(generated);
        Ok(State {
            directory: Arc::new(directory),
            access: Arc::new(access),
            admin_keys: Arc::new(admin_keys),
        })
    });
    match task.await {
        Ok(r) => r.map_err(StartError),
        Err(e) => Err(StartError(format!("start-up task failed: {e}"))),
    }
}

/// An organization alias from a domain: its labels joined by `-` (`example.test` → `example-test`).
fn organization_alias(domain: &str) -> String {
    let alias: String = domain
        .split('.')
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("-")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(62)
        .collect();
    let alias = alias.trim_matches('-').to_string();
    // WorkMail refuses aliases starting with "d-" (directory ids).
    if alias.is_empty() || alias.starts_with("d-") {
        format!("org-{alias}").trim_end_matches('-').to_string()
    } else {
        alias
    }
}

/// Creates the data directory layout and proves it is writable and not full.
fn prepare_data_dir(dir: &Path) -> Result<(), StartError> {
    let fail = |what: &str, e: std::io::Error| {
        StartError(format!("server.data_dir ({}): {what}: {e}", dir.display()))
    };
    for sub in ["", "run", "tls"] {
        std::fs::create_dir_all(dir.join(sub))
            .map_err(|e| fail(&format!("cannot create {sub}/"), e))?;
    }
    // A write that is synced proves the disk takes data (read-only and full disks fail here).
    let probe = dir.join("run").join(".write-probe");
    let res = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&probe)?;
        f.write_all(&[0u8; 64 * 1024])?;
        f.sync_all()
    })();
    let _ = std::fs::remove_file(&probe);
    res.map_err(|e| fail("not writable", e))
}

/// The configured certificates, or the dev certificate (generated on first use).
fn certificate_pairs(config: &Config) -> Result<Vec<CertificatePair>, StartError> {
    if !config.tls.certificates.is_empty() {
        return Ok(config.tls.certificates.clone());
    }
    let dir = config.server.data_dir.join("tls");
    let dev = DevCert::in_dir(&dir);
    if !dev.cert.exists() || !dev.key.exists() {
        let generated =
            tls::generate_dev_cert(&dir, &config.server.hostname).map_err(|e| StartError(e.0))?;
        println!(
            "mailgate: generated a dev CA at {} (trust it in test clients)",
            generated.ca.display()
        );
    } else if tls::renew_dev_cert_if_due(&dir, &config.server.hostname)
        .map_err(|e| StartError(e.0))?
    {
        tracing::info!(cert = %dev.cert.display(), "renewed the dev certificate");
    }
    Ok(vec![dev.pair()])
}

fn write_ports_file(path: &Path, ports: &BTreeMap<&'static str, u16>) -> Result<(), StartError> {
    let json = serde_json::to_string(ports).map_err(|e| StartError(e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| StartError(format!("{}: cannot write: {e}", path.display())))
}

#[cfg(test)]
mod tests;
