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
use crate::store::Backend;

/// The admin API's route: `POST /` with `X-Amz-Target`, bodies up to
/// `limits.max_message_size`, answering to `keys` (configured and generated).
pub fn services(shared: &Shared, secrets: Arc<dyn AdminSecrets>) -> Services {
    let config = &shared.config;
    route_monitoring(&shared.directory, &shared.store, &shared.events, config);
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

/// WorkMail API calls are `POST /` naming their action in `X-Amz-Target`.
fn is_api_call(head: &HttpRequest) -> bool {
    head.method == "POST" && head.header("x-amz-target").is_some()
}
