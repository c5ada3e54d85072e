//! The daemon's life: start-up, listener supervision, readiness, SIGHUP reload and
//! graceful shutdown.
//!
//! `server` is the roof: it builds the shared handles once ([`Shared`]), asks each
//! protocol for its services (`smtp::start`, `imap::start`, `admin::start`), binds
//! the listeners they name, and runs them. It owns no protocol logic; provisioning,
//! the metrics page and the ports file are rooms of their own below it.
//!
//! Start-up is all-or-nothing: every problem an operator can fix (config, certificate,
//! port, data directory, store file) becomes a [`StartError`] with one line naming
//! what and where, and the process exits 78 before it reports ready.

pub mod memory;
pub mod metrics_page;
pub mod notify;
pub mod ports;
pub mod provision;
pub mod refresh;
pub mod secrets;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::AccessEngine;
use crate::access::login::Authenticator;
use crate::config::Config;
use crate::directory::Directory;
use crate::events::{Events, Metrics};
use crate::net::http::Router;
use crate::net::{AcceptContext, BoundListener, ConnLimits, Protocol, Services};
use crate::shared::Shared;
pub use crate::shared::StartError;
use crate::store::Backend;
use crate::tls::{self, CertResolver};
use provision::certificate_pairs;

/// A started daemon: listeners bound and accepting, ready reported.
pub struct Daemon {
    config: Arc<Config>,
    config_path: Option<PathBuf>,
    resolver: Arc<CertResolver>,
    /// Ports actually bound, by listener name.
    pub ports: BTreeMap<&'static str, u16>,
    /// The message store.
    pub store: Arc<dyn Backend>,
    /// Organizations, users, groups, aliases.
    pub directory: Arc<Directory>,
    /// Access rules, impersonation roles, token keys.
    pub access: Arc<AccessEngine>,
    /// The token keys and the SigV4 keys the admin API accepts (the configured
    /// ones and the generated one).
    pub secrets: Arc<secrets::Secrets>,
    /// Email and audit event sinks.
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
        provision::prepare_data_dir(&config.server.data_dir)?;
        let ports_file = ports::path(&config.server.data_dir);
        let _ = std::fs::remove_file(&ports_file);

        let (shared, secrets) = build_shared(config).await?;
        let (smtp, submit) = crate::smtp::start::services(&shared)?;
        let offers = vec![
            crate::admin::start::services(&shared, secrets.clone()),
            smtp,
            crate::imap::start::services(&shared),
            crate::ews::start::services(&shared, submit),
            crate::retention::services(
                &shared.config.retention,
                &shared.store,
                &shared.directory,
                &shared.metrics,
                &shared.draining,
            ),
        ];
        let (bound, ports, background) = bind_listeners(&shared, offers).await?;
        // Before ports.json says "ready": a SIGTERM from then on must drain, not kill.
        let signals = Signals::install()
            .map_err(|e| StartError(format!("cannot install signal handlers: {e}")))?;
        ports::write(&ports_file, &ports)?;

        let Shared {
            config,
            store,
            directory,
            access,
            events,
            metrics,
            resolver,
            draining,
            ..
        } = shared;
        let tracker = TaskTracker::new();
        let ctx = AcceptContext {
            conn_limits: ConnLimits::new(
                config.limits.max_connections,
                config.limits.max_connections_per_ip,
                config.limits.max_connection_rate_per_ip,
            ),
            limits: Arc::new(config.limits.clone()),
            tracker: tracker.clone(),
            draining: draining.clone(),
            metrics,
        };
        for work in background {
            tracker.spawn(work);
        }
        for b in bound {
            tracing::info!(listener = b.name, port = ports[b.name], tls = ?b.tls_mode, "listening");
            tokio::spawn(crate::net::accept_loop(b, ctx.clone()));
        }
        Ok(Daemon {
            config,
            config_path,
            resolver,
            ports,
            store,
            directory,
            access,
            secrets,
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
            None => (*self.config).clone(),
        };
        match certificate_pairs(&config)
            .and_then(|p| self.resolver.load(&p).map_err(|e| StartError(e.0)))
        {
            Ok(()) => tracing::info!("reload: certificates re-read"),
            Err(e) => {
                tracing::error!(error = %e, "reload: certificates rejected; keeping the old ones")
            }
        }
        // The key files, or the secrets the daemons share in the backend.
        match self.secrets.reload(&config) {
            Ok(()) => tracing::info!("reload: token keys and admin key re-read"),
            Err(e) => {
                tracing::error!(error = %e, "reload: secrets rejected; keeping the old ones")
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
                crate::admin::start::route_monitoring(
                    &self.directory,
                    &self.store,
                    &self.events,
                    &self.config,
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

/// Builds the handles every protocol shares, once: certificates, store, directory
/// and access (provisioned on first start), metrics, event sinks, authenticator.
/// Also returns the admin API's access keys (provisioned with the rest).
async fn build_shared(config: Config) -> Result<(Shared, Arc<secrets::Secrets>), StartError> {
    let resolver = Arc::new(CertResolver::default());
    let pairs = certificate_pairs(&config)?;
    resolver.load(&pairs).map_err(|e| StartError(e.0))?;

    // Where a refusal points: the file, or (PostgreSQL) the url's key.
    let store_key = match config.store.backend {
        crate::config::StoreBackend::Sqlite => format!(
            "store.path ({})",
            config.data_path(&config.store.path).display()
        ),
        crate::config::StoreBackend::Postgres => "store.url".to_string(),
    };
    let store = crate::store::open(&config)
        .await
        .map_err(|e| StartError(format!("{store_key}: {e}")))?;
    let provision::State {
        directory,
        access,
        secrets,
    } = provision::open_state(&store, &config).await?;
    let metrics = Arc::new(Metrics::new());
    metrics.count_at_scrape(metrics_page::store_counters(&store));
    metrics_page::register_backend_metrics(&metrics, &store);
    let events = Events::start(&config.events, &config.server.data_dir, metrics.clone())
        .map_err(|e| StartError(e.to_string()))?;
    // Every event goes through the store's outbox: none is lost to a crash once
    // the write it reports is acknowledged.
    events
        .attach_outbox(store.clone())
        .map_err(|e| StartError(e.to_string()))?;
    let auth = Arc::new(
        Authenticator::new(
            directory.clone(),
            access.clone(),
            events.clone(),
            &config.admin.region,
            &config.admin.account,
        )
        .throttle_in(store.clone()),
    );
    let shared = Shared {
        config: Arc::new(config),
        store,
        directory,
        access,
        auth,
        events,
        metrics,
        resolver,
        draining: CancellationToken::new(),
    };
    // Other daemons write to a shared backend: bring their changes in.
    if shared.store.is_shared() {
        refresh::spawn(
            refresh::followers(&shared, secrets.clone()),
            shared.store.state_changes(),
            shared.draining.clone(),
        );
    }
    Ok((shared, secrets))
}

/// Binds every enabled listener to the protocol that offers it (`https` to the
/// router over every offered route, `metrics` to the metrics page), and collects
/// the offered background work.
async fn bind_listeners(
    shared: &Shared,
    offers: Vec<Services>,
) -> Result<
    (
        Vec<BoundListener>,
        BTreeMap<&'static str, u16>,
        Vec<crate::net::Background>,
    ),
    StartError,
> {
    let mut protocols: BTreeMap<&'static str, Arc<dyn Protocol>> = BTreeMap::new();
    let (mut routes, mut background) = (Vec::new(), Vec::new());
    for offer in offers {
        protocols.extend(offer.listeners);
        routes.extend(offer.routes);
        background.extend(offer.background);
    }
    let l = &shared.config.limits;
    let http_limits = crate::net::http::HttpLimits {
        header_read: Duration::from_secs(l.http_header_timeout_secs),
        body_grace: Duration::from_secs(l.http_body_grace_secs),
        body_min_rate: l.http_body_min_rate,
    };
    protocols.insert(
        "https",
        Arc::new(Router::new(routes).with_limits(http_limits)),
    );
    let page = metrics_page::route(shared.metrics.clone(), shared.store.clone());
    protocols.insert("metrics", Arc::new(Router::new(vec![page])));

    let mut bound = Vec::new();
    let mut ports = BTreeMap::new();
    for (name, lc) in shared.config.listeners.all() {
        if !lc.enabled {
            continue;
        }
        let protocol = protocols
            .get(name)
            .cloned()
            .ok_or_else(|| StartError(format!("listeners.{name}: no protocol serves it")))?;
        let addr = lc.socket_addr();
        let socket = TcpListener::bind(addr)
            .await
            .map_err(|e| StartError(format!("listeners.{name} ({addr}): cannot listen: {e}")))?;
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
            protocol,
            acceptor: TlsAcceptor::from(tls::server_config(shared.resolver.clone(), alpn)),
            proxy: lc
                .proxy_protocol
                .then(|| Arc::new(crate::net::ProxyPolicy::new(lc.proxy_from.clone()))),
        });
    }
    Ok((bound, ports, background))
}

#[cfg(test)]
mod tests;
