//! Exchange Web Services: SOAP 1.1 at `/EWS/Exchange.asmx` on the `https` listener,
//! over the same store, directory, access decisions and events as SMTP and IMAP.
//!
//! Layers, each its own file: `xml` (bounded request tree, always-valid output),
//! `envelope` (SOAP header: version, impersonation; response envelope and faults),
//! `auth` (Basic through the shared login path, Bearer tokens), `service` (the HTTP
//! handler), `context` (who acts and the audited mailbox-rights decision),
//! `folders` and `ids` (the EWS view of the store), `ops` (the operations),
//! `wsdl` (what `GET` on the EWS paths answers).
//!
//! Must not touch SQL or files (the store does), nor import `server`, `imap` or
//! `smtp`. Off unless `[ews] enabled = true` until the mail tier is complete.

pub mod attachment_ids;
pub mod auth;
pub mod autodiscover;
pub mod codes;
pub mod context;
pub mod envelope;
pub mod feed;
pub mod folders;
pub mod ids;
pub mod item;
pub mod metrics;
pub mod ops;
pub mod props;
pub mod service;
pub mod start;
pub mod subscriptions;
pub mod wsdl;
pub mod xml;

#[cfg(test)]
mod tests;
