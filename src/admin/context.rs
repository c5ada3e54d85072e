//! Who made the admin request being answered (request id, source address, user
//! agent), for the few actions whose audit records name them, without widening every
//! action's signature: the API handler sets it for the duration of the action.

use std::net::{IpAddr, Ipv4Addr};

/// The request an action is answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The `x-amzn-RequestId` the answer carries.
    pub request_id: String,
    /// The client's address.
    pub source_ip: IpAddr,
    /// The client's `User-Agent`, if it sent one.
    pub user_agent: Option<String>,
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// Runs `f` with `ctx` as the current request.
pub async fn scope<F: std::future::Future>(ctx: RequestContext, f: F) -> F::Output {
    CURRENT.scope(ctx, f).await
}

/// The current request; outside a request (an action called directly, in tests) a
/// fresh request id from the unspecified address.
pub fn current() -> RequestContext {
    CURRENT
        .try_with(Clone::clone)
        .unwrap_or_else(|_| RequestContext {
            request_id: crate::events::new_id(),
            source_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            user_agent: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_scope_sets_the_current_request() {
        let ctx = RequestContext {
            request_id: "r1".into(),
            source_ip: "192.0.2.7".parse().unwrap(),
            user_agent: Some("boto3".into()),
        };
        let seen = scope(ctx.clone(), async { current() }).await;
        assert_eq!(seen, ctx);
        let outside = current();
        assert_eq!(outside.source_ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert!(!outside.request_id.is_empty());
    }
}
