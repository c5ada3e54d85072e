//! Mounts EWS on the HTTPS router from the daemon's shared handles. Owns only
//! this assembly; must not import `server`.

use std::sync::Arc;

use super::auth::BasicLogins;
use super::service::Ews;
use crate::access::Protocol;
use crate::net::Services;
use crate::net::http::Route;
use crate::shared::Shared;
use crate::submission::Submit;

/// `/EWS/Exchange.asmx` (any letter case), `/EWS/Services.wsdl`, the REST photo
/// path under `/EWS/Exchange.asmx/s/` and the Autodiscover paths when
/// `[ews] enabled`; nothing otherwise.
pub fn services(shared: &Shared, submit: Arc<dyn Submit>) -> Services {
    if !shared.config.ews.enabled {
        return Services::default();
    }
    let max = shared.config.limits.max_message_size;
    // A message travels base64-encoded (4/3) inside the SOAP request.
    let max_body = usize::try_from(max / 3 * 4 + 1024 * 1024).unwrap_or(usize::MAX);
    let ews = Arc::new(Ews {
        store: shared.store.clone(),
        directory: shared.directory.clone(),
        auth: shared.auth.clone(),
        access: shared.access.clone(),
        basic: BasicLogins::new(shared.auth.clone(), Protocol::Ews),
        max_message_size: max,
        subscriptions: Default::default(),
        metrics: super::metrics::EwsMetrics::registered(&shared.metrics),
        submit,
        site: super::autodiscover::Site::from_config(&shared.config),
    });
    let mut routes = vec![
        Route::exact("/EWS/Exchange.asmx", ews.clone()).max_body(max_body),
        // GET only: the WSDL and the REST photo form (see `wsdl`, `ops::photo`).
        Route::exact(super::wsdl::WSDL_PATH, ews.clone()),
        Route::prefix("/EWS/Exchange.asmx/s/", ews),
    ];
    routes.extend(super::autodiscover::routes(shared));
    Services {
        routes,
        ..Services::default()
    }
}
