//! Mailbox export jobs (WorkMail's StartMailboxExportJob and friends) without S3:
//! a job writes one zip of every email and calendar item of a mailbox, as the
//! exact stored MIME bytes (`.eml`, folder structure kept), plus WorkMail's
//! summary JSON, into `[export] root`/bucket/prefix.
//!
//! Owns: input rules and file layout ([`naming`], pure), job records, limits and
//! the summary ([`job`], pure), writing the files ([`archive`]), and the job
//! service that persists, runs, resumes and cancels jobs ([`jobs`]). The admin
//! API's actions are a thin layer over [`jobs::ExportJobs`]. Sits above `store`;
//! imports no protocol.

pub mod archive;
pub mod config;
pub mod job;
pub mod jobs;
pub mod naming;

pub use config::ExportSection;
pub use jobs::ExportJobs;

#[cfg(test)]
mod tests;
