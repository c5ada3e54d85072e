//! Cross-daemon wake-ups over LISTEN/NOTIFY: a watcher on one daemon wakes when
//! another daemon writes to its mailbox, and state changes (directory, access
//! rules, tags) reach every daemon.
//!
//! Owns the two channels (`mailgate_mail`, `mailgate_state`), their payloads, the
//! sender task and the listener task of one daemon ([`start`]), and their counters
//! ([`NotifyStats`]).
//!
//! - **Sending**: after a mail write commits, its mailbox ids go to the sender task
//!   ([`Hub::mail_written`]); it gathers ids for [`COALESCE`], then sends one
//!   statement of `pg_notify` calls on a pooled connection, OUTSIDE the write's
//!   transaction: a NOTIFY inside a transaction takes a global lock at commit and
//!   so serializes every commit of every daemon.
//! - **Listening**: one dedicated connection (not from the pool, named
//!   `application_name = mailgate listener <daemon>`) LISTENs on both channels. A
//!   mail notification from another daemon makes it re-read the named mailboxes'
//!   latest change and wake their watchers (never backwards); a state notification
//!   is broadcast to [`Hub::subscribe`]rs. Its own notifications are skipped (the
//!   write already woke local watchers), but their lag is counted.
//! - **Gaps**: on every (re)connect the listener re-LISTENs, re-reads every
//!   watched mailbox and (on a reconnect) broadcasts [`StateChange::Missed`]; a
//!   safety poll re-reads every watched mailbox each `poll` interval, which covers
//!   a daemon that died between its commit and its NOTIFY.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dashmap::DashMap;
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use super::tls::Connector;
use crate::store::StateChange;

/// The channel of mail writes: payloads name mailboxes.
pub const MAIL_CHANNEL: &str = "mailgate_mail";
/// The channel of state changes: payloads name what changed.
pub const STATE_CHANNEL: &str = "mailgate_state";
/// How long the sender gathers ids before one NOTIFY statement.
pub const COALESCE: Duration = Duration::from_millis(5);
/// The safety poll's default interval.
pub const SAFETY_POLL: Duration = Duration::from_secs(5);
/// PostgreSQL refuses payloads of 8000 bytes and more; chunks stay below this.
const MAX_PAYLOAD: usize = 7000;
/// The longest pause between two connection attempts of the listener.
const MAX_RECONNECT_PAUSE: Duration = Duration::from_secs(5);

/// Watchers of this daemon, by mailbox: the latest change sequence number.
pub type Watchers = Arc<DashMap<String, watch::Sender<i64>>>;

/// Moves the watcher of `mailbox` to `seq` if that is newer; never backwards
/// (two commits, or a commit and a re-read, may report in either order).
pub fn advance(watchers: &Watchers, mailbox: &str, seq: i64) {
    if let Some(w) = watchers.get(mailbox) {
        w.send_if_modified(|v| {
            let newer = seq > *v;
            if newer {
                *v = seq;
            }
            newer
        });
    }
}

/// What a notification carries: the sending daemon, its send time, and the
/// mailboxes written (mail channel) or the state that changed (state channel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// The sending daemon's id ([`Hub::daemon`]).
    pub d: String,
    /// The sender's clock at send, epoch milliseconds: the lag is now minus this.
    pub t: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub m: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<String>,
}

/// The payloads naming `mailboxes`, each below PostgreSQL's limit. A mailbox id
/// too long for any payload is left out (the safety poll covers it). Pure.
pub fn mail_payloads(daemon: &str, now_ms: i64, mailboxes: &[String]) -> Vec<String> {
    let empty = |m| Payload {
        d: daemon.to_string(),
        t: now_ms,
        m,
        s: None,
    };
    let overhead = serde_json::to_string(&empty(vec![String::new()])).map_or(64, |s| s.len());
    let mut out = Vec::new();
    let mut chunk: Vec<String> = Vec::new();
    let mut size = overhead;
    for mailbox in mailboxes {
        let len = serde_json::to_string(mailbox).map_or(usize::MAX, |s| s.len() + 1);
        if overhead.saturating_add(len) > MAX_PAYLOAD {
            tracing::warn!(mailbox, "mailbox id too long for a NOTIFY payload");
            continue;
        }
        if size + len > MAX_PAYLOAD && !chunk.is_empty() {
            out.extend(serde_json::to_string(&empty(std::mem::take(&mut chunk))));
            size = overhead;
        }
        chunk.push(mailbox.clone());
        size += len;
    }
    if !chunk.is_empty() {
        out.extend(serde_json::to_string(&empty(chunk)));
    }
    out
}

/// The state channel's word for each change, and back. Pure.
fn state_word(change: StateChange) -> &'static str {
    match change {
        StateChange::Directory => "directory",
        StateChange::Access => "access",
        StateChange::Tags => "tags",
        StateChange::Secrets => "secrets",
        StateChange::Missed => "missed",
    }
}

fn state_of(word: &str) -> Option<StateChange> {
    [
        StateChange::Directory,
        StateChange::Access,
        StateChange::Tags,
        StateChange::Secrets,
        StateChange::Missed,
    ]
    .into_iter()
    .find(|c| state_word(*c) == word)
}

/// Counters of the notify machinery, for /metrics.
#[derive(Debug, Default)]
pub struct NotifyStats {
    /// NOTIFY statements sent (one per coalesced batch).
    pub sent: AtomicU64,
    /// Batches that could not be sent (the safety poll covers them).
    pub send_failures: AtomicU64,
    /// Notifications received (own ones included: their lag counts too).
    pub received: AtomicU64,
    /// Sum of the lags of received notifications, milliseconds.
    pub lag_sum_ms: AtomicU64,
    /// The lag of the latest received notification, milliseconds.
    pub last_lag_ms: AtomicU64,
    /// The largest lag seen, milliseconds.
    pub max_lag_ms: AtomicU64,
    /// Listener connections lost or failed (each followed by a reconnect).
    pub reconnects: AtomicU64,
}

impl NotifyStats {
    fn lag(&self, sent_ms: i64, now_ms: i64) {
        // Clocks of two hosts may disagree: a negative lag counts as none.
        let lag = u64::try_from(now_ms - sent_ms).unwrap_or(0);
        self.received.fetch_add(1, Ordering::Relaxed);
        self.lag_sum_ms.fetch_add(lag, Ordering::Relaxed);
        self.last_lag_ms.store(lag, Ordering::Relaxed);
        self.max_lag_ms.fetch_max(lag, Ordering::Relaxed);
    }
}

/// What the sender task is told.
enum Outgoing {
    Mail(String),
    State(StateChange),
}

/// The notify side of one daemon's store, shared by the store and its tasks.
pub struct Hub {
    /// This daemon's id in payloads: a fresh UUID per store.
    pub daemon: String,
    pub stats: NotifyStats,
    /// State changes from other daemons (and `Missed`), to whoever subscribed.
    state: broadcast::Sender<StateChange>,
    /// The sender task's inbox, once [`start`]ed.
    outgoing: OnceLock<mpsc::UnboundedSender<Outgoing>>,
    /// Ends both tasks (the store's drop).
    pub stop: CancellationToken,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            daemon: uuid::Uuid::new_v4().simple().to_string(),
            stats: NotifyStats::default(),
            state: broadcast::channel(64).0,
            outgoing: OnceLock::new(),
            stop: CancellationToken::new(),
        }
    }
}

impl Hub {
    /// After a commit: other daemons should wake watchers of `mailbox`. A no-op
    /// until [`start`].
    pub fn mail_written(&self, mailbox: &str) {
        if let Some(tx) = self.outgoing.get() {
            let _ = tx.send(Outgoing::Mail(mailbox.to_string()));
        }
    }

    /// After a commit of directory, access-rule or tag data: other daemons
    /// should reload it. A no-op until [`start`].
    pub fn state_changed(&self, change: StateChange) {
        if let Some(tx) = self.outgoing.get() {
            let _ = tx.send(Outgoing::State(change));
        }
    }

    /// State changes made by other daemons. A lagging receiver (more than 64
    /// behind) gets `Lagged` and should reload everything, as on `Missed`.
    pub fn subscribe(&self) -> broadcast::Receiver<StateChange> {
        self.state.subscribe()
    }
}

/// Starts the sender and the listener of this daemon (once; a second call does
/// nothing). `poll` is the safety poll's interval.
pub fn start(hub: &Arc<Hub>, pool: Pool, connector: Connector, watchers: Watchers, poll: Duration) {
    let (tx, rx) = mpsc::unbounded_channel();
    if hub.outgoing.set(tx).is_err() {
        return;
    }
    tokio::spawn(send_loop(hub.clone(), pool, rx));
    tokio::spawn(listen_loop(hub.clone(), connector, watchers, poll));
}

/// Gathers written mailboxes and state changes for [`COALESCE`], sends them as
/// one statement, and so on until the store is dropped (then sends what is
/// left and ends: the hub it holds keeps its own inbox open).
async fn send_loop(hub: Arc<Hub>, pool: Pool, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
    loop {
        let first = tokio::select! {
            biased;
            item = rx.recv() => item,
            _ = hub.stop.cancelled() => rx.try_recv().ok(),
        };
        let Some(first) = first else { return };
        tokio::time::sleep(COALESCE).await;
        let mut mail = BTreeSet::new();
        let mut states = BTreeSet::new();
        let mut next = Some(first);
        while let Some(item) = next {
            match item {
                Outgoing::Mail(m) => {
                    mail.insert(m);
                }
                Outgoing::State(s) => {
                    states.insert(state_word(s));
                }
            }
            next = rx.try_recv().ok();
        }
        let now = crate::clock::now_ms();
        let mail: Vec<String> = mail.into_iter().collect();
        let mut channels = Vec::new();
        let mut payloads = Vec::new();
        for p in mail_payloads(&hub.daemon, now, &mail) {
            channels.push(MAIL_CHANNEL);
            payloads.push(p);
        }
        for s in states {
            let p = Payload {
                d: hub.daemon.clone(),
                t: now,
                m: vec![],
                s: Some(s.to_string()),
            };
            channels.push(STATE_CHANNEL);
            payloads.extend(serde_json::to_string(&p));
        }
        match send(&pool, &channels, &payloads).await {
            Ok(()) => hub.stats.sent.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                tracing::warn!(error = %e, "postgres NOTIFY not sent; other daemons catch up by their safety poll");
                hub.stats.send_failures.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

async fn send(pool: &Pool, channels: &[&str], payloads: &[String]) -> Result<(), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client
        .execute(
            "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS x(c, p)",
            &[&channels, &payloads],
        )
        .await
        .map_err(|e| super::pg_error(e).to_string())?;
    Ok(())
}

/// Why a listener session ended.
enum Ended {
    Stopped,
    Lost(String),
}

/// Keeps one listener session up, reconnecting with a growing pause, until
/// the store is dropped.
async fn listen_loop(hub: Arc<Hub>, connector: Connector, watchers: Watchers, poll: Duration) {
    let mut connector = connector;
    connector
        .config
        .application_name(format!("mailgate listener {}", hub.daemon));
    let mut failures = 0u32;
    let mut first = true;
    loop {
        let ended = session(&hub, &connector, &watchers, poll, first, &mut failures).await;
        let why = match ended {
            Ended::Stopped => return,
            Ended::Lost(why) => why,
        };
        first = false;
        hub.stats.reconnects.fetch_add(1, Ordering::Relaxed);
        failures += 1;
        let pause = reconnect_pause(failures);
        tracing::warn!(error = %why, pause_ms = pause.as_millis() as u64, "postgres listener lost; reconnecting");
        tokio::select! {
            _ = hub.stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// The pause before reconnect attempt `failures` (1-based): 100 ms doubling to
/// [`MAX_RECONNECT_PAUSE`]. Pure.
fn reconnect_pause(failures: u32) -> Duration {
    let ms = 100u64 << failures.saturating_sub(1).min(6);
    Duration::from_millis(ms).min(MAX_RECONNECT_PAUSE)
}

/// One listener connection: LISTEN, re-read, then handle notifications and
/// the safety poll until the connection is lost or the store dropped.
async fn session(
    hub: &Hub,
    connector: &Connector,
    watchers: &Watchers,
    poll: Duration,
    first: bool,
    failures: &mut u32,
) -> Ended {
    let (client, mut connection) = match connector.config.connect(connector.tls.clone()).await {
        Ok(c) => c,
        Err(e) => return Ended::Lost(super::pg_error(e).to_string()),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Drives the connection and forwards its notifications; ends with it.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(n).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    let _abort = AbortOnDrop(driver);
    let listen = format!("LISTEN {MAIL_CHANNEL}; LISTEN {STATE_CHANNEL}");
    if let Err(e) = client.batch_execute(&listen).await {
        return Ended::Lost(super::pg_error(e).to_string());
    }
    if let Err(e) = resync(&client, watchers).await {
        return Ended::Lost(e);
    }
    *failures = 0;
    if !first {
        let _ = hub.state.send(StateChange::Missed);
    }
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + poll, poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = hub.stop.cancelled() => return Ended::Stopped,
            n = rx.recv() => {
                let Some(n) = n else {
                    return Ended::Lost("connection closed".into());
                };
                let mut batch = vec![n];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                let mailboxes = handle(hub, watchers, &batch);
                if let Err(e) = reread(&client, watchers, &mailboxes).await {
                    return Ended::Lost(e);
                }
            }
            _ = tick.tick() => {
                if let Err(e) = resync(&client, watchers).await {
                    return Ended::Lost(e);
                }
            }
        }
    }
}

/// Aborts a task when dropped: the connection driver dies with its session.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Counts the lag of each notification, broadcasts other daemons' state
/// changes, and returns the watched mailboxes other daemons wrote to.
fn handle(hub: &Hub, watchers: &Watchers, batch: &[tokio_postgres::Notification]) -> Vec<String> {
    let now = crate::clock::now_ms();
    let mut mailboxes = HashSet::new();
    for n in batch {
        let Ok(p) = serde_json::from_str::<Payload>(n.payload()) else {
            tracing::debug!(payload = n.payload(), "unreadable notification ignored");
            continue;
        };
        hub.stats.lag(p.t, now);
        if p.d == hub.daemon {
            continue;
        }
        if n.channel() == STATE_CHANNEL {
            if let Some(change) = p.s.as_deref().and_then(state_of) {
                let _ = hub.state.send(change);
            }
        } else {
            mailboxes.extend(p.m.into_iter().filter(|m| watchers.contains_key(m)));
        }
    }
    mailboxes.into_iter().collect()
}

/// Re-reads every watched mailbox; forgets mailboxes nobody watches any more.
async fn resync(client: &tokio_postgres::Client, watchers: &Watchers) -> Result<(), String> {
    watchers.retain(|_, w| w.receiver_count() > 0);
    let all: Vec<String> = watchers.iter().map(|e| e.key().clone()).collect();
    reread(client, watchers, &all).await
}

/// Reads the latest change of `mailboxes` in one statement and wakes their
/// watchers.
async fn reread(
    client: &tokio_postgres::Client,
    watchers: &Watchers,
    mailboxes: &[String],
) -> Result<(), String> {
    if mailboxes.is_empty() {
        return Ok(());
    }
    let rows = client
        .query(
            "SELECT id, change_seq FROM mailboxes WHERE id = ANY($1)",
            &[&mailboxes],
        )
        .await
        .map_err(|e| super::pg_error(e).to_string())?;
    for row in rows {
        let (id, seq): (String, i64) = (row.get(0), row.get(1));
        advance(watchers, &id, seq);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_sender_time_and_every_mailbox_below_the_limit() {
        let mailboxes: Vec<String> = (0..2000).map(|i| format!("mailbox-{i:05}")).collect();
        let payloads = mail_payloads("d1", 42, &mailboxes);
        assert!(payloads.len() > 1, "split: {}", payloads.len());
        let mut seen = Vec::new();
        for p in &payloads {
            assert!(p.len() < MAX_PAYLOAD, "{}", p.len());
            let p: Payload = serde_json::from_str(p).unwrap();
            assert_eq!((p.d.as_str(), p.t, p.s), ("d1", 42, None));
            seen.extend(p.m);
        }
        assert_eq!(seen, mailboxes);
    }

    #[test]
    fn an_id_too_long_for_any_payload_is_left_out_not_sent_broken() {
        let mailboxes = vec!["a".to_string(), "x".repeat(MAX_PAYLOAD), "b\"q".to_string()];
        let payloads = mail_payloads("d", 1, &mailboxes);
        assert_eq!(payloads.len(), 1);
        let p: Payload = serde_json::from_str(&payloads[0]).unwrap();
        assert_eq!(p.m, vec!["a".to_string(), "b\"q".to_string()]);
        assert!(mail_payloads("d", 1, &[]).is_empty());
    }

    #[test]
    fn state_words_round_trip_and_unknown_ones_are_none() {
        for c in [
            StateChange::Directory,
            StateChange::Access,
            StateChange::Tags,
            StateChange::Secrets,
            StateChange::Missed,
        ] {
            assert_eq!(state_of(state_word(c)), Some(c));
        }
        assert_eq!(state_of("calendar"), None);
    }

    #[test]
    fn lag_keeps_last_max_and_sum_and_clamps_skew() {
        let s = NotifyStats::default();
        s.lag(1000, 1030);
        s.lag(1000, 1010);
        s.lag(2000, 1000);
        let read = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(read(&s.received), 3);
        assert_eq!(read(&s.last_lag_ms), 0);
        assert_eq!(read(&s.max_lag_ms), 30);
        assert_eq!(read(&s.lag_sum_ms), 40);
    }

    #[test]
    fn reconnect_pause_grows_and_is_capped() {
        assert_eq!(reconnect_pause(1), Duration::from_millis(100));
        assert_eq!(reconnect_pause(2), Duration::from_millis(200));
        assert_eq!(reconnect_pause(50), MAX_RECONNECT_PAUSE);
    }

    #[test]
    fn watchers_never_move_backwards() {
        let watchers: Watchers = Arc::new(DashMap::new());
        let rx = watchers
            .entry("u".into())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        advance(&watchers, "u", 5);
        advance(&watchers, "u", 3);
        advance(&watchers, "nobody", 9);
        assert_eq!(*rx.borrow(), 5);
    }
}
