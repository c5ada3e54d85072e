//! The IMAP commands, one module per group, each a function over the session state
//! that queues untagged data and returns the tagged completion.

pub mod append;
pub mod auth;
pub mod fetch;
pub mod folders;
pub mod idle;
pub mod list;
pub mod messages;
pub mod quota;
pub mod search;
pub mod select;
