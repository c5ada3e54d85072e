//! One IMAP connection: the read loop, the protocol state (not authenticated,
//! authenticated, selected), STARTTLS, the live re-check of the login before each
//! command, and the untagged updates owed to the client after each command.
//! The commands themselves live in `command/`.

use std::net::SocketAddr;
use std::sync::Arc;

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::{Command, CommandBody};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::ImapContext;
use super::command;
use super::compress::Conn;
use super::extended::{self, Extras};
use super::mailbox_view::{Updates, View};
use super::multiappend;
use super::reader::{Input, Reader};
use super::response::compact_set;
use super::searchres;
use crate::access::Protocol as AccessProtocol;
use crate::access::login::Session as Login;
use crate::access::mailbox::{Actor, Object, Origin};
use crate::events::audit::{AuditProtocol, MailboxAction, ObjectType};
use crate::net::listener::Session;
use crate::store::Folder;

/// What the loop does after a command.
pub enum Flow {
    Continue,
    StartTls,
    /// COMPRESS=DEFLATE: everything after the tagged OK is compressed.
    Compress,
    Close,
}

/// A command's tagged completion: `OK`, `NO` or `BAD` and its text.
pub struct Done {
    pub status: &'static str,
    pub text: String,
    pub flow: Flow,
}

impl Done {
    /// `OK text`.
    pub fn ok(text: impl Into<String>) -> Done {
        Done {
            status: "OK",
            text: text.into(),
            flow: Flow::Continue,
        }
    }
    /// `NO text` (the command failed; the connection carries on).
    pub fn no(text: impl Into<String>) -> Done {
        Done {
            status: "NO",
            text: text.into(),
            flow: Flow::Continue,
        }
    }
    /// `BAD text` (the command was not acceptable here or malformed).
    pub fn bad(text: impl Into<String>) -> Done {
        Done {
            status: "BAD",
            text: text.into(),
            flow: Flow::Continue,
        }
    }
}

/// The per-connection state the commands work on.
pub struct Imap {
    pub ctx: Arc<ImapContext>,
    pub peer: SocketAddr,
    pub draining: CancellationToken,
    pub tls: bool,
    /// The `imap` listener offers STARTTLS; `imaps` starts in TLS.
    pub starttls_offered: bool,
    /// Responses not yet written.
    pub out: Vec<u8>,
    pub login: Option<Login>,
    pub selected: Option<View>,
    pub condstore: bool,
    pub qresync: bool,
    pub utf8: bool,
    pub rev2: bool,
    /// From the client's ID command, for audit records.
    pub user_agent: Option<String>,
}

/// Runs a session to its end.
pub(super) async fn run(ctx: Arc<ImapContext>, session: Session) {
    let Session {
        stream,
        peer,
        listener,
        tls: acceptor,
        draining,
        limits,
        ..
    } = session;
    let mut imap = Imap {
        tls: stream.is_tls(),
        starttls_offered: listener == "imap",
        peer,
        draining,
        out: Vec::new(),
        login: None,
        selected: None,
        condstore: false,
        qresync: false,
        utf8: false,
        rev2: false,
        user_agent: None,
        ctx,
    };
    let mut stream = Conn::Raw(stream);
    let mut reader = Reader::new(imap.ctx.max_message_size);
    let greeting = format!(
        "* OK [CAPABILITY {}] {} IMAP4rev1 mailgate ready\r\n",
        imap.capabilities(),
        imap.ctx.hostname
    );
    imap.out.extend_from_slice(greeting.as_bytes());
    loop {
        if imap.flush(&mut stream).await.is_err() {
            return;
        }
        imap.release_output();
        // Before login a whole command must arrive within the login timeout (the
        // idle timeout restarts with every byte, so alone it lets a client hold a
        // connection open with one byte every few seconds).
        let deadline = match imap.login {
            Some(_) => {
                reader.logged_in();
                None
            }
            None => Some(tokio::time::Instant::now() + limits.login_timeout()),
        };
        let too_slow = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let input = tokio::select! {
            r = reader.next(&mut stream) => r,
            _ = too_slow => {
                imap.untagged("BYE Autologout; a command must arrive within the login timeout");
                break;
            }
            _ = imap.draining.cancelled() => {
                imap.untagged("BYE [UNAVAILABLE] Server shutting down");
                break;
            }
        };
        let flow = match input {
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                imap.untagged("BYE Autologout; idle for too long");
                break;
            }
            Err(_) | Ok(Input::Eof) => return,
            Ok(Input::Overflow) => {
                imap.untagged("BAD Command too long before login");
                imap.untagged("BYE Closing connection");
                break;
            }
            Ok(Input::TooBig { tag }) => {
                match tag {
                    Some(t) => imap.tagged(
                        &t,
                        "NO",
                        &format!(
                            "[TOOBIG] Command exceeds the limit of {} bytes",
                            imap.ctx.max_message_size
                        ),
                    ),
                    None => imap.untagged("BAD Command too long"),
                }
                Flow::Continue
            }
            // Boxed: a command's future (2 KiB) is held only while it runs, so an
            // idle connection's task stays small.
            Ok(Input::Message(bytes)) => {
                Box::pin(imap.dispatch(&bytes, &mut reader, &mut stream)).await
            }
        };
        match flow {
            Flow::Continue => {}
            Flow::Close => break,
            Flow::Compress => {
                if imap.flush(&mut stream).await.is_err() {
                    return;
                }
                stream = stream.compress();
                reader = Reader::new(imap.ctx.max_message_size);
            }
            Flow::StartTls => {
                if imap.flush(&mut stream).await.is_err() {
                    return;
                }
                let Conn::Raw(raw) = stream else {
                    return;
                };
                // Whatever the client pipelined in plaintext goes with the old reader
                // (CVE-2011-0411 class): nothing read before TLS is obeyed after it.
                // Boxed: the handshake's future is large and needed once.
                match Box::pin(raw.start_tls(&acceptor, limits.handshake_timeout())).await {
                    Ok(s) => stream = Conn::Raw(s),
                    Err(e) => {
                        tracing::debug!(peer = %imap.peer, error = %e, "IMAP STARTTLS handshake failed");
                        return;
                    }
                }
                reader = Reader::new(imap.ctx.max_message_size);
                imap.tls = true;
            }
        }
    }
    let _ = imap.flush(&mut stream).await;
    let _ = stream.shutdown().await;
}

/// The tag of a line that did not parse, if it has a usable one.
fn salvage_tag(bytes: &[u8]) -> Option<String> {
    let end = bytes
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')?;
    let tag = std::str::from_utf8(&bytes[..end]).ok()?;
    let ok = !tag.is_empty()
        && tag != "*"
        && tag != "+"
        && tag
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]+".contains(&b));
    ok.then(|| tag.to_string())
}

impl Imap {
    /// The CAPABILITY list for the current state.
    pub fn capabilities(&self) -> String {
        let mut caps = vec!["IMAP4rev1", "IMAP4rev2", "LITERAL+", "ID", "ENABLE"];
        if !self.tls {
            caps.extend(["STARTTLS", "LOGINDISABLED"]);
            return caps.join(" ");
        }
        if self.login.is_none() {
            caps.extend(["AUTH=PLAIN", "SASL-IR"]);
            return caps.join(" ");
        }
        caps.extend([
            "IDLE",
            "NAMESPACE",
            "UNSELECT",
            "UIDPLUS",
            "MOVE",
            "CHILDREN",
            "SPECIAL-USE",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "ESEARCH",
            "SEARCHRES",
            "MULTIAPPEND",
            "CONDSTORE",
            "QRESYNC",
            "BINARY",
            "UTF8=ACCEPT",
            "STATUS=SIZE",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "COMPRESS=DEFLATE",
        ]);
        let mut s = caps.join(" ");
        s.push_str(&format!(" APPENDLIMIT={}", self.ctx.max_message_size));
        s
    }

    /// Sends FLAGS and PERMANENTFLAGS again when `flags` hold a keyword the client
    /// has not been told of (RFC 9051 7.3.5), before the response that uses it.
    pub fn announce_keywords<'f>(&mut self, flags: impl IntoIterator<Item = &'f String>) {
        let Some(view) = self.selected.as_mut() else {
            return;
        };
        if view.learn_keywords(flags) {
            for line in view.flags_responses() {
                self.untagged(&line);
            }
        }
    }

    /// Turns CONDSTORE on for a CONDSTORE-enabling command (RFC 7162 3.1); the
    /// first one in a selected mailbox reports its HIGHESTMODSEQ, which the
    /// client has not been told yet.
    pub fn enable_condstore(&mut self) {
        if self.condstore {
            return;
        }
        self.condstore = true;
        if let Some(highest) = self.selected.as_ref().map(|v| v.highest_modseq()) {
            self.untagged(&format!("OK [HIGHESTMODSEQ {highest}] Highest"));
        }
    }

    /// Queues `* text`.
    pub fn untagged(&mut self, text: &str) {
        self.out.extend_from_slice(b"* ");
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn tagged(&mut self, tag: &str, status: &str, text: &str) {
        self.out
            .extend_from_slice(format!("{tag} {status} {text}\r\n").as_bytes());
    }

    /// Frees the output buffer once it is written; called where the session waits
    /// for its client, so a session in IDLE holds none (the next response costs
    /// one allocation).
    pub fn release_output(&mut self) {
        if self.out.is_empty() {
            self.out = Vec::new();
        }
    }

    /// Writes queued responses.
    pub async fn flush(&mut self, stream: &mut Conn) -> std::io::Result<()> {
        if !self.out.is_empty() {
            stream.write_all(&self.out).await?;
            self.out.clear();
        }
        stream.flush().await
    }

    /// Parses and runs one message, then sends the updates the client is owed.
    async fn dispatch(&mut self, bytes: &[u8], reader: &mut Reader, stream: &mut Conn) -> Flow {
        let (stripped, mut extras) = extended::strip(bytes);
        let substituted = self.substitute_saved(&stripped);
        extras.saved_set_empty = substituted.names_nothing;
        let mut input = substituted.bytes;
        if let Some(mut parts) = multiappend::split(&input) {
            extras.more_appends = parts.split_off(1);
            input = std::borrow::Cow::Owned(parts.swap_remove(0));
        }
        if let Some(balanced) = super::or_chain::balance(&input) {
            input = std::borrow::Cow::Owned(balanced);
        }
        let command = match CommandCodec::default().decode(&input) {
            Ok((&[], cmd)) => cmd,
            _ => {
                match salvage_tag(bytes) {
                    Some(tag) => self.tagged(
                        &tag,
                        "BAD",
                        "Invalid command or arguments (see RFC 9051 for the syntax)",
                    ),
                    None => self.untagged("BAD Invalid command: no valid tag"),
                }
                return Flow::Continue;
            }
        };
        if let Some(login) = &mut self.login
            && !self
                .ctx
                .auth
                .recheck(login, self.peer.ip(), AccessProtocol::Imap)
        {
            self.untagged("BYE Access revoked; closing connection");
            return Flow::Close;
        }
        if self.draining.is_cancelled() {
            self.untagged("BYE [UNAVAILABLE] Server shutting down");
            return Flow::Close;
        }
        if !self.shared_access_holds() {
            self.untagged("BYE [NOPERM] Access to the shared mailbox was revoked");
            return Flow::Close;
        }
        let tag = command.tag.inner().to_string();
        // Expunges may not be announced after FETCH, STORE or SEARCH by sequence
        // number (RFC 9051 7.5.1); everything else may carry them.
        let allow_expunge = !matches!(
            command.body,
            CommandBody::Fetch { uid: false, .. }
                | CommandBody::Store { uid: false, .. }
                | CommandBody::Search { uid: false, .. }
        );
        let force = matches!(
            command.body,
            CommandBody::Noop | CommandBody::Check | CommandBody::Idle
        );
        // IDLE runs inline (small, and it can last for hours); every other
        // command's future is boxed for the time it runs.
        let done = if matches!(command.body, CommandBody::Idle) {
            command::idle::idle(self, &tag, reader, stream).await
        } else {
            Box::pin(self.handle(command, extras, &tag, reader, stream)).await
        };
        if matches!(done.flow, Flow::Continue) {
            self.send_updates(allow_expunge, force).await;
        }
        self.tagged(&tag, done.status, &done.text);
        done.flow
    }

    async fn handle(
        &mut self,
        cmd: Command<'_>,
        extras: Extras,
        tag: &str,
        reader: &mut Reader,
        stream: &mut Conn,
    ) -> Done {
        use CommandBody::*;
        let authed = self.login.is_some();
        let selected = self.selected.is_some();
        match cmd.body {
            Capability => {
                let caps = format!("CAPABILITY {}", self.capabilities());
                self.untagged(&caps);
                Done::ok("CAPABILITY completed")
            }
            Noop => Done::ok("NOOP completed"),
            Logout => {
                self.untagged("BYE Logging out");
                Done {
                    status: "OK",
                    text: "LOGOUT completed".into(),
                    flow: Flow::Close,
                }
            }
            Id { parameters } => command::auth::id(self, parameters),
            StartTLS => command::auth::starttls(self),
            Login { username, password } => {
                command::auth::login(self, username.as_ref(), password.declassify().as_ref()).await
            }
            Authenticate {
                mechanism,
                initial_response,
            } => {
                command::auth::authenticate(
                    self,
                    &mechanism,
                    initial_response.as_ref().map(|r| r.declassify().as_ref()),
                    reader,
                    stream,
                )
                .await
            }
            _ if !authed => Done::bad("Log in first"),
            Enable { capabilities } => command::auth::enable(self, capabilities.as_ref()),
            Namespace => {
                self.untagged("NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) NIL");
                Done::ok("NAMESPACE completed")
            }
            Select {
                mailbox,
                parameters,
            } => command::select::select(self, &mailbox, &parameters, false).await,
            Examine {
                mailbox,
                parameters,
            } => command::select::select(self, &mailbox, &parameters, true).await,
            Create { mailbox } => command::folders::create(self, &mailbox).await,
            Delete { mailbox } => command::folders::delete(self, &mailbox).await,
            Rename { from, to } => command::folders::rename(self, &from, &to).await,
            Subscribe { mailbox } => command::folders::subscribe(self, &mailbox, true).await,
            Unsubscribe { mailbox } => command::folders::subscribe(self, &mailbox, false).await,
            List {
                reference,
                mailbox_wildcard,
            } => command::list::list(self, &reference, &mailbox_wildcard, &extras, false).await,
            Lsub {
                reference,
                mailbox_wildcard,
            } => command::list::list(self, &reference, &mailbox_wildcard, &extras, true).await,
            Status {
                mailbox,
                item_names,
            } => command::list::status(self, &mailbox, &item_names).await,
            Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                let first = (flags.as_slice(), date.as_ref(), &message);
                command::append::append(self, &mailbox, first, &extras.more_appends).await
            }
            Idle => unreachable!("IDLE runs in dispatch"),
            GetQuota { root } => command::quota::get_quota(self, root.as_ref()).await,
            GetQuotaRoot { mailbox } => command::quota::get_quota_root(self, &mailbox).await,
            SetQuota { .. } => Done::no("[NOPERM] Quotas are set by the administrator"),
            Compress { .. } if stream.is_compressed() => {
                Done::no("[COMPRESSIONACTIVE] Compression is already active")
            }
            Compress { .. } => Done {
                status: "OK",
                text: "DEFLATE active".into(),
                flow: Flow::Compress,
            },
            _ if !selected => Done::bad("No mailbox selected"),
            // `$` with an empty saved result names no message (RFC 5182 2.1).
            Fetch { .. } | Store { .. } | ExpungeUid { .. } if extras.saved_set_empty => {
                Done::ok("Completed; the saved search result is empty")
            }
            Copy { mailbox, .. } | Move { mailbox, .. } if extras.saved_set_empty => {
                match self.folder(&mailbox).await {
                    Ok(_) => Done::ok("Completed; the saved search result is empty"),
                    Err(_) => Done::no("[TRYCREATE] No such mailbox"),
                }
            }
            Check => Done::ok("CHECK completed"),
            Unselect => {
                self.deselect();
                Done::ok("UNSELECT completed")
            }
            Close => command::messages::close(self).await,
            Expunge => command::messages::expunge(self, None).await,
            ExpungeUid { sequence_set } => {
                command::messages::expunge(self, Some(&sequence_set)).await
            }
            Search {
                charset,
                criteria,
                uid,
            } => command::search::search(self, tag, charset.as_ref(), criteria, uid, &extras).await,
            Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                command::fetch::fetch(
                    self,
                    &sequence_set,
                    macro_or_item_names,
                    uid,
                    &modifiers,
                    stream,
                )
                .await
            }
            Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                command::messages::store(
                    self,
                    &sequence_set,
                    kind,
                    response,
                    &flags,
                    uid,
                    &modifiers,
                )
                .await
            }
            Copy {
                sequence_set,
                mailbox,
                uid,
            } => command::messages::copy(self, &sequence_set, &mailbox, uid, false).await,
            Move {
                sequence_set,
                mailbox,
                uid,
            } => command::messages::copy(self, &sequence_set, &mailbox, uid, true).await,
            _ => Done::bad("Command not supported"),
        }
    }

    /// The command with the SEARCHRES `$` replaced by the saved result's messages.
    fn substitute_saved<'a>(&self, msg: &'a [u8]) -> searchres::Substituted<'a> {
        let (saved, uids) = match &self.selected {
            Some(view) if msg.contains(&b'$') => {
                let uids = view.uids();
                (searchres::present(&view.saved, &uids), uids)
            }
            _ => (Vec::new(), Vec::new()),
        };
        searchres::substitute(msg, &saved, &uids)
    }

    /// Whether a selected shared folder is still covered by a FULL_ACCESS grant.
    fn shared_access_holds(&self) -> bool {
        match (&self.selected, &self.login) {
            (Some(view), Some(login)) if view.folder.mailbox_id != login.user_id => self
                .ctx
                .auth
                .mailboxes()
                .peek(actor(login), &view.folder.mailbox_id, MailboxAction::Read)
                .is_some(),
            _ => true,
        }
    }

    /// Leaves the selected state (`* OK [CLOSED]` for QRESYNC clients).
    pub fn deselect(&mut self) {
        if self.selected.take().is_some() && self.qresync {
            self.untagged("OK [CLOSED] Previous mailbox closed");
        }
    }

    /// Reads what changed in the selected folder and queues the untagged responses.
    pub async fn send_updates(&mut self, allow_expunge: bool, force: bool) {
        let store = self.ctx.store.clone();
        let Some(view) = &mut self.selected else {
            return;
        };
        if !force && !view.watch.has_changed().unwrap_or(false) {
            return;
        }
        match view.refresh(&store, allow_expunge).await {
            Ok(updates) => self.write_updates(updates),
            Err(e) => tracing::warn!(error = %e, "IMAP: reading folder updates failed"),
        }
    }

    /// Queues EXPUNGE (or VANISHED), EXISTS and FETCH responses for `updates`.
    pub fn write_updates(&mut self, updates: Updates) {
        if !updates.expunged.is_empty() {
            if self.qresync {
                let uids: Vec<u32> = updates.expunged.iter().map(|e| e.1).collect();
                let line = format!("VANISHED {}", compact_set(&uids));
                self.untagged(&line);
            } else {
                for (seq, _) in &updates.expunged {
                    let line = format!("{seq} EXPUNGE");
                    self.untagged(&line);
                }
            }
        }
        if let Some(n) = updates.exists {
            let line = format!("{n} EXISTS");
            self.untagged(&line);
        }
        if let Some(n) = updates.recent.filter(|_| !self.rev2) {
            let line = format!("{n} RECENT");
            self.untagged(&line);
        }
        for (seq, m) in updates.flags {
            self.announce_keywords(&m.flags);
            let modseq = if self.condstore {
                format!(" MODSEQ ({})", m.modseq)
            } else {
                String::new()
            };
            let flags = match &self.selected {
                Some(view) => self.flag_list(view, m.uid, &m.flags),
                None => m.flags.join(" "),
            };
            let line = format!("{seq} FETCH (UID {} FLAGS ({flags}){modseq})", m.uid);
            self.untagged(&line);
        }
    }

    /// A message's flags as this client is shown them: the stored ones, after
    /// `\Recent` when it is recent in this session and the client speaks rev1.
    pub fn flag_list(&self, view: &View, uid: u32, flags: &[String]) -> String {
        let recent = !self.rev2 && view.is_recent(uid);
        let mut out = String::from(if recent { "\\Recent" } else { "" });
        for f in flags {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(f);
        }
        out
    }

    /// A folder name as this client reads it: modified UTF-7 unless it enabled
    /// UTF8=ACCEPT (RFC 6855), as an IMAP string.
    pub fn wire_name(&self, name: &str) -> String {
        if self.utf8 {
            super::response::string(name)
        } else {
            super::response::string(&super::names::to_mutf7(name))
        }
    }

    /// A folder name the client sent, as the store spells it.
    pub fn parse_name(&self, m: &imap_codec::imap_types::mailbox::Mailbox<'_>) -> Option<String> {
        let name = super::names::from_mailbox(m)?;
        if self.utf8 {
            Some(name)
        } else {
            super::names::from_mutf7(&name)
        }
    }

    /// The store's mailbox id of the logged-in user.
    pub fn mailbox_id(&self) -> &str {
        self.login
            .as_ref()
            .map(|l| l.user_id.as_str())
            .unwrap_or("")
    }

    /// The user's mail folders (non-mail folders are EWS-only).
    pub async fn folders(&self) -> Result<Vec<Folder>, Done> {
        match self.ctx.store.folders(self.mailbox_id()).await {
            Ok(f) => Ok(f.into_iter().filter(super::names::is_mail).collect()),
            Err(e) => Err(store_failure(e)),
        }
    }

    /// The user's folders and those of mailboxes shared with them (FULL_ACCESS),
    /// the latter under `Other Users/<address>/`.
    pub async fn all_folders(&self) -> Result<Vec<Folder>, Done> {
        let mut all = self.folders().await?;
        if let Some(login) = &self.login {
            let rights = self.ctx.auth.mailboxes();
            for owner in
                super::shared::owners(rights, &self.ctx.directory, &login.org_id, &login.user_id)
            {
                match super::shared::folders(self.ctx.store.as_ref(), &owner).await {
                    Ok(f) => all.extend(f),
                    Err(e) => return Err(store_failure(e)),
                }
            }
        }
        Ok(all)
    }

    /// The folder a command names, or the `NO [NONEXISTENT]` answer. Names under
    /// `Other Users/` open another mailbox if the user holds FULL_ACCESS to it.
    pub async fn folder(
        &self,
        mailbox: &imap_codec::imap_types::mailbox::Mailbox<'_>,
    ) -> Result<Folder, Done> {
        let Some(name) = self.parse_name(mailbox) else {
            return Err(Done::no("[NONEXISTENT] Mailbox name is not valid"));
        };
        let candidates = match &self.login {
            Some(login) if name.starts_with(super::names::OTHER_USERS) => {
                match super::shared::owner_of(
                    self.ctx.auth.mailboxes(),
                    &self.ctx.directory,
                    actor(login),
                    &name,
                    self.origin(),
                ) {
                    Some(owner) => super::shared::folders(self.ctx.store.as_ref(), &owner)
                        .await
                        .map_err(store_failure)?,
                    None => Vec::new(),
                }
            }
            _ => self.folders().await?,
        };
        candidates
            .into_iter()
            .find(|f| f.name == name)
            .ok_or_else(|| Done::no("[NONEXISTENT] No such mailbox"))
    }

    /// Emits a MailboxAccess audit record for an action by the logged-in user.
    pub fn audit(
        &self,
        action: MailboxAction,
        object_type: ObjectType,
        folder: &Folder,
        item_id: Option<String>,
    ) {
        let Some(login) = &self.login else {
            return;
        };
        let object = Object {
            kind: Some(object_type),
            folder_path: Some(&folder.name),
            folder_id: Some(&folder.item_id),
            item_id: item_id.as_deref(),
        };
        self.ctx.auth.mailboxes().audit(
            actor(login),
            &folder.mailbox_id,
            action,
            object,
            self.origin(),
            true,
        );
    }

    /// Where this session's requests come from, for audit records.
    fn origin(&self) -> Origin<'_> {
        Origin {
            protocol: AuditProtocol::Imap,
            source_ip: self.peer.ip(),
            user_agent: self.user_agent.as_deref(),
        }
    }
}

/// The logged-in user as an actor on mailboxes.
fn actor(login: &Login) -> Actor<'_> {
    Actor::User {
        org_id: &login.org_id,
        user_id: &login.user_id,
    }
}

/// A store failure as the client sees it; the detail goes to the log.
pub fn store_failure(e: crate::store::StoreError) -> Done {
    tracing::warn!(error = %e, "IMAP: store error");
    match e {
        crate::store::StoreError::Unavailable(_) => {
            Done::no("[UNAVAILABLE] Mail store temporarily unavailable; try again later")
        }
        _ => Done::no("[SERVERBUG] Internal error; try again"),
    }
}

#[cfg(test)]
mod tests {
    use crate::store::StoreError;

    #[test]
    fn an_unavailable_store_says_try_later_and_other_failures_do_not() {
        let text = |d: Done| format!("{} {}", d.status, d.text);
        let down = text(store_failure(StoreError::Unavailable("down".into())));
        assert!(down.starts_with("NO [UNAVAILABLE]"), "{down}");
        let bug = text(store_failure(StoreError::Io("disk".into())));
        assert!(
            bug.starts_with("NO [SERVERBUG]") && !bug.contains("disk"),
            "{bug}"
        );
    }

    use super::*;

    #[test]
    fn tags_of_broken_lines() {
        assert_eq!(salvage_tag(b"a1 FOO\r\n").as_deref(), Some("a1"));
        assert_eq!(salvage_tag(b"* FOO\r\n"), None);
        assert_eq!(salvage_tag(b"\r\n"), None);
        assert_eq!(salvage_tag(b"a{ x\r\n"), None);
    }
}
