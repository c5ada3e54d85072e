//! The WorkMail admin API: AWS JSON 1.1 over HTTPS (`POST /`,
//! `X-Amz-Target: WorkMailService.<Action>`), SigV4-signed with the configured
//! access keys, so boto3 and the AWS CLI work against it unchanged.
//!
//! [`api::AdminApi`] is the HTTP handler (signature, target, body, dispatch);
//! [`actions`] holds one small function per WorkMail action, grouped by area;
//! [`state::AdminState`] is what they act on (directory, access engine, store).
//! It plugs into `net`'s HTTP layer and never imports `server` or another protocol.

pub mod actions;
pub mod api;
pub mod client;
pub mod context;
pub mod credentials;
pub mod error;
pub mod input;
pub mod keys;
pub mod paginate;
pub mod sigv4;
pub mod start;
pub mod state;

#[cfg(test)]
mod tests;
