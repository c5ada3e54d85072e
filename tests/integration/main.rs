//! Integration tests against the real binary. One test binary with modules, so it
//! links once.

mod harness;
mod lifecycle;
mod tls_versions;
