//! Integration tests against the real binary. One test binary with modules, so it
//! links once.

mod durability;
mod harness;
mod lifecycle;
mod smtp_crash;
mod tls_versions;
