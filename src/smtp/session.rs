//! One SMTP session: the RFC 5321 state machine with PIPELINING, STARTTLS, AUTH,
//! SIZE, 8BITMIME, SMTPUTF8, DSN and CHUNKING.
//!
//! Replies are collected and written when the client has nothing more queued, so a
//! pipelined batch gets its replies in one write (RFC 2920).

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use smtp_proto::{Error as ParseError, MailFrom, RcptTo, Request};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

use super::body::Body;
use super::delivery::{self, AcceptedRcpt, Destination, Submitter};
use super::message::{header_facts, received_header, submission_headers};
use super::reader::{self, BodyFlaws, DataEnd, Line, MAX_COMMAND_LINE};
use super::sender_auth::{self, DmarcPolicy, Verdicts};
use super::{Flavor, SmtpContext};
use crate::access::Protocol as AccessProtocol;
use crate::access::login::{Attempt, LoginResult, Session as Login};
use crate::access::mailbox::{Actor, Origin, SendAuthority};
use crate::events::audit::AuditProtocol;
use crate::net::listener::{Session, Stream};
use crate::store::ExpectedWrite;

type Io = BufReader<Stream>;

/// A mail transaction in progress.
struct Transaction {
    from: String,
    body_8bit: bool,
    smtputf8: bool,
    rcpts: Vec<AcceptedRcpt>,
    on_behalf_of: Option<String>,
    /// RFC 3461 ENVID, echoed in a DSN.
    envelope_id: Option<String>,
    /// BDAT chunks so far.
    chunks: Option<(Body, BodyFlaws)>,
    /// The delivery this message will be, announced to the store's group commit
    /// from the start of its data until it is submitted (or the transaction ends).
    coming: Option<ExpectedWrite>,
}

enum Flow {
    Continue,
    StartTls,
    Close,
}

struct Smtp {
    flavor: Flavor,
    ctx: Arc<SmtpContext>,
    peer: SocketAddr,
    draining: CancellationToken,
    tls: bool,
    out: Vec<u8>,
    helo: Option<String>,
    login: Option<Login>,
    tx: Option<Transaction>,
    errors: u32,
}

/// Runs a session to its end.
pub(super) async fn run(flavor: Flavor, ctx: Arc<SmtpContext>, session: Session) {
    let Session {
        stream,
        peer,
        tls: acceptor,
        draining,
        limits,
        ..
    } = session;
    let mut smtp = Smtp {
        flavor,
        tls: stream.is_tls(),
        ctx,
        peer,
        draining,
        out: Vec::with_capacity(512),
        helo: None,
        login: None,
        tx: None,
        errors: 0,
    };
    let mut io = BufReader::with_capacity(16 * 1024, stream);
    let greeting = format!("{} ESMTP mailgate", smtp.ctx.hostname);
    smtp.reply(220, "", &greeting);
    loop {
        match smtp.next(&mut io).await {
            Flow::Continue => {}
            Flow::Close => break,
            Flow::StartTls => {
                if smtp.flush(&mut io).await.is_err() {
                    return;
                }
                // Anything the client pipelined after STARTTLS is dropped with the
                // buffer: it must not be read as if it came over TLS (CVE-2011-0411).
                match io
                    .into_inner()
                    .start_tls(&acceptor, limits.handshake_timeout())
                    .await
                {
                    Ok(stream) => io = BufReader::with_capacity(16 * 1024, stream),
                    Err(e) => {
                        tracing::debug!(peer = %smtp.peer, error = %e, "STARTTLS handshake failed");
                        return;
                    }
                }
                smtp.tls = true;
                smtp.helo = None;
                smtp.tx = None;
            }
        }
    }
    let _ = smtp.flush(&mut io).await;
    // TLS ends with close_notify; plain TCP with the FIN that closing the socket
    // sends, so a separate shutdown would only cost a syscall per connection.
    if smtp.tls {
        let _ = io.get_mut().shutdown().await;
    }
}

impl Smtp {
    fn reply(&mut self, code: u16, status: &str, text: &str) {
        let sep = if status.is_empty() { "" } else { " " };
        self.out
            .extend_from_slice(format!("{code} {status}{sep}{text}\r\n").as_bytes());
    }

    /// True when every recipient organization enforces DMARC and the message
    /// failed it under a reject policy; the DMARC_POLICY_APPLIED events are sent.
    /// (When only some enforce, those file it in Junk instead: see `delivery`.)
    fn dmarc_rejects(
        &self,
        rcpts: &[AcceptedRcpt],
        verdicts: Option<&Verdicts>,
        facts: &super::message::HeaderFacts,
    ) -> bool {
        if verdicts.and_then(|v| v.dmarc_policy) != Some(DmarcPolicy::Reject) {
            return false;
        }
        let by_org = delivery::recipients_by_org(rcpts);
        let rejects = !by_org.is_empty()
            && by_org.keys().all(|org| {
                delivery::dmarc_applied(&self.ctx, verdicts, org) == Some(DmarcPolicy::Reject)
            });
        if rejects {
            let trace = crate::events::new_id();
            for (org, recipients) in by_org {
                self.ctx.events.email_in(
                    org,
                    &trace,
                    crate::events::EmailEvent::DmarcPolicyApplied {
                        from: facts.from.clone(),
                        recipients,
                        policy: DmarcPolicy::Reject.as_str().into(),
                    },
                );
            }
        }
        rejects
    }

    /// A refusal that counts towards the error limit.
    fn error(&mut self, code: u16, status: &str, text: &str) {
        self.errors += 1;
        self.reply(code, status, text);
    }

    async fn flush(&mut self, io: &mut Io) -> std::io::Result<()> {
        if !self.out.is_empty() {
            io.get_mut().write_all(&self.out).await?;
            self.out.clear();
        }
        io.get_mut().flush().await
    }

    /// Reads and answers one command.
    async fn next(&mut self, io: &mut Io) -> Flow {
        if self.errors >= self.ctx.limits.max_errors {
            self.reply(421, "4.7.0", "Too many errors, closing connection");
            return Flow::Close;
        }
        if self.draining.is_cancelled() {
            self.reply(421, "4.3.2", "Service shutting down, try again later");
            return Flow::Close;
        }
        if io.buffer().is_empty() && self.flush(io).await.is_err() {
            return Flow::Close;
        }
        let mut line = Vec::new();
        let read = tokio::select! {
            r = tokio::time::timeout(self.ctx.limits.command_timeout, reader::read_line(io, MAX_COMMAND_LINE, &mut line)) => r,
            _ = self.draining.cancelled() => {
                self.reply(421, "4.3.2", "Service shutting down, try again later");
                return Flow::Close;
            }
        };
        match read {
            Err(_) => {
                self.reply(
                    421,
                    "4.4.2",
                    "Timeout waiting for a command, closing connection",
                );
                return Flow::Close;
            }
            Ok(Err(_)) | Ok(Ok(Line::Eof)) => return Flow::Close,
            Ok(Ok(Line::TooLong)) => {
                self.error(500, "5.5.2", "Line too long");
                return Flow::Continue;
            }
            Ok(Ok(Line::Complete)) => {}
        }
        let request = match Request::parse(&mut line.iter()) {
            Ok(r) => r.into_owned(),
            Err(e) => {
                self.parse_error(e);
                return Flow::Continue;
            }
        };
        if let Some(login) = &mut self.login
            && !self
                .ctx
                .auth
                .recheck(login, self.peer.ip(), AccessProtocol::Smtp)
        {
            self.reply(421, "4.7.0", "Access revoked, closing connection");
            return Flow::Close;
        }
        self.handle(request, io).await
    }

    fn parse_error(&mut self, e: ParseError) {
        match e {
            ParseError::UnknownCommand => self.error(500, "5.5.1", "Command unrecognized"),
            ParseError::InvalidSenderAddress => {
                self.error(501, "5.1.7", "Bad sender address syntax")
            }
            ParseError::InvalidRecipientAddress => {
                self.error(501, "5.1.3", "Bad recipient address syntax")
            }
            ParseError::SyntaxError { syntax } => {
                self.error(501, "5.5.4", &format!("Syntax: {syntax}"))
            }
            ParseError::InvalidParameter { param } => {
                self.error(501, "5.5.4", &format!("Invalid parameter {param}"))
            }
            ParseError::UnsupportedParameter { param } => {
                let param: String = param
                    .chars()
                    .filter(|c| c.is_ascii_graphic())
                    .take(64)
                    .collect();
                self.error(555, "5.5.4", &format!("Unsupported parameter {param}"))
            }
            _ => self.error(500, "5.5.2", "Syntax error"),
        }
    }

    async fn handle(&mut self, request: Request<String>, io: &mut Io) -> Flow {
        match request {
            Request::Ehlo { host } => self.ehlo(host),
            Request::Helo { host } => {
                self.helo = Some(host);
                self.tx = None;
                let host = self.ctx.hostname.clone();
                self.reply(250, "", &host);
            }
            Request::StartTls => {
                if self.tls {
                    self.error(503, "5.5.1", "TLS already active");
                } else {
                    self.reply(220, "2.0.0", "Ready to start TLS");
                    return Flow::StartTls;
                }
            }
            Request::Auth {
                mechanism,
                initial_response,
            } => return self.auth(mechanism, initial_response, io).await,
            Request::Mail { from } => self.mail(from),
            Request::Rcpt { to } => self.rcpt(to).await,
            Request::Data => return self.data(io).await,
            Request::Bdat {
                chunk_size,
                is_last,
            } => return self.bdat(chunk_size, is_last, io).await,
            Request::Rset => {
                self.tx = None;
                self.reply(250, "2.0.0", "OK");
            }
            Request::Noop { .. } => self.reply(250, "2.0.0", "OK"),
            Request::Quit => {
                self.reply(221, "2.0.0", "Bye");
                return Flow::Close;
            }
            Request::Vrfy { .. } => {
                self.reply(252, "2.5.2", "Cannot VRFY user, but will accept message")
            }
            Request::Help { .. } => self.reply(214, "2.0.0", "See RFC 5321"),
            _ => self.error(502, "5.5.1", "Command not implemented"),
        }
        Flow::Continue
    }

    fn auth_offered(&self) -> bool {
        self.flavor.is_submission() && self.tls && self.login.is_none()
    }

    fn ehlo(&mut self, host: String) {
        self.helo = Some(host.clone());
        self.tx = None;
        let mut lines = vec![
            format!(
                "{} Hello {}",
                self.ctx.hostname,
                host.chars()
                    .filter(|c| c.is_ascii_graphic())
                    .take(255)
                    .collect::<String>()
            ),
            "PIPELINING".to_string(),
            format!("SIZE {}", self.ctx.limits.max_message_size),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
            "CHUNKING".into(),
            "DSN".into(),
        ];
        if !self.tls {
            lines.push("STARTTLS".into());
        }
        if self.auth_offered() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        let last = lines.len() - 1;
        for (i, l) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.out
                .extend_from_slice(format!("250{sep}{l}\r\n").as_bytes());
        }
    }

    /// Reads one line of an AUTH exchange; `None` when cancelled or broken.
    async fn auth_line(&mut self, io: &mut Io, prompt: &str) -> Option<Vec<u8>> {
        self.reply(334, "", prompt);
        self.flush(io).await.ok()?;
        let mut line = Vec::new();
        let read = tokio::time::timeout(
            self.ctx.limits.command_timeout,
            reader::read_line(io, MAX_COMMAND_LINE, &mut line),
        )
        .await;
        match read {
            Ok(Ok(Line::Complete)) => {}
            // RFC 4954 4: the exchange ends, the session goes on.
            Ok(Ok(Line::TooLong)) => {
                self.error(500, "5.5.6", "Authentication exchange line is too long");
                return None;
            }
            _ => return None,
        }
        let text = line.trim_ascii_end();
        if text == b"*" {
            self.error(501, "5.0.0", "Authentication cancelled");
            return None;
        }
        match B64.decode(text) {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(501, "5.5.2", "Invalid base64");
                None
            }
        }
    }

    async fn auth(&mut self, mechanism: u64, initial: String, io: &mut Io) -> Flow {
        if !self.flavor.is_submission() {
            self.error(502, "5.5.1", "AUTH is offered on the submission ports only");
            return Flow::Continue;
        }
        if !self.tls {
            self.error(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            );
            return Flow::Continue;
        }
        if self.login.is_some() || self.tx.is_some() {
            self.error(503, "5.5.1", "Already authenticated or in a transaction");
            return Flow::Continue;
        }
        let decode = |s: &str| {
            if s == "=" {
                Some(Vec::new())
            } else {
                B64.decode(s.trim()).ok()
            }
        };
        let (login, password) = if mechanism == smtp_proto::AUTH_PLAIN {
            let blob = if initial.is_empty() {
                match self.auth_line(io, "").await {
                    Some(b) => b,
                    None => return Flow::Continue,
                }
            } else {
                match decode(&initial) {
                    Some(b) => b,
                    None => {
                        self.error(501, "5.5.2", "Invalid base64");
                        return Flow::Continue;
                    }
                }
            };
            let parts: Vec<&[u8]> = blob.split(|&b| b == 0).collect();
            match parts[..] {
                [authz, user, pass] if authz.is_empty() || authz == user => {
                    (user.to_vec(), pass.to_vec())
                }
                _ => {
                    self.error(501, "5.5.2", "Malformed PLAIN response");
                    return Flow::Continue;
                }
            }
        } else if mechanism == smtp_proto::AUTH_LOGIN {
            let user = match (initial.is_empty(), decode(&initial)) {
                (false, Some(u)) => u,
                (false, None) => {
                    self.error(501, "5.5.2", "Invalid base64");
                    return Flow::Continue;
                }
                (true, _) => match self.auth_line(io, "VXNlcm5hbWU6").await {
                    Some(u) => u,
                    None => return Flow::Continue,
                },
            };
            match self.auth_line(io, "UGFzc3dvcmQ6").await {
                Some(p) => (user, p),
                None => return Flow::Continue,
            }
        } else {
            self.error(504, "5.5.4", "Unrecognized authentication type");
            return Flow::Continue;
        };
        let (Ok(login), Ok(password)) = (String::from_utf8(login), String::from_utf8(password))
        else {
            self.error(535, "5.7.8", "Authentication credentials invalid");
            return Flow::Continue;
        };
        let attempt = Attempt {
            login: &login,
            password: &password,
            protocol: AccessProtocol::Smtp,
            source_ip: self.peer.ip(),
            user_agent: None,
        };
        match self.ctx.auth.login(attempt).await {
            LoginResult::Success(session) => {
                self.login = Some(session);
                self.reply(235, "2.7.0", "Authentication successful");
            }
            LoginResult::Failed => self.error(535, "5.7.8", "Authentication credentials invalid"),
            LoginResult::Throttled(_) => self.error(
                454,
                "4.7.0",
                "Temporary authentication failure, try again later",
            ),
        }
        Flow::Continue
    }

    fn mail(&mut self, from: MailFrom<String>) {
        if self.helo.is_none() {
            return self.error(503, "5.5.1", "Send EHLO or HELO first");
        }
        if self.tx.is_some() {
            return self.error(503, "5.5.1", "Nested MAIL command");
        }
        if self.flavor.is_submission() {
            if !self.tls {
                return self.error(530, "5.7.0", "Must issue a STARTTLS command first");
            }
            if self.login.is_none() {
                return self.error(530, "5.7.0", "Authentication required");
            }
        }
        if from.size > self.ctx.limits.max_message_size {
            return self.error(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            );
        }
        if !self.flavor.is_submission()
            && let Err(wait) = self.ctx.mx_rate.check(self.peer.ip())
        {
            let text = format!(
                "Too much mail from {}, try again in {} s",
                self.peer.ip().to_canonical(),
                wait.as_secs().max(1)
            );
            return self.error(450, "4.7.1", &text);
        }
        let address = from.address.to_ascii_lowercase();
        let mut on_behalf_of = None;
        if let Some(login) = &self.login {
            let authority = if address.is_empty() {
                SendAuthority::No
            } else {
                let actor = Actor::User {
                    org_id: &login.org_id,
                    user_id: &login.user_id,
                };
                let origin = Origin {
                    protocol: AuditProtocol::Smtp,
                    source_ip: self.peer.ip(),
                    user_agent: None,
                };
                self.ctx
                    .auth
                    .mailboxes()
                    .send_authority(actor, &address, origin)
            };
            match authority {
                SendAuthority::Own | SendAuthority::SendAs { .. } => {}
                SendAuthority::OnBehalf { .. } => {
                    on_behalf_of = self
                        .ctx
                        .directory
                        .describe_user(&login.org_id, &login.user_id)
                        .ok()
                        .and_then(|u| u.base.email);
                }
                SendAuthority::No => {
                    return self.error(
                        550,
                        "5.7.60",
                        &format!("Not authorized to send as <{address}>"),
                    );
                }
            }
        }
        self.tx = Some(Transaction {
            from: address,
            body_8bit: from.flags
                & (smtp_proto::MAIL_BODY_8BITMIME | smtp_proto::MAIL_BODY_BINARYMIME)
                != 0,
            smtputf8: from.flags & smtp_proto::MAIL_SMTPUTF8 != 0,
            rcpts: Vec::new(),
            on_behalf_of,
            envelope_id: from.env_id.clone(),
            chunks: None,
            coming: None,
        });
        self.reply(250, "2.1.0", "Sender OK");
    }

    async fn rcpt(&mut self, to: RcptTo<String>) {
        let Some(tx) = &self.tx else {
            return self.error(503, "5.5.1", "Need MAIL command first");
        };
        if tx.rcpts.len() >= self.ctx.limits.max_recipients {
            return self.reply(452, "4.5.3", "Too many recipients");
        }
        // smtp-proto hands over the bare `<Postmaster>` RFC 5321 4.5.1 requires us to
        // take as an empty address (as it does `<>`, which no client sends in RCPT).
        let address = match to.address.as_str() {
            "" => "postmaster".to_string(),
            a => a.to_ascii_lowercase(),
        };
        // No NOTIFY means the default: failures only (RFC 3461 §4.1).
        let notify = smtp_proto::RCPT_NOTIFY_SUCCESS
            | smtp_proto::RCPT_NOTIFY_FAILURE
            | smtp_proto::RCPT_NOTIFY_DELAY
            | smtp_proto::RCPT_NOTIFY_NEVER;
        let notify_failure =
            to.flags & notify == 0 || to.flags & smtp_proto::RCPT_NOTIFY_FAILURE != 0;
        if tx.rcpts.iter().any(|r| r.address == address) {
            return self.reply(250, "2.1.5", "Recipient OK");
        }
        let mailboxes = match delivery::destination(
            &self.ctx,
            &address,
            self.flavor.is_submission(),
        ) {
            Destination::Local(m) => m,
            Destination::Unknown => {
                return self.error(550, "5.1.1", "Recipient address rejected: User unknown");
            }
            Destination::Remote => {
                if let Some(tx) = &mut self.tx {
                    tx.rcpts.push(AcceptedRcpt {
                        address,
                        notify_failure,
                        mailboxes: vec![],
                    });
                }
                return self.reply(250, "2.1.5", "Recipient OK, will relay");
            }
            Destination::NoRelay if self.flavor.is_submission() => {
                return self.error(
                    550,
                    "5.7.1",
                    "Delivery to other domains is not possible: no relay (smarthost) is configured on this server",
                );
            }
            Destination::NoRelay => return self.error(550, "5.7.1", "Relaying denied"),
            Destination::NoMailbox => {
                return self.error(
                    550,
                    "5.1.1",
                    "Recipient address rejected: no mailbox behind this address",
                );
            }
        };
        if let [only] = &mailboxes[..]
            && let Some(q) = self.ctx.recent_quota(&only.mailbox).await
            && q.used >= q.limit
        {
            return self.reply(552, "5.2.2", "Mailbox full");
        }
        if let Some(tx) = &mut self.tx {
            tx.rcpts.push(AcceptedRcpt {
                address,
                notify_failure,
                mailboxes,
            });
        }
        self.reply(250, "2.1.5", "Recipient OK");
    }

    async fn data(&mut self, io: &mut Io) -> Flow {
        match &self.tx {
            None => {
                self.error(503, "5.5.1", "Need MAIL command first");
                return Flow::Continue;
            }
            Some(tx) if tx.rcpts.is_empty() => {
                self.error(554, "5.5.1", "No valid recipients");
                return Flow::Continue;
            }
            Some(tx) if tx.chunks.is_some() => {
                self.error(503, "5.5.1", "DATA cannot follow BDAT");
                return Flow::Continue;
            }
            Some(_) => {}
        }
        self.reply(354, "", "End data with <CR><LF>.<CR><LF>");
        if self.flush(io).await.is_err() {
            return Flow::Close;
        }
        self.announce_delivery();
        let mut body = Body::new(self.ctx.limits.body_budget.clone());
        let mut flaws = BodyFlaws::default();
        let max = self.ctx.limits.max_message_size;
        let read = async {
            let end = reader::read_data(io, max, &mut body, &mut flaws).await?;
            Ok(end == DataEnd::Complete)
        };
        if !self.read_message_data(read).await {
            return Flow::Close;
        }
        match body.into_vec() {
            Ok(body) => self.finish(body, flaws).await,
            Err(e) => self.local_error(e),
        }
        Flow::Continue
    }

    /// The data could not be kept (the spill file failed): the transaction ends
    /// with a temporary error, so the sender tries again.
    fn local_error(&mut self, e: std::io::Error) {
        tracing::warn!(error = %e, "SMTP: message data could not be kept");
        self.tx = None;
        self.reply(451, "4.3.0", "Local error in processing; try again later");
    }

    /// Tells the store that this transaction's delivery is on its way.
    fn announce_delivery(&mut self) {
        if let Some(tx) = &mut self.tx
            && tx.coming.is_none()
        {
            tx.coming = Some(self.ctx.store.expect_write());
        }
    }

    /// Runs a DATA or BDAT read under the data timeout. False when the session must
    /// end: the client left, or it stalled (then it is told so with a 421).
    async fn read_message_data(
        &mut self,
        read: impl Future<Output = std::io::Result<bool>>,
    ) -> bool {
        match tokio::time::timeout(self.ctx.limits.data_timeout, read).await {
            Ok(Ok(complete)) => complete,
            Ok(Err(_)) => false,
            Err(_) => {
                self.reply(
                    421,
                    "4.4.2",
                    "Timeout reading message data, closing connection",
                );
                false
            }
        }
    }

    async fn bdat(&mut self, size: usize, last: bool, io: &mut Io) -> Flow {
        let usable = self.tx.as_ref().is_some_and(|tx| !tx.rcpts.is_empty());
        if usable {
            self.announce_delivery();
        }
        let max = self.ctx.limits.max_message_size;
        let (mut body, mut flaws) = self
            .tx
            .as_mut()
            .and_then(|tx| tx.chunks.take())
            .unwrap_or_else(|| {
                (
                    Body::new(self.ctx.limits.body_budget.clone()),
                    BodyFlaws::default(),
                )
            });
        let read = reader::read_chunk(io, size as u64, max, &mut body, &mut flaws);
        if !self.read_message_data(read).await {
            return Flow::Close;
        }
        if !usable {
            self.error(503, "5.5.1", "BDAT needs MAIL and at least one RCPT");
            return Flow::Continue;
        }
        if last {
            match body.into_vec() {
                Ok(body) => {
                    flaws.scan(&body);
                    self.finish(body, flaws).await;
                }
                Err(e) => self.local_error(e),
            }
        } else {
            if let Some(tx) = &mut self.tx {
                tx.chunks = Some((body, flaws));
            }
            self.reply(250, "2.0.0", &format!("{size} octets received"));
        }
        Flow::Continue
    }

    /// Checks the message, adds the trace and submission headers, stores it and
    /// answers. The transaction ends either way.
    async fn finish(&mut self, body: Vec<u8>, flaws: BodyFlaws) {
        let Some(mut tx) = self.tx.take() else { return };
        if flaws.too_big {
            return self.reply(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            );
        }
        if flaws.header_too_big {
            return self.reply(552, "5.3.4", "Message header too large");
        }
        if flaws.line_too_long {
            return self.reply(554, "5.6.0", "Message contains a line longer than 1 MiB");
        }
        if flaws.nul {
            return self.reply(554, "5.6.0", "Message contains NUL characters");
        }
        if flaws.bare_newline {
            return self.reply(
                554,
                "5.6.0",
                "Message contains bare CR or LF characters (RFC 5321 2.3.8)",
            );
        }
        if flaws.eight_bit && !tx.body_8bit && !tx.smtputf8 {
            return self.reply(554, "5.6.1", "8-bit data requires BODY=8BITMIME");
        }
        let now = crate::clock::now_secs();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut facts = header_facts(&body);
        let with = match (self.tls, self.login.is_some()) {
            (false, _) => "ESMTP",
            (true, false) => "ESMTPS",
            (true, true) => "ESMTPSA",
        };
        let helo = self.helo.clone().unwrap_or_default();
        // Mail from outside (no login): SPF, DKIM and DMARC, and the sender
        // domain's DMARC policy where the recipients' organizations enforce it.
        let verdicts = match self.login {
            Some(_) => None,
            None => {
                // The checks may wait on DNS: not "within moments".
                tx.coming = None;
                let envelope = sender_auth::Envelope {
                    client_ip: self.peer.ip().to_canonical(),
                    helo: &helo,
                    mail_from: &tx.from,
                };
                let verdicts = self.ctx.sender_auth.check(envelope, &body).await;
                tx.coming = Some(self.ctx.store.expect_write());
                Some(verdicts)
            }
        };
        if self.dmarc_rejects(&tx.rcpts, verdicts.as_ref(), &facts) {
            return self.reply(
                550,
                "5.7.1",
                "Message rejected by the sender domain's DMARC policy",
            );
        }
        let mut message = verdicts
            .as_ref()
            .map(|v| v.header.clone().into_bytes())
            .unwrap_or_default();
        message.extend_from_slice(
            received_header(&helo, self.peer.ip(), &self.ctx.hostname, with, &id, now).as_bytes(),
        );
        let submitter = self.login.as_ref().map(|l| Submitter {
            org: l.org_id.clone(),
            user_id: l.user_id.clone(),
            on_behalf_of: tx.on_behalf_of.clone(),
            sent_copy: Some(crate::submission::SavedCopy::default()),
        });
        if submitter.is_some() {
            message.extend_from_slice(
                submission_headers(
                    &mut facts,
                    &self.ctx.hostname,
                    now,
                    tx.on_behalf_of.as_deref(),
                )
                .as_bytes(),
            );
        }
        // One copy of the body, straight into the shared buffer the store and the
        // events read (extending `message` and converting it copied it twice: a
        // 39 MiB message peaked at four times its size).
        let message: Arc<[u8]> = message.iter().chain(body.iter()).copied().collect();
        drop(body);
        let trace = crate::events::new_id();
        let mut submitted = Vec::new();
        if let Some(s) = &submitter {
            // Recorded with the delivery, in its commit.
            submitted.push(crate::events::outbox::email_row(
                &s.org,
                &trace,
                &crate::events::EmailEvent::OutgoingEmailSubmitted {
                    recipients: tx.rcpts.iter().map(|r| r.address.clone()).collect(),
                    sender: s.on_behalf_of.clone(),
                    from: if facts.from.is_empty() {
                        tx.from.clone()
                    } else {
                        facts.from.clone()
                    },
                    subject: facts.subject.clone(),
                },
            ));
        }
        let envelope = delivery::Envelope {
            from: &tx.from,
            envelope_id: tx.envelope_id.as_deref(),
            rcpts: &tx.rcpts,
        };
        let queued = submitter.as_ref().and_then(|s| {
            delivery::outbound_message(&self.ctx, message.clone(), envelope, s, &facts, trace)
        });
        tx.coming = None; // submitted next
        let stored = delivery::deliver(
            &self.ctx,
            message.clone(),
            &tx.rcpts,
            &facts,
            submitter.as_ref(),
            queued,
            verdicts.as_ref(),
            submitted,
        )
        .await;
        match stored {
            Ok(report) if report.delivered == 0 && submitter.is_none() => {
                self.reply(552, "5.2.2", "Mailbox full");
            }
            Ok(report) => {
                if !report.bounced.is_empty()
                    && let Err(e) =
                        delivery::return_refused(&self.ctx, envelope, &report, &message, now * 1000)
                            .await
                {
                    tracing::error!(peer = %self.peer, error = %e, "a DSN for a refused recipient was not stored");
                }
                self.reply(250, "2.0.0", &format!("Ok: queued as {id}"))
            }
            Err(e) => {
                tracing::error!(peer = %self.peer, error = %e, "delivery failed; nothing was stored");
                self.reply(451, "4.3.0", "Temporary storage failure, try again later");
            }
        }
    }
}
