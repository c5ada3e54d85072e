//! Builds the SMTP service from the daemon's shared handles: the session context
//! (limits, sender authentication, outbound queue) for the `smtp`, `submission` and
//! `submissions` listeners, and the queue runner when `[smtp.relay]` is set.
//!
//! Owns only this assembly; must not import `server`.

use std::sync::Arc;
use std::time::Duration;

use super::sender_auth::SenderAuth;
use super::{Flavor, SmtpContext, SmtpLimits, SmtpService, queue};
use crate::net::{RateLimiter, Services};
use crate::shared::{Shared, StartError};
use crate::submission::Submit;

/// The SMTP listeners' protocols and, with a relay, the outbound queue runner; and
/// the submission path other protocols send through. Errors name the config key
/// at fault.
pub fn services(shared: &Shared) -> Result<(Services, Arc<dyn Submit>), StartError> {
    let config = &shared.config;
    let store = &shared.store;
    let command_timeout = Duration::from_secs(config.smtp.command_timeout_secs);
    let data_timeout = Duration::from_secs(config.smtp.data_timeout_secs);
    let relay = match &config.smtp.relay {
        Some(r) => {
            let ca = r.ca.as_ref().map(|p| config.data_path(p));
            Some(
                queue::relay_settings(
                    r,
                    ca.as_deref(),
                    &config.server.hostname,
                    command_timeout,
                    data_timeout,
                )
                .map_err(|e| StartError(e.to_string()))?,
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
        directory: shared.directory.clone(),
        auth: shared.auth.clone(),
        events: shared.events.clone(),
        limits: SmtpLimits {
            max_message_size: config.limits.max_message_size as usize,
            max_recipients: config.smtp.max_recipients,
            max_errors: config.smtp.max_errors,
            message_rate_per_ip: config.smtp.max_message_rate_per_ip,
            command_timeout,
            data_timeout,
            body_budget: super::body::BodyBudget::new(
                config.limits.data_memory_budget as usize,
                config.server.data_dir.join("spool").join("data"),
            ),
        },
        outbound,
        mx_rate: RateLimiter::per_minute(config.smtp.max_message_rate_per_ip),
        sender_auth,
        quota_hints: Default::default(),
    });
    let submit: Arc<dyn Submit> = smtp.clone();
    let mut services = Services::default();
    for (name, flavor) in [
        ("smtp", Flavor::Mx),
        ("submission", Flavor::Submission),
        ("submissions", Flavor::Submissions),
    ] {
        let service = Arc::new(SmtpService {
            flavor,
            ctx: smtp.clone(),
        });
        services.listeners.push((name, service));
    }
    if let Some((settings, backoff)) = relay {
        let runner = queue::Runner {
            queue: store.clone(),
            ctx: smtp,
            relay: Arc::new(settings),
            backoff,
            wake,
        };
        let draining = shared.draining.clone();
        services.background.push(Box::pin(async move {
            tracing::info!(smarthost = %runner.relay.host, port = runner.relay.port, "outbound queue running");
            runner.run(draining).await
        }));
    }
    Ok((services, submit))
}
