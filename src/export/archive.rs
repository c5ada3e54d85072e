//! The files of one export: the zip, written on a blocking thread from entries
//! fed one message at a time (so at most a few message bodies are in memory),
//! its SHA-384, and publishing it and the summary under their final names, or
//! discarding the partial file.
//!
//! Layout in the object directory (`root/bucket/prefix`): `.<job>.zip.part` while
//! writing, then `<job>.zip`, then `<job>.json` (the summary, written last, so
//! its presence says the zip is complete).

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha384};
use tokio::sync::mpsc;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::job::Summary;
use super::naming::{summary_name, temp_zip_name, zip_name};

/// One thing to put in the zip, in order.
#[derive(Debug)]
pub enum Entry {
    /// A folder (`name/`), so empty folders survive too.
    Folder(String),
    /// A message's exact stored bytes as `.eml`, dated with its internal date.
    Message {
        name: String,
        internal_date_ms: i64,
        body: Vec<u8>,
    },
}

/// Writes the zip at `path` from `entries` until the sender is dropped, makes it
/// durable and returns its SHA-384 (lowercase hex). Blocking: run it on a
/// blocking thread. Messages are deflated.
pub fn write_zip(path: &Path, entries: &mut mpsc::Receiver<Entry>) -> io::Result<String> {
    let mut zip = ZipWriter::new(BufWriter::new(File::create(path)?));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(1));
    while let Some(entry) = entries.blocking_recv() {
        match entry {
            Entry::Folder(name) => zip.add_directory(name, options).map_err(io::Error::other)?,
            Entry::Message {
                name,
                internal_date_ms,
                body,
            } => {
                let dated = options.last_modified_time(zip_time(internal_date_ms));
                zip.start_file(name, dated).map_err(io::Error::other)?;
                zip.write_all(&body)?;
            }
        }
    }
    let file = zip
        .finish()
        .map_err(io::Error::other)?
        .into_inner()
        .map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    sha384_file(path)
}

/// Runs [`write_zip`] on a thread of its own at a lower CPU priority (nice 10 on
/// Linux), so compressing an export yields the CPU to delivery and sessions; the
/// result arrives on the returned channel.
pub fn spawn_writer(
    path: std::path::PathBuf,
    mut entries: mpsc::Receiver<Entry>,
) -> io::Result<tokio::sync::oneshot::Receiver<io::Result<String>>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("mailgate-export".into())
        .spawn(move || {
            lower_priority();
            let _ = tx.send(write_zip(&path, &mut entries));
        })?;
    Ok(rx)
}

/// Nice 10 for the calling thread only (Linux's per-thread priorities).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority only read and set this thread's scheduling
    // priority; no memory is shared.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

/// Lowercase hex SHA-384 of a file, read in 64 KiB blocks.
pub fn sha384_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha384::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Renames the finished zip to `<job>.zip`, then writes the summary
/// `<job>.json` (through a temporary name) and syncs the directory: after a
/// crash either both are there or no summary is.
pub fn publish(dir: &Path, job_id: &str, summary: &Summary) -> io::Result<()> {
    fs::rename(dir.join(temp_zip_name(job_id)), dir.join(zip_name(job_id)))?;
    let json = serde_json::to_vec_pretty(summary).map_err(io::Error::other)?;
    let temp = dir.join(format!(".{}.part", summary_name(job_id)));
    let mut f = File::create(&temp)?;
    f.write_all(&json)?;
    f.sync_all()?;
    fs::rename(&temp, dir.join(summary_name(job_id)))?;
    File::open(dir)?.sync_all()
}

/// Removes a partial zip (a cancelled, failed or restarted job); absent is fine.
pub fn discard(dir: &Path, job_id: &str) {
    remove(dir, &temp_zip_name(job_id), job_id);
}

/// Removes a published zip and its summary (a job cancelled while it was being
/// published); absent is fine.
pub fn unpublish(dir: &Path, job_id: &str) {
    for name in [zip_name(job_id), summary_name(job_id)] {
        remove(dir, &name, job_id);
    }
}

/// Removes one of a job's files; absent is fine, a failure is logged.
fn remove(dir: &Path, name: &str, job_id: &str) {
    match fs::remove_file(dir.join(name)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(job_id, file = name, error = %e, "could not remove an export file")
        }
    }
}

/// A zip (MS-DOS) timestamp from epoch milliseconds; outside 1980-2107 the zip
/// default (1980-01-01).
fn zip_time(ms: i64) -> DateTime {
    let c = crate::clock::civil(ms.div_euclid(1000));
    let fields = (
        u16::try_from(c.year),
        u8::try_from(c.month),
        u8::try_from(c.day),
        u8::try_from(c.hour),
        u8::try_from(c.minute),
        u8::try_from(c.second),
    );
    match fields {
        (Ok(y), Ok(mo), Ok(d), Ok(h), Ok(mi), Ok(s)) => {
            DateTime::from_date_and_time(y, mo, d, h, mi, s).unwrap_or_default()
        }
        _ => DateTime::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::job::Totals;

    #[test]
    fn zip_holds_folders_and_exact_bytes_and_hash_matches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(temp_zip_name("j"));
        let (tx, mut rx) = mpsc::channel(2);
        let body = b"Subject: x\r\n\r\nbody \x00\xff\r\n".to_vec();
        let sent = body.clone();
        let feeder = std::thread::spawn(move || {
            tx.blocking_send(Entry::Folder("INBOX/".into())).unwrap();
            tx.blocking_send(Entry::Folder("Empty/".into())).unwrap();
            tx.blocking_send(Entry::Message {
                name: "INBOX/0000000001.eml".into(),
                internal_date_ms: 1_700_000_000_000,
                body: sent,
            })
            .unwrap();
        });
        let hash = write_zip(&path, &mut rx).unwrap();
        feeder.join().unwrap();
        assert_eq!(hash.len(), 96);
        assert_eq!(hash, hex::encode(Sha384::digest(fs::read(&path).unwrap())));

        let mut archive = zip::ZipArchive::new(File::open(&path).unwrap()).unwrap();
        let names: Vec<String> = archive
            .file_names()
            .map(|n| n.unwrap().into_owned())
            .collect();
        assert_eq!(names, ["INBOX/", "Empty/", "INBOX/0000000001.eml"]);
        let mut f = archive.by_name("INBOX/0000000001.eml").unwrap();
        assert_eq!(f.compression(), CompressionMethod::Deflated);
        let mut got = Vec::new();
        f.read_to_end(&mut got).unwrap();
        assert_eq!(got, body);
        let t = f.last_modified().unwrap();
        assert_eq!((t.year(), t.month(), t.day()), (2023, 11, 14));
    }

    #[test]
    fn publish_renames_and_writes_the_summary_discard_removes_the_part() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(temp_zip_name("j")), b"zip").unwrap();
        let s = Summary::new(Totals::default(), "00".into(), 1, 2);
        publish(dir.path(), "j", &s).unwrap();
        assert!(!dir.path().join(temp_zip_name("j")).exists());
        assert_eq!(fs::read(dir.path().join("j.zip")).unwrap(), b"zip");
        let back: Summary =
            serde_json::from_slice(&fs::read(dir.path().join("j.json")).unwrap()).unwrap();
        assert_eq!(back, s);
        // No leftover temporaries.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");

        fs::write(dir.path().join(temp_zip_name("k")), b"partial").unwrap();
        discard(dir.path(), "k");
        assert!(!dir.path().join(temp_zip_name("k")).exists());
        discard(dir.path(), "k"); // already gone: fine
    }

    #[test]
    fn zip_times_clamp_outside_the_dos_range() {
        assert_eq!(zip_time(-1), DateTime::default());
        let t = zip_time(1_000_000_000_000);
        assert_eq!((t.year(), t.month(), t.day(), t.hour()), (2001, 9, 9, 1));
    }
}
