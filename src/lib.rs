//! mailgate: one small async mail daemon serving SMTP, IMAP and EWS over TLS 1.2+,
//! with WorkMail-style access control and WorkMail-shaped events.
//!
//! Data flows listener → session → access → store → events; each concern is one
//! module (see DESIGN.md's module map).

pub mod access;
pub mod admin;
pub mod clock;
pub mod config;
pub mod directory;
pub mod events;
pub mod ews;
pub mod export;
pub mod imap;
pub mod message;
pub mod net;
pub mod retention;
pub mod secret_file;
pub mod server;
pub mod shared;
pub mod smtp;
pub mod store;
pub mod submission;
#[cfg(test)]
pub(crate) mod test_harness;
pub mod tls;
