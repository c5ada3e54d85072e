//! The WorkMail admin API: AWS JSON 1.1 over HTTPS (`POST /`,
//! `X-Amz-Target: WorkMailService.<Action>`), SigV4-signed with the configured
//! access keys, so boto3 and the AWS CLI work against it unchanged.

pub mod client;
pub mod credentials;
pub mod error;
pub mod paginate;
pub mod sigv4;
