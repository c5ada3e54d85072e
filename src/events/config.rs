//! The `[events]` config section: which sinks exist and what each one receives.
//!
//! Decision: sinks are an array, `[[events.sinks]]`, one flat table per sink with a
//! `kind` (`file`, `stdout`, `http`) and the keys of that kind; a key that belongs to
//! another kind is an error naming the sink, so a typo never silently does nothing.
//! The older keys `email_log` and `audit_log` stay as shorthand for two file sinks
//! named `email_log` (email events only) and `audit_log` (audit events only). When
//! neither shorthand key nor any `[[events.sinks]]` is given, the two default files
//! (`events/email.jsonl`, `events/audit.jsonl`) are written, as the operator contract
//! says; once sinks are listed, only what is configured is written.

use super::EventsError;
use std::path::PathBuf;

use serde::Deserialize;

/// Email event names a sink filter may name (WorkMail's event catalog).
pub const EMAIL_EVENT_NAMES: [&str; 9] = [
    "ORGANIZATION_EMAIL_RECEIVED",
    "MAILBOX_EMAIL_DELIVERED",
    "RULE_APPLIED",
    "JOURNALING_INITIATED",
    "INCOMING_EMAIL_BOUNCED",
    "OUTGOING_EMAIL_SUBMITTED",
    "OUTGOING_EMAIL_SENT",
    "OUTGOING_EMAIL_BOUNCED",
    "DMARC_POLICY_APPLIED",
];

/// Audit log types a sink filter may name (WorkMail's five audit logs).
pub const AUDIT_LOG_TYPES: [&str; 5] = [
    "mailbox_access",
    "access_control",
    "authentication",
    "personal_access_token",
    "availability_provider",
];

/// Where email events and audit events go.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSection {
    /// Shorthand: a file sink of every email event; relative to `server.data_dir`.
    #[serde(default)]
    pub email_log: Option<PathBuf>,
    /// Shorthand: a file sink of every audit event; relative to `server.data_dir`.
    #[serde(default)]
    pub audit_log: Option<PathBuf>,
    /// Any number of sinks, each with its own filter.
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
}

/// Kinds of sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// JSON lines appended to a file, rotated by size and age.
    File,
    /// JSON lines on standard output (journald keeps them under systemd).
    Stdout,
    /// Batches of JSON lines POSTed to a URL, spooled on disk while it is down.
    Http,
}

impl SinkKind {
    /// The name used in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::File => "file",
            SinkKind::Stdout => "stdout",
            SinkKind::Http => "http",
        }
    }
}

/// When a file sink calls fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// After every batch written: nothing acknowledged is lost on power failure.
    Always,
    /// At most every `fsync_interval_ms`: cheaper, loses at most that much.
    Interval,
}

/// One `[[events.sinks]]` table. Kind-specific keys are optional here and checked
/// against the kind in [`EventsSection::validate`]; defaults are in the accessors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Unique; letters, digits, `-` and `_` (it names the spool directory and the
    /// log group ARN of PutEmailMonitoringConfiguration).
    pub name: String,
    /// `file`, `stdout` or `http`; decides which other keys apply.
    pub kind: SinkKind,
    /// Email event names this sink receives; `["*"]` (default) all, `[]` none.
    #[serde(default = "all")]
    pub email_events: Vec<String>,
    /// Audit log types this sink receives; `["*"]` (default) all, `[]` none.
    #[serde(default = "all")]
    pub audit_logs: Vec<String>,
    /// file: the JSON-lines file; relative to `server.data_dir`.
    pub path: Option<PathBuf>,
    /// file: rotate once the file reaches this many bytes (0: never). Default 100 MiB.
    pub rotate_bytes: Option<u64>,
    /// file: rotate once the file is this old (0: never). Default 0.
    pub rotate_secs: Option<u64>,
    /// file: rotated files kept (oldest deleted first). Default 10.
    pub keep: Option<usize>,
    /// file: `always` or `interval` (default).
    pub fsync: Option<Fsync>,
    /// file: the longest time between fsyncs with `fsync = "interval"`. Default 1000.
    pub fsync_interval_ms: Option<u64>,
    /// http: `http://` or `https://` URL receiving `POST` of `application/x-ndjson`.
    pub url: Option<String>,
    /// http: PEM file of the CA certificates trusted for an `https` URL (only
    /// these: a private CA works, system roots are not used); relative to
    /// `server.data_dir`. Re-read on reload.
    pub ca: Option<PathBuf>,
    /// http: value of the `Authorization` header, if the receiver wants one.
    pub authorization: Option<String>,
    /// http: records per POST at most. Default 1000.
    pub batch_max: Option<usize>,
    /// http: bytes the on-disk spool may hold before new records are dropped
    /// (and counted). Default 1 GiB.
    pub spool_max_bytes: Option<u64>,
    /// http: first retry delay after a failed POST, doubling up to `retry_max_ms`.
    /// Default 200.
    pub retry_initial_ms: Option<u64>,
    /// http: longest retry delay. Default 30000.
    pub retry_max_ms: Option<u64>,
    /// http: connect plus request timeout. Default 10.
    pub timeout_secs: Option<u64>,
}

fn all() -> Vec<String> {
    vec!["*".into()]
}

impl SinkConfig {
    /// A file sink receiving one family of records (the shorthand keys).
    fn shorthand(name: &str, path: PathBuf, email: bool) -> SinkConfig {
        let pick = |on: bool| if on { all() } else { Vec::new() };
        SinkConfig {
            name: name.into(),
            kind: SinkKind::File,
            email_events: pick(email),
            audit_logs: pick(!email),
            path: Some(path),
            rotate_bytes: None,
            rotate_secs: None,
            keep: None,
            fsync: None,
            fsync_interval_ms: None,
            url: None,
            ca: None,
            authorization: None,
            batch_max: None,
            spool_max_bytes: None,
            retry_initial_ms: None,
            retry_max_ms: None,
            timeout_secs: None,
        }
    }

    /// Keys set on this sink that its kind does not use.
    fn foreign_keys(&self) -> Vec<&'static str> {
        let file = [
            ("path", self.path.is_some()),
            ("rotate_bytes", self.rotate_bytes.is_some()),
            ("rotate_secs", self.rotate_secs.is_some()),
            ("keep", self.keep.is_some()),
            ("fsync", self.fsync.is_some()),
            ("fsync_interval_ms", self.fsync_interval_ms.is_some()),
        ];
        let http = [
            ("url", self.url.is_some()),
            ("ca", self.ca.is_some()),
            ("authorization", self.authorization.is_some()),
            ("batch_max", self.batch_max.is_some()),
            ("spool_max_bytes", self.spool_max_bytes.is_some()),
            ("retry_initial_ms", self.retry_initial_ms.is_some()),
            ("retry_max_ms", self.retry_max_ms.is_some()),
            ("timeout_secs", self.timeout_secs.is_some()),
        ];
        let mut out = Vec::new();
        if self.kind != SinkKind::File {
            out.extend(file.iter().filter(|(_, set)| *set).map(|(k, _)| *k));
        }
        if self.kind != SinkKind::Http {
            out.extend(http.iter().filter(|(_, set)| *set).map(|(k, _)| *k));
        }
        out
    }
}

impl EventsSection {
    /// Every sink to run: the shorthand files, or the defaults when nothing is
    /// configured, followed by `[[events.sinks]]`.
    pub fn effective_sinks(&self) -> Vec<SinkConfig> {
        let mut out = Vec::new();
        let defaults =
            self.email_log.is_none() && self.audit_log.is_none() && self.sinks.is_empty();
        let email = self
            .email_log
            .clone()
            .or_else(|| defaults.then(|| PathBuf::from("events/email.jsonl")));
        let audit = self
            .audit_log
            .clone()
            .or_else(|| defaults.then(|| PathBuf::from("events/audit.jsonl")));
        if let Some(p) = email {
            out.push(SinkConfig::shorthand("email_log", p, true));
        }
        if let Some(p) = audit {
            out.push(SinkConfig::shorthand("audit_log", p, false));
        }
        out.extend(self.sinks.iter().cloned());
        out
    }

    /// Names, kinds, filters and values the types cannot check; errors name the sink.
    pub fn validate(&self) -> Result<(), EventsError> {
        let sinks = self.effective_sinks();
        for (i, s) in sinks.iter().enumerate() {
            let at = format!("events.sinks ({:?})", s.name);
            if s.name.is_empty()
                || !s
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(EventsError::Config(format!(
                    "{at}.name: letters, digits, '-' and '_' only, not empty"
                )));
            }
            if sinks[..i].iter().any(|o| o.name == s.name) {
                return Err(EventsError::Config(format!(
                    "{at}.name: used by two sinks (email_log and audit_log are the shorthand sinks' names)"
                )));
            }
            if let Some(k) = s.foreign_keys().first() {
                return Err(EventsError::Config(format!(
                    "{at}.{k}: not a key of a {} sink",
                    s.kind.as_str()
                )));
            }
            check_filter(&at, "email_events", &s.email_events, &EMAIL_EVENT_NAMES)?;
            check_filter(&at, "audit_logs", &s.audit_logs, &AUDIT_LOG_TYPES)?;
            match s.kind {
                SinkKind::File => {
                    if s.path.as_ref().is_none_or(|p| p.as_os_str().is_empty()) {
                        return Err(EventsError::Config(format!(
                            "{at}.path: a file sink needs a path"
                        )));
                    }
                    if let Some(other) = sinks[..i]
                        .iter()
                        .find(|o| o.kind == SinkKind::File && o.path == s.path)
                    {
                        return Err(EventsError::Config(format!(
                            "{at}.path: also the path of sink {:?}; two writers would interleave",
                            other.name
                        )));
                    }
                    if s.fsync_interval_ms == Some(0) {
                        return Err(EventsError::Config(format!(
                            "{at}.fsync_interval_ms: must be at least 1"
                        )));
                    }
                }
                SinkKind::Stdout => {}
                SinkKind::Http => {
                    let url = s.url.as_deref().unwrap_or("");
                    let parsed = super::http::Target::parse(url)
                        .map_err(|e| EventsError::Config(format!("{at}.url: {url:?}: {e}")))?;
                    if parsed.tls && s.ca.is_none() {
                        return Err(EventsError::Config(format!(
                            "{at}.ca: an https url needs a CA file"
                        )));
                    }
                    if s.batch_max == Some(0) || s.spool_max_bytes == Some(0) {
                        return Err(EventsError::Config(format!(
                            "{at}: batch_max and spool_max_bytes must be at least 1"
                        )));
                    }
                    if s.retry_initial_ms == Some(0) || s.timeout_secs == Some(0) {
                        return Err(EventsError::Config(format!(
                            "{at}: retry_initial_ms and timeout_secs must be at least 1"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_filter(at: &str, key: &str, values: &[String], known: &[&str]) -> Result<(), EventsError> {
    for v in values {
        if v != "*" && !known.contains(&v.as_str()) {
            return Err(EventsError::Config(format!(
                "{at}.{key}: unknown {v:?}; use \"*\" or some of {}",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EventsSection, String> {
        let s: EventsSection = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate().map(|_| s).map_err(|e| e.to_string())
    }

    #[test]
    fn nothing_configured_means_the_two_default_files() {
        let s = parse("").unwrap();
        let sinks = s.effective_sinks();
        assert_eq!(sinks.len(), 2);
        assert_eq!(sinks[0].name, "email_log");
        assert!(sinks[0].audit_logs.is_empty());
        assert_eq!(sinks[1].path, Some(PathBuf::from("events/audit.jsonl")));
    }

    #[test]
    fn listed_sinks_replace_the_defaults_but_shorthand_keys_stay() {
        let s = parse(
            r#"
            [[sinks]]
            name = "out"
            kind = "stdout"
            audit_logs = ["authentication"]
            email_events = []
            "#,
        )
        .unwrap();
        assert_eq!(s.effective_sinks().len(), 1);
        let s = parse(
            r#"
            email_log = "e.jsonl"
            [[sinks]]
            name = "siem"
            kind = "http"
            url = "http://127.0.0.1:9/in"
            "#,
        )
        .unwrap();
        let names: Vec<_> = s.effective_sinks().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["email_log", "siem"]);
    }

    #[test]
    fn errors_name_the_sink_and_key() {
        let e =
            parse("[[sinks]]\nname = \"a\"\nkind = \"stdout\"\nurl = \"http://x/\"\n").unwrap_err();
        assert!(
            e.contains("\"a\"") && e.contains(".url: not a key of a stdout sink"),
            "{e}"
        );
        let e = parse("[[sinks]]\nname = \"a\"\nkind = \"file\"\n").unwrap_err();
        assert!(e.contains(".path"), "{e}");
        let e = parse("[[sinks]]\nname = \"a\"\nkind = \"stdout\"\nemail_events = [\"SENT\"]\n")
            .unwrap_err();
        assert!(e.contains("email_events") && e.contains("SENT"), "{e}");
        let e = parse("[[sinks]]\nname = \"a b\"\nkind = \"stdout\"\n").unwrap_err();
        assert!(e.contains(".name"), "{e}");
        let e =
            parse("[[sinks]]\nname = \"a\"\nkind = \"http\"\nurl = \"ftp://x/\"\n").unwrap_err();
        assert!(e.contains(".url"), "{e}");
        let e = parse("[[sinks]]\nname = \"a\"\nkind = \"stdout\"\ncolour = 1\n").unwrap_err();
        assert!(e.contains("colour"), "{e}");
        let e = parse("email_log = \"x\"\n[[sinks]]\nname = \"email_log\"\nkind = \"stdout\"\n")
            .unwrap_err();
        assert!(e.contains("two sinks"), "{e}");
        let e = parse(
            "email_log = \"x.jsonl\"\n[[sinks]]\nname = \"b\"\nkind = \"file\"\npath = \"x.jsonl\"\n",
        )
        .unwrap_err();
        assert!(e.contains("(\"b\").path") && e.contains("email_log"), "{e}");
    }
}
