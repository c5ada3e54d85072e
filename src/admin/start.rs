//! Mounts the WorkMail admin API on the HTTPS router from the daemon's shared
//! handles, and routes each organization's email monitoring to its sink again.
//! Owns only this assembly; must not import `server`.

use std::sync::Arc;

use super::api::AdminApi;
use super::keys::AdminSecrets;
use super::state::AdminState;
use crate::config::Config;
use crate::directory::Directory;
use crate::events::Events;
use crate::net::Services;
use crate::net::http::{HttpRequest, Route};
use crate::shared::Shared;
use crate::store::{Backend, Versioned};

/// The admin API's route: `POST /` with `X-Amz-Target`, bodies up to
/// `limits.max_message_size`, answering to `keys` (configured and generated).
pub fn services(shared: &Shared, secrets: Arc<dyn AdminSecrets>) -> Services {
    let config = &shared.config;
    // The version before the first routing: a change after it is followed.
    let seen = shared.store.state_version(Versioned::Tags).ok();
    route_monitoring(&shared.directory, &shared.store, &shared.events, config);
    if shared.store.is_shared() {
        follow_monitoring(shared, seen);
    }
    let exports = super::actions::export::start_jobs(shared);
    let state = Arc::new(AdminState {
        directory: shared.directory.clone(),
        access: shared.access.clone(),
        store: shared.store.clone(),
        events: shared.events.clone(),
        exports,
        secrets,
        region: config.admin.region.clone(),
        account: config.admin.account.clone(),
    });
    let max_body = usize::try_from(config.limits.max_message_size).unwrap_or(usize::MAX);
    let api = Route::exact("/", Arc::new(AdminApi::new(state)))
        .when(is_api_call)
        .max_body(max_body);
    Services {
        routes: vec![api],
        ..Services::default()
    }
}

/// Routes every organization's email events to the sink its email monitoring
/// names (at start, and again after a reload changed the sinks).
pub fn route_monitoring(
    directory: &Directory,
    store: &Arc<dyn Backend>,
    events: &Events,
    config: &Config,
) {
    let org_ids: Vec<String> = directory
        .list_organizations()
        .into_iter()
        .map(|o| o.id)
        .collect();
    super::actions::monitoring::restore(
        store,
        events,
        &org_ids,
        &config.admin.region,
        &config.admin.account,
    );
}

/// On a shared store: routes email monitoring again whenever another daemon
/// changed tags: told at once by a notification, else seen by reading the
/// store's `tags` version every [`STATE_POLL`](crate::store::STATE_POLL) (one row; notifications lost
/// to a daemon that died between its commit and its NOTIFY, or to a listener's
/// reconnect). `seen` is the version the first routing read. Stops when the
/// daemon drains.
fn follow_monitoring(shared: &Shared, mut seen: Option<u64>) {
    let mut changes = shared.store.state_changes();
    let (directory, store, events, config, draining) = (
        shared.directory.clone(),
        shared.store.clone(),
        shared.events.clone(),
        shared.config.clone(),
        shared.draining.clone(),
    );
    tokio::spawn(async move {
        use crate::store::{StateChange, next_state_change};
        loop {
            let missed = tokio::select! {
                _ = draining.cancelled() => return,
                change = next_state_change(&mut changes) => change == StateChange::Missed,
                _ = tokio::time::sleep(crate::store::STATE_POLL) => false,
            };
            let (d, s, e, c) = (
                directory.clone(),
                store.clone(),
                events.clone(),
                config.clone(),
            );
            let routed = tokio::task::spawn_blocking(move || {
                let now = s.state_version(Versioned::Tags).ok();
                // An unreadable version (an outage) routes nothing until it reads again.
                if now.is_some() && (missed || now != seen) {
                    route_monitoring(&d, &s, &e, &c);
                }
                now
            })
            .await;
            if let Ok(Some(now)) = routed {
                seen = Some(now);
            }
        }
    });
}

/// WorkMail API calls are `POST /` naming their action in `X-Amz-Target`.
fn is_api_call(head: &HttpRequest) -> bool {
    head.method == "POST" && head.header("x-amz-target").is_some()
}
