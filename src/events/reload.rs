//! Building sinks from their config, at start and on reload (SIGHUP).
//!
//! Decision (the semantics of a reload, matched by name):
//!
//! - A sink whose name is new is started. Records offered to it wait in its queue
//!   until the sinks stopped or rebuilt by the same reload have finished, so two
//!   writers never share a file.
//! - A sink whose name stays is rebuilt from its new config even when nothing
//!   changed: files are reopened (an external logrotate followed by SIGHUP works),
//!   CA files re-read. Its queue, counters and metrics label carry on. The new
//!   filter applies to records emitted after the reload; records queued before it
//!   are written by the old writer first (in band, through the same queue). An
//!   HTTP sink that stays HTTP takes over its spool (`spool/events-<name>`), so
//!   records not yet delivered go to the new URL with the new CA.
//! - A sink whose name is gone stops receiving records at once; what it has
//!   queued is written (file, stdout) or spooled (HTTP) and it ends. An HTTP
//!   sink's undelivered spool stays on disk and goes out when a sink of that name
//!   is configured again (a later reload or start).
//! - All or nothing: every new or rebuilt writer is prepared (files opened, CA
//!   files read, spools of new HTTP sinks opened) before anything running is
//!   touched; if one fails, the reload is refused and the running sinks stay as
//!   they were. A config that fails validation never gets this far.
//!
//! [`plan`] is the pure part (what happens to each name); the rest is I/O.

use std::path::Path;

use super::EventsError;
use super::config::{SinkConfig, SinkKind};
use super::file;
use super::http;
use super::metrics::SinkStats;
use super::sink::{Replace, Stdout, Worker};

/// What a reload does with one sink name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// New name: a new sink.
    Start,
    /// Same name: the same queue with a new writer; `take_spool` when an HTTP sink
    /// stays HTTP and hands its spool over.
    Rebuild {
        /// The new writer takes over the old one's spool.
        take_spool: bool,
    },
    /// Name gone: the sink finishes what it has and ends.
    Stop,
}

/// The change for every wanted sink (in config order), then a `Stop` for every
/// running name that is no longer wanted. `running` has the kind each sink was
/// built as (None for sinks not built from config, such as the test capture).
pub fn plan(
    running: &[(String, Option<SinkKind>)],
    wanted: &[SinkConfig],
) -> Vec<(String, Change)> {
    let mut out: Vec<(String, Change)> = wanted
        .iter()
        .map(|c| {
            let change = match running.iter().find(|(n, _)| *n == c.name) {
                None => Change::Start,
                Some((_, kind)) => Change::Rebuild {
                    take_spool: *kind == Some(SinkKind::Http) && c.kind == SinkKind::Http,
                },
            };
            (c.name.clone(), change)
        })
        .collect();
    for (name, _) in running {
        if !wanted.iter().any(|c| c.name == *name) {
            out.push((name.clone(), Change::Stop));
        }
    }
    out
}

/// The HTTP spool directory of sink `name`.
pub fn spool_dir(base: &Path, name: &str) -> std::path::PathBuf {
    base.join("spool").join(format!("events-{name}"))
}

/// Opens the writer of sink `c` (files, spool, CA); `base` resolves relative paths.
/// Errors name the sink.
pub fn open_worker(
    c: &SinkConfig,
    base: &Path,
    stats: SinkStats,
) -> Result<Box<dyn Worker>, EventsError> {
    let at =
        |e: &dyn std::fmt::Display| EventsError::Sink(format!("events.sinks ({:?}): {e}", c.name));
    Ok(match c.kind {
        SinkKind::File => {
            let path = base.join(c.path.clone().unwrap_or_default());
            let policy = file::FilePolicy::of(c, path.clone());
            let w = file::FileSink::open(policy, stats)
                .map_err(|e| at(&format!("{}: cannot open: {e}", path.display())))?;
            Box::new(w)
        }
        SinkKind::Stdout => Box::new(Stdout { stats }),
        SinkKind::Http => {
            let ca = c.ca.as_ref().map(|p| base.join(p));
            let w = http::HttpSink::open(c, &spool_dir(base, &c.name), ca.as_deref(), stats)
                .map_err(|e| at(&e))?;
            Box::new(w)
        }
    })
}

/// The new writer of a sink that stays (see [`Change::Rebuild`]), prepared now and
/// swapped in on the sink's own thread.
pub fn rebuild(
    c: &SinkConfig,
    base: &Path,
    stats: SinkStats,
    take_spool: bool,
) -> Result<Replace, EventsError> {
    if take_spool {
        let ca = c.ca.as_ref().map(|p| base.join(p));
        let client = http::Client::new(c, ca.as_deref())
            .map_err(|e| EventsError::Sink(format!("events.sinks ({:?}): {e}", c.name)))?;
        return Ok(client.take_over(spool_dir(base, &c.name), stats));
    }
    let next = open_worker(c, base, stats)?;
    Ok(Box::new(move |old: Box<dyn Worker>| {
        drop(old);
        next
    }))
}

/// What a reload did, for the log line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// New sinks.
    pub started: Vec<String>,
    /// Sinks that stay, with a new writer.
    pub rebuilt: Vec<String>,
    /// Sinks removed.
    pub stopped: Vec<String>,
    /// Sinks that did not finish their part in time (a stuck writer): they finish
    /// later, and nothing is lost, but a new sink may briefly share their file.
    pub late: Vec<String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "started {:?}, rebuilt {:?}, stopped {:?}",
            self.started, self.rebuilt, self.stopped
        )?;
        if !self.late.is_empty() {
            write!(f, ", still finishing {:?}", self.late)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(name: &str, kind: &str) -> SinkConfig {
        let extra = match kind {
            "file" => "path = \"x.jsonl\"",
            "http" => "url = \"http://127.0.0.1:9/\"",
            _ => "",
        };
        let text = format!("[[sinks]]\nname = \"{name}\"\nkind = \"{kind}\"\n{extra}\n");
        let s: super::super::config::EventsSection = toml::from_str(&text).unwrap();
        s.sinks[0].clone()
    }

    #[test]
    fn plan_matches_sinks_by_name() {
        let running = [
            ("a".to_string(), Some(SinkKind::File)),
            ("siem".to_string(), Some(SinkKind::Http)),
            ("gone".to_string(), Some(SinkKind::Stdout)),
            ("memory".to_string(), None),
        ];
        let wanted = [sink("siem", "http"), sink("a", "http"), sink("new", "file")];
        assert_eq!(
            plan(&running, &wanted),
            [
                ("siem".into(), Change::Rebuild { take_spool: true }),
                ("a".into(), Change::Rebuild { take_spool: false }),
                ("new".into(), Change::Start),
                ("gone".into(), Change::Stop),
                ("memory".into(), Change::Stop),
            ]
        );
        // An HTTP sink turned into a file sink leaves its spool on disk.
        let wanted = [sink("siem", "file")];
        assert_eq!(
            plan(&running[1..2], &wanted),
            [("siem".into(), Change::Rebuild { take_spool: false })]
        );
        assert!(plan(&[], &[]).is_empty());
    }

    #[test]
    fn report_names_what_changed() {
        let r = Report {
            started: vec!["b".into()],
            rebuilt: vec!["a".into()],
            stopped: vec![],
            late: vec!["c".into()],
        };
        assert_eq!(
            r.to_string(),
            "started [\"b\"], rebuilt [\"a\"], stopped [], still finishing [\"c\"]"
        );
    }
}
