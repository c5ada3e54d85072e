//! The transport floor under every protocol: client connections (plain or TLS, with
//! the idle autologout), admission against the connection limits and rates, the
//! PROXY protocol header from a load balancer (`net::proxy`), accept loops that
//! hand each connection to its protocol's session, and the HTTP layer
//! (`net::http`) that the admin API and EWS plug into.
//!
//! A leaf: `net` may import only `config`, `tls`, std and crates. It must never
//! import `server`, a protocol (`smtp`, `imap`, `admin`, `ews`), `store`, `directory`,
//! `access` or `events`; what it needs from them (metrics) comes in through traits
//! defined here.

pub mod http;
pub mod limits;
pub mod listener;
pub mod proxy;
pub mod rate;

pub use limits::{ConnLimits, ConnPermit};
pub use listener::{
    AcceptContext, BoundListener, ListenerMetrics, ListenerStats, Protocol, Session, Stream,
    accept_loop,
};
pub use proxy::ProxyPolicy;
pub use rate::RateLimiter;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Background work a protocol runs for the daemon's whole life (e.g. the SMTP
/// outbound queue); it must end once draining starts.
pub type Background = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a protocol offers the daemon at start: `server` binds the listeners it
/// names, mounts its routes on the HTTPS router, and runs its background work once
/// every listener is bound. Adding a protocol adds one offer, not wiring in `server`.
#[derive(Default)]
pub struct Services {
    /// Listener name (a key of `config::Listeners`) → the protocol serving it.
    pub listeners: Vec<(&'static str, Arc<dyn Protocol>)>,
    /// Routes on the HTTPS listener.
    pub routes: Vec<http::Route>,
    /// Work started on the daemon's task tracker after the ports are written.
    pub background: Vec<Background>,
}

#[cfg(test)]
mod tests;
