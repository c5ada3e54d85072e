//! The ports file: `data/run/ports.json`, the port each enabled listener bound
//! (`{"imaps": 41234, ...}`), written once all are bound and before READY=1, so
//! tests and scripts can start the daemon on port 0 and find it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::shared::StartError;

/// Where the ports file lives under the data directory.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("run").join("ports.json")
}

/// Writes the ports file atomically (temporary file, then rename).
pub fn write(path: &Path, ports: &BTreeMap<&'static str, u16>) -> Result<(), StartError> {
    let json = serde_json::to_string(ports).map_err(|e| StartError(e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| StartError(format!("{}: cannot write: {e}", path.display())))
}
