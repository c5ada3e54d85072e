//! Frames client input into whole messages (a command line with its literals) with
//! imap-codec's fragmentizer, answering synchronizing literals with a continuation
//! request and refusing literals over the limit without losing the connection.

use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer, LiteralAnnouncement};
use imap_codec::imap_types::core::LiteralMode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Slack above the message size limit for the command around an APPEND literal.
const COMMAND_SLACK: u32 = 64 * 1024;
/// The largest literal a client may send before it has logged in: LOGIN and
/// AUTHENTICATE need a few hundred bytes. Without it an unauthenticated client
/// could make the daemon hold a 40 MB literal per connection (issue 20.4: 16 such
/// connections took 620 MiB).
pub const PRE_AUTH_LIMIT: u32 = 8 * 1024;
/// The largest whole command before login: an RFC 2971 ID with its 30 fields of
/// 1,024 octets takes about 32 KiB (imaptest sends one).
pub const PRE_AUTH_COMMAND: usize = 64 * 1024;

/// One unit of client input.
#[derive(Debug)]
pub enum Input {
    /// A complete message: the command line(s) and literal bytes.
    Message(Vec<u8>),
    /// A message that outgrew the limit; its bytes were read and dropped.
    TooBig { tag: Option<String> },
    /// The client closed the connection.
    Eof,
    /// Before login, a command outgrew [`PRE_AUTH_COMMAND`] or announced a literal
    /// over [`PRE_AUTH_LIMIT`] that it sends anyway (LITERAL+): the session answers
    /// BAD and closes.
    Overflow,
}

/// The read size of a connection between commands: commands are short.
const SMALL_READ: usize = 512;
/// The read size a bulk upload (APPEND) grows to, doubling from `SMALL_READ`.
const LARGE_READ: usize = 64 * 1024;

/// Reads messages for one connection; dropped and rebuilt on STARTTLS so nothing
/// pipelined in plaintext is read as if it came over TLS.
///
/// A connection waiting for its next command holds small buffers only: whatever
/// a large command grew (the read buffer, the framing buffers holding an APPEND's
/// literal) is dropped before the next wait, so 10,000 sessions in IDLE cost a
/// few KiB each whatever they did before.
pub struct Reader {
    frag: Fragmentizer,
    literal_limit: u32,
    /// Until the client logs in, literals are held to [`PRE_AUTH_LIMIT`] and
    /// commands to [`PRE_AUTH_COMMAND`].
    pre_auth: bool,
    chunk: Vec<u8>,
    /// Buffers grew beyond their small size since the last wait.
    grown: bool,
}

impl Reader {
    /// A reader refusing literals over `literal_limit` bytes, and, until
    /// [`Reader::logged_in`], literals over [`PRE_AUTH_LIMIT`] and commands over
    /// [`PRE_AUTH_COMMAND`].
    pub fn new(literal_limit: u32) -> Reader {
        Reader {
            frag: Reader::fragmentizer(literal_limit),
            literal_limit,
            pre_auth: true,
            chunk: vec![0; SMALL_READ],
            grown: false,
        }
    }

    /// The client logged in: commands may now carry literals up to the limit.
    pub fn logged_in(&mut self) {
        self.pre_auth = false;
    }

    /// The largest literal accepted now.
    fn limit(&self) -> u32 {
        if self.pre_auth {
            PRE_AUTH_LIMIT.min(self.literal_limit)
        } else {
            self.literal_limit
        }
    }

    fn fragmentizer(literal_limit: u32) -> Fragmentizer {
        Fragmentizer::new(literal_limit.saturating_add(COMMAND_SLACK))
    }

    /// The next message. Cancel-safe between reads as long as no literal is pending,
    /// which is the case where IDLE selects on it.
    pub async fn next<S>(&mut self, io: &mut S) -> std::io::Result<Input>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        loop {
            match self.frag.progress() {
                Some(FragmentInfo::Line {
                    announcement: Some(LiteralAnnouncement { mode, length }),
                    ..
                }) => {
                    let limit = self.limit();
                    if length > limit {
                        if self.pre_auth && mode != LiteralMode::Sync {
                            return Ok(Input::Overflow);
                        }
                        if mode == LiteralMode::Sync {
                            // The client waits for "+": refuse and forget the command.
                            let tag = self.tag();
                            self.frag.skip_message();
                            let line = match tag {
                                Some(t) => format!(
                                    "{t} NO [TOOBIG] Literal of {length} bytes exceeds the limit of {limit} bytes\r\n"
                                ),
                                None => "* BAD Literal too big\r\n".to_string(),
                            };
                            io.write_all(line.as_bytes()).await?;
                            io.flush().await?;
                        } else {
                            // LITERAL+: the bytes follow anyway; read and drop them.
                            self.frag.poison_message();
                        }
                    } else if mode == LiteralMode::Sync {
                        io.write_all(b"+ Ready for literal data\r\n").await?;
                        io.flush().await?;
                    }
                }
                Some(_) => {
                    if self.pre_auth && self.frag.message_bytes().len() > PRE_AUTH_COMMAND {
                        return Ok(Input::Overflow);
                    }
                    if self.frag.is_message_complete() {
                        if self.frag.is_max_message_size_exceeded()
                            || self.frag.is_message_poisoned()
                        {
                            return Ok(Input::TooBig { tag: self.tag() });
                        }
                        let message = self.frag.message_bytes();
                        self.grown |= message.len() > SMALL_READ;
                        return Ok(Input::Message(message.to_vec()));
                    }
                }
                None => {
                    // Nothing of a next message yet means nothing is buffered (the
                    // framer consumes every byte it is given): shrink back.
                    if self.grown && self.frag.message_bytes().is_empty() {
                        self.frag = Reader::fragmentizer(self.literal_limit);
                        self.chunk = vec![0; SMALL_READ];
                        self.grown = false;
                    }
                    // A line still without its end counts too (the framer holds it).
                    if self.pre_auth && self.frag.message_bytes().len() > PRE_AUTH_COMMAND {
                        return Ok(Input::Overflow);
                    }
                    let n = io.read(&mut self.chunk).await?;
                    if n == 0 {
                        return Ok(Input::Eof);
                    }
                    self.frag.enqueue_bytes(&self.chunk[..n]);
                    if n == self.chunk.len() && n < LARGE_READ {
                        self.chunk.resize(n * 2, 0);
                        self.grown = true;
                    }
                    if n > SMALL_READ {
                        self.grown = true;
                    }
                }
            }
        }
    }

    fn tag(&self) -> Option<String> {
        self.frag.decode_tag().map(|t| t.inner().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn drive(input: &[u8], limit: u32) -> (Vec<String>, Vec<u8>) {
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        client.write_all(input).await.unwrap();
        drop(client.shutdown().await);
        let mut reader = Reader::new(limit);
        let mut got = Vec::new();
        loop {
            match reader.next(&mut server).await.unwrap() {
                Input::Message(m) => got.push(String::from_utf8_lossy(&m).into_owned()),
                Input::TooBig { tag } => got.push(format!("TOOBIG {tag:?}")),
                Input::Overflow => {
                    got.push("OVERFLOW".into());
                    break;
                }
                Input::Eof => break,
            }
        }
        drop(server);
        let mut written = Vec::new();
        let _ = client.read_to_end(&mut written).await;
        (got, written)
    }

    #[tokio::test]
    async fn literals_are_framed_and_over_limit_refused() {
        let (got, written) = drive(
            b"a NOOP\r\nb LOGIN {1}\r\nx {2+}\r\nyy\r\nc APPEND INBOX {99}\r\nd NOOP\r\ne APPEND INBOX {99+}\r\n",
            10,
        )
        .await;
        assert_eq!(got[0], "a NOOP\r\n");
        assert_eq!(got[1], "b LOGIN {1}\r\nx {2+}\r\nyy\r\n");
        assert_eq!(got[2], "d NOOP\r\n");
        let written = String::from_utf8_lossy(&written);
        assert!(written.starts_with("+ Ready"), "{written}");
        assert!(written.contains("c NO [TOOBIG]"), "{written}");
    }

    /// Issue 20.4: before login a command holds at most a few KiB: a big
    /// synchronizing literal is refused unsent, anything else that outgrows the
    /// limit ends the connection; after login the message-size limit applies.
    #[tokio::test]
    async fn before_login_commands_are_held_to_a_few_kib() {
        let big = PRE_AUTH_LIMIT as usize * 4;
        let long = PRE_AUTH_COMMAND * 2;
        let cases: [(Vec<u8>, &str); 3] = [
            (
                format!("a LOGIN {{{big}+}}\r\n").into_bytes(),
                "non-synchronizing literal",
            ),
            ("b ".repeat(long).into_bytes(), "a line without its end"),
            (
                format!("c LOGIN \"{}\" x\r\n", "u".repeat(long)).into_bytes(),
                "a long line",
            ),
        ];
        for (input, what) in cases {
            let (mut client, mut server) = tokio::io::duplex(1 << 20);
            client.write_all(&input).await.unwrap();
            let mut reader = Reader::new(1 << 20);
            let got =
                tokio::time::timeout(std::time::Duration::from_secs(5), reader.next(&mut server))
                    .await
                    .expect(what)
                    .unwrap();
            assert!(matches!(got, Input::Overflow), "{what}: {got:?}");
        }
        let (got, written) = drive(
            format!("d LOGIN {{{big}}}\r\ne NOOP\r\n").as_bytes(),
            1 << 20,
        )
        .await;
        assert_eq!(got, ["e NOOP\r\n"]);
        assert!(String::from_utf8_lossy(&written).starts_with("d NO [TOOBIG]"));
        // An RFC 2971 ID at its largest (30 fields of 1,024 octets) is fine.
        let fields: Vec<String> = (0..30)
            .map(|i| format!("\"k{i}\" \"{}\"", "v".repeat(1024)))
            .collect();
        let id = format!("i ID ({})\r\n", fields.join(" "));
        let (got, _) = drive(id.as_bytes(), 1 << 20).await;
        assert_eq!(got, [id]);
        // Logged in, a literal over the pre-login limit is read.
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        let mut reader = Reader::new(1 << 20);
        reader.logged_in();
        client
            .write_all(format!("f APPEND INBOX {{{big}+}}\r\n{}\r\n", "x".repeat(big)).as_bytes())
            .await
            .unwrap();
        assert!(
            matches!(reader.next(&mut server).await.unwrap(), Input::Message(m) if m.len() > big)
        );
    }

    use proptest::prelude::*;

    /// Pieces real clients (and broken ones) send: commands, sequence sets at the
    /// edges, literals announced with right and wrong lengths, stray brackets.
    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a1 ".to_string()),
            Just("* ".to_string()),
            Just("UID ".to_string()),
            Just("FETCH ".to_string()),
            Just("STORE ".to_string()),
            Just("SEARCH ".to_string()),
            Just("SELECT INBOX".to_string()),
            Just("LIST \"\" *".to_string()),
            Just("APPEND INBOX ".to_string()),
            Just("LOGIN ".to_string()),
            Just("1:*:* ".to_string()),
            Just("4294967295 ".to_string()),
            Just("4294967296 ".to_string()),
            Just("0 ".to_string()),
            Just("*:1 ".to_string()),
            Just("(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.10>) ".to_string()),
            Just("+FLAGS (\\Seen) ".to_string()),
            Just("(".to_string()),
            Just(")".to_string()),
            Just("[".to_string()),
            Just("\"".to_string()),
            Just("\r\n".to_string()),
            Just("\n".to_string()),
            (0u32..40, any::<bool>())
                .prop_map(|(n, plus)| { format!("{{{n}{}}}\r\n", if plus { "+" } else { "" }) }),
            "[ -~]{0,12}",
        ]
    }

    fn run(input: &[u8]) -> Vec<String> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(drive(input, 64))
            .0
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever arrives, framing and parsing neither panic nor lose the
        /// connection's ability to go on: every framed message is offered to the
        /// parser (as the session does) and the reader ends at end of input.
        #[test]
        fn framing_and_parsing_never_panic(
            tokens in prop::collection::vec(token(), 0..24),
            noise in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            use imap_codec::CommandCodec;
            use imap_codec::decode::Decoder;
            let mut input = tokens.concat().into_bytes();
            input.extend_from_slice(&noise);
            input.extend_from_slice(b"\r\nz NOOP\r\n");
            for message in run(&input) {
                let (stripped, _) = crate::imap::extended::strip(message.as_bytes());
                let substituted = crate::imap::searchres::substitute(&stripped, &[2, 9], &[1, 2, 9]);
                let _ = CommandCodec::default().decode(&substituted.bytes);
                for part in crate::imap::multiappend::split(&substituted.bytes).unwrap_or_default() {
                    let _ = CommandCodec::default().decode(&part);
                }
            }
        }
    }
}
