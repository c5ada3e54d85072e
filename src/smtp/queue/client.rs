//! A small SMTP client for the smarthost: EHLO, STARTTLS, AUTH PLAIN, then one
//! MAIL/RCPT/DATA transaction per message on the same connection, QUIT.
//!
//! Replies are read a line at a time (bounded) and parsed by smtp-proto's
//! response parser. Commands are not pipelined: one smarthost, few messages per
//! batch, and per-recipient answers stay simple to attribute.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use smtp_proto::response::parser::ResponseReceiver;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::TlsMode;

/// Longest reply line accepted (RFC 5321 §4.5.3.1.5 says 512; servers exceed it).
const MAX_REPLY_LINE: u64 = 4096;
/// Most lines in one reply, so a hostile server cannot make us read forever.
const MAX_REPLY_LINES: usize = 100;

/// Any byte stream the client speaks over: plain TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where and how to reach the smarthost.
#[derive(Clone)]
pub struct RelaySettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// Trusts the configured CA only; `None` exactly when `tls` is `None`.
    pub connector: Option<TlsConnector>,
    /// AUTH PLAIN user and password.
    pub auth: Option<(String, String)>,
    /// Our name in EHLO.
    pub hello: String,
    /// Waiting for the connection and for each reply.
    pub command_timeout: Duration,
    /// Waiting for the reply to the end of DATA.
    pub data_timeout: Duration,
}

/// One SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// The enhanced status code, e.g. `5.1.1`, when the server sent one.
    pub status: Option<String>,
    pub text: String,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }
    /// The enhanced status, or the class default (`4.0.0`, `5.0.0`, `2.0.0`).
    pub fn status_or_default(&self) -> String {
        self.status
            .clone()
            .unwrap_or_else(|| format!("{}.0.0", (self.code / 100).clamp(2, 5)))
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.status {
            Some(s) => write!(f, "{} {} {}", self.code, s, self.text),
            None => write!(f, "{} {}", self.code, self.text),
        }
    }
}

/// Why a session with the smarthost could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection to the smarthost failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the smarthost did not answer in time")]
    Timeout,
    #[error("malformed reply from the smarthost: {0}")]
    Protocol(String),
    /// A refusal before any message was offered (greeting, EHLO, STARTTLS, AUTH).
    #[error("the smarthost refused the session: {0}")]
    Refused(Reply),
}

/// Reads one (possibly multi-line) reply.
pub async fn read_reply<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Reply, ClientError> {
    let mut parser = ResponseReceiver::default();
    let mut line = Vec::with_capacity(128);
    for _ in 0..MAX_REPLY_LINES {
        line.clear();
        (&mut *r)
            .take(MAX_REPLY_LINE)
            .read_until(b'\n', &mut line)
            .await?;
        if line.last() != Some(&b'\n') {
            return Err(if line.is_empty() {
                ClientError::Io(std::io::ErrorKind::UnexpectedEof.into())
            } else {
                ClientError::Protocol("reply line too long or cut off".into())
            });
        }
        match parser.parse(&mut line.iter()) {
            Ok(resp) => {
                let status = (resp.esc[0] != 0)
                    .then(|| format!("{}.{}.{}", resp.esc[0], resp.esc[1], resp.esc[2]));
                return Ok(Reply {
                    code: resp.code,
                    status,
                    text: resp.message.trim().to_string(),
                });
            }
            Err(smtp_proto::Error::NeedsMoreData { .. }) => continue,
            Err(e) => return Err(ClientError::Protocol(e.to_string())),
        }
    }
    Err(ClientError::Protocol("reply has too many lines".into()))
}

/// The DATA payload: lines starting with `.` get another (RFC 5321 §4.5.2), the
/// last line is terminated, and the end marker follows.
pub fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 5);
    let mut at_line_start = true;
    for &b in body {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !body.is_empty() && !body.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// An open, greeted (and if configured, encrypted and authenticated) session.
pub struct Connection {
    io: BufReader<Box<dyn Io>>,
    settings: Arc<RelaySettings>,
    /// EHLO keywords of the (final, post-TLS) session.
    caps: Vec<String>,
}

impl Connection {
    /// Connects, reads the greeting, says EHLO, and does STARTTLS and AUTH as set.
    pub async fn open(settings: Arc<RelaySettings>) -> Result<Connection, ClientError> {
        let tcp = tokio::time::timeout(
            settings.command_timeout,
            TcpStream::connect((settings.host.as_str(), settings.port)),
        )
        .await
        .map_err(|_| ClientError::Timeout)??;
        let stream: Box<dyn Io> = match settings.tls {
            TlsMode::Implicit => Box::new(handshake(&settings, Box::new(tcp)).await?),
            _ => Box::new(tcp),
        };
        let mut conn = Connection {
            io: BufReader::new(stream),
            settings,
            caps: vec![],
        };
        conn.expect_positive(None).await?;
        let mut caps = conn.ehlo().await?;
        if conn.settings.tls == TlsMode::Starttls {
            conn.expect_positive(Some("STARTTLS")).await?;
            // Nothing may be buffered across the upgrade (CVE-2011-0411 in reverse).
            if !conn.io.buffer().is_empty() {
                return Err(ClientError::Protocol(
                    "data pipelined after STARTTLS".into(),
                ));
            }
            let Connection { io, settings, .. } = conn;
            let tls = handshake(&settings, io.into_inner()).await?;
            conn = Connection {
                io: BufReader::new(Box::new(tls)),
                settings,
                caps: vec![],
            };
            caps = conn.ehlo().await?;
        }
        conn.caps = caps;
        if let Some((user, password)) = conn.settings.auth.clone() {
            let blob = B64.encode(format!("\0{user}\0{password}"));
            conn.expect_positive(Some(&format!("AUTH PLAIN {blob}")))
                .await?;
        }
        Ok(conn)
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let io = self.io.get_mut();
        io.write_all(bytes).await?;
        io.flush().await?;
        Ok(())
    }

    /// Sends `line` (if any) and reads the reply under `wait`.
    async fn exchange(&mut self, line: Option<&str>, wait: Duration) -> Result<Reply, ClientError> {
        if let Some(line) = line {
            self.write(format!("{line}\r\n").as_bytes()).await?;
        }
        tokio::time::timeout(wait, read_reply(&mut self.io))
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn command(&mut self, line: &str) -> Result<Reply, ClientError> {
        let wait = self.settings.command_timeout;
        self.exchange(Some(line), wait).await
    }

    /// A session step (greeting, EHLO, STARTTLS, AUTH) that must get a 2xx.
    async fn expect_positive(&mut self, line: Option<&str>) -> Result<Reply, ClientError> {
        let wait = self.settings.command_timeout;
        let reply = self.exchange(line, wait).await?;
        if reply.is_positive() {
            Ok(reply)
        } else {
            Err(ClientError::Refused(reply))
        }
    }

    /// EHLO; returns the upper-cased capability keywords.
    async fn ehlo(&mut self) -> Result<Vec<String>, ClientError> {
        let hello = format!("EHLO {}", self.settings.hello);
        let reply = self.expect_positive(Some(&hello)).await?;
        Ok(reply
            .text
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_ascii_uppercase)
            .collect())
    }

    /// Whether the smarthost's EHLO named `keyword`.
    fn offers(&self, keyword: &str) -> bool {
        self.caps.iter().any(|c| c == keyword)
    }

    /// Offers one message. Returns one reply per recipient: its RCPT refusal, or
    /// the server's verdict on the message. An error leaves the session unusable.
    pub async fn send(
        &mut self,
        sender: &str,
        recipients: &[String],
        body: &[u8],
    ) -> Result<Vec<Reply>, ClientError> {
        let mut params = String::new();
        if !body.is_ascii() && self.offers("8BITMIME") {
            params.push_str(" BODY=8BITMIME");
        }
        if !sender.is_ascii() || recipients.iter().any(|r| !r.is_ascii()) {
            if !self.offers("SMTPUTF8") {
                // RFC 6531 §3.2: no downgrade of addresses; the message bounces.
                let refusal = Reply {
                    code: 553,
                    status: Some("5.6.7".into()),
                    text: "Non-ASCII address and the smarthost does not offer SMTPUTF8".into(),
                };
                return Ok(vec![refusal; recipients.len()]);
            }
            params.push_str(" SMTPUTF8");
        }
        let mail = self
            .command(&format!("MAIL FROM:<{sender}>{params}"))
            .await?;
        if !mail.is_positive() {
            self.command("RSET").await?;
            return Ok(vec![mail; recipients.len()]);
        }
        let mut replies = Vec::with_capacity(recipients.len());
        for r in recipients {
            replies.push(self.command(&format!("RCPT TO:<{r}>")).await?);
        }
        if !replies.iter().any(Reply::is_positive) {
            self.command("RSET").await?;
            return Ok(replies);
        }
        let data = self.command("DATA").await?;
        let verdict = if data.code == 354 {
            self.write(&dot_stuff(body)).await?;
            let wait = self.settings.data_timeout;
            self.exchange(None, wait).await?
        } else {
            self.command("RSET").await?;
            data
        };
        for r in replies.iter_mut().filter(|r| r.is_positive()) {
            *r = verdict.clone();
        }
        Ok(replies)
    }

    /// Ends the session politely; failures no longer matter.
    pub async fn quit(mut self) {
        let _ = self.command("QUIT").await;
        let _ = self.io.get_mut().shutdown().await;
    }
}

/// The TLS handshake with the smarthost, checked against the configured CA.
async fn handshake(
    settings: &RelaySettings,
    io: Box<dyn Io>,
) -> Result<tokio_rustls::client::TlsStream<Box<dyn Io>>, ClientError> {
    let connector = settings
        .connector
        .clone()
        .ok_or_else(|| ClientError::Protocol("TLS required but no CA configured".into()))?;
    let name = rustls::pki_types::ServerName::try_from(settings.host.clone())
        .map_err(|e| ClientError::Protocol(format!("smarthost name: {e}")))?;
    tokio::time::timeout(settings.command_timeout, connector.connect(name, io))
        .await
        .map_err(|_| ClientError::Timeout)?
        .map_err(ClientError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(text: &str) -> Result<Reply, ClientError> {
        read_reply(&mut text.as_bytes()).await
    }

    #[tokio::test]
    async fn replies_single_multi_line_and_enhanced() {
        let r = parse("250 2.1.5 Recipient OK\r\n").await.unwrap();
        assert_eq!(
            (r.code, r.status.as_deref(), r.text.as_str()),
            (250, Some("2.1.5"), "Recipient OK")
        );
        let r = parse("250-smart.test Hello\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            .await
            .unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(
            r.text.lines().collect::<Vec<_>>(),
            ["smart.test Hello", "PIPELINING", "8BITMIME"]
        );
        let r = parse("451 try later\r\n").await.unwrap();
        assert_eq!(
            (r.code, r.status.clone(), r.status_or_default()),
            (451, None, "4.0.0".to_string())
        );
        assert!(!r.is_positive() && !r.is_permanent());
        assert!(parse("550 5.1.1 no\r\n").await.unwrap().is_permanent());
    }

    #[tokio::test]
    async fn bad_replies_are_errors_not_panics() {
        assert!(matches!(parse("").await, Err(ClientError::Io(_))));
        assert!(matches!(
            parse("250-cut off\r\n").await,
            Err(ClientError::Io(_))
        ));
        assert!(matches!(
            parse("25x nope\r\n").await,
            Err(ClientError::Protocol(_))
        ));
        let long = format!("250 {}\r\n", "a".repeat(5000));
        assert!(matches!(parse(&long).await, Err(ClientError::Protocol(_))));
        let many = "250-x\r\n".repeat(200);
        assert!(matches!(parse(&many).await, Err(ClientError::Protocol(_))));
    }

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_terminates() {
        assert_eq!(
            dot_stuff(b"a\r\n.b\r\n..c\r\n"),
            b"a\r\n..b\r\n...c\r\n.\r\n"
        );
        assert_eq!(dot_stuff(b".\r\n"), b"..\r\n.\r\n");
        assert_eq!(dot_stuff(b"no newline"), b"no newline\r\n.\r\n");
        assert_eq!(
            dot_stuff(b"x.y\r\n"),
            b"x.y\r\n.\r\n",
            "only at a line start"
        );
    }

    proptest::proptest! {
        #[test]
        fn reply_reader_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let _ = rt.block_on(read_reply(&mut &bytes[..]));
        }

        #[test]
        fn unstuffing_gives_the_body_back(lines in proptest::collection::vec("[.a-z]{0,5}", 0..8)) {
            let body: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
            let stuffed = dot_stuff(body.as_bytes());
            let text = String::from_utf8(stuffed).unwrap();
            let mut back = String::new();
            let mut parts: Vec<&str> = text.split("\r\n").collect();
            parts.pop();
            proptest::prop_assert_eq!(parts.pop(), Some("."));
            for p in parts {
                back.push_str(p.strip_prefix('.').unwrap_or(p));
                back.push_str("\r\n");
            }
            proptest::prop_assert_eq!(back, body);
        }
    }
}
