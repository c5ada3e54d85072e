//! `[export]`: where mailbox export jobs write (the stand-in for S3 buckets).

use std::path::PathBuf;

use serde::Deserialize;

/// Mailbox export settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSection {
    /// Directory that stands for S3: bucket `b` with prefix `p` is `root/b/p`.
    /// Relative paths are under `server.data_dir`.
    #[serde(default = "default_root")]
    pub root: PathBuf,
}

fn default_root() -> PathBuf {
    PathBuf::from("exports")
}

impl Default for ExportSection {
    fn default() -> Self {
        ExportSection {
            root: default_root(),
        }
    }
}
