//! Reading SMTP input: command lines with a length limit, DATA with dot-unstuffing
//! and the checks that keep smuggled or damaged messages out, BDAT chunks.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// Longest command line accepted (RFC 5321 says 512; extensions need more).
pub const MAX_COMMAND_LINE: usize = 4096;
/// Longest single line inside a message kept in memory while reading.
const MAX_DATA_LINE: usize = 1 << 20;
/// Largest header section accepted.
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// One line read.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The line including its terminator.
    Complete,
    /// Longer than the limit; the rest up to the newline was discarded.
    TooLong,
    /// The client closed the connection.
    Eof,
}

/// Reads one `\n`-terminated line into `buf` (cleared first), keeping at most `max` bytes.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> std::io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok(Line::Eof);
        }
        let (take, done) = match memchr::memchr(b'\n', avail) {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        if !too_long && buf.len() + take <= max {
            buf.extend_from_slice(&avail[..take]);
        } else {
            too_long = true;
        }
        r.consume(take);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

/// What was wrong with a message body read by [`read_data`] or BDAT.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BodyFlaws {
    /// A `\n` without `\r` before it, or a `\r` without `\n` after it: never
    /// normalised, because that is how SMTP smuggling works.
    pub bare_newline: bool,
    pub nul: bool,
    pub eight_bit: bool,
    /// Bigger than the size limit (the excess was discarded).
    pub too_big: bool,
    pub header_too_big: bool,
    /// A line longer than [`MAX_DATA_LINE`] (it was discarded, so the message
    /// must not be stored).
    pub line_too_long: bool,
}

impl BodyFlaws {
    /// Checks whole lines (DATA) or a whole message (BDAT) for flaws. Each check is
    /// one vectorised pass; CR and LF are visited only where they occur.
    pub fn scan(&mut self, bytes: &[u8]) {
        self.nul = self.nul || memchr::memchr(0, bytes).is_some();
        self.eight_bit = self.eight_bit || !bytes.is_ascii();
        if !self.bare_newline {
            self.bare_newline = memchr::memchr2_iter(b'\r', b'\n', bytes).any(|i| match bytes[i] {
                b'\r' => bytes.get(i + 1) != Some(&b'\n'),
                _ => i == 0 || bytes[i - 1] != b'\r',
            });
        }
    }
}

/// Outcome of reading DATA.
#[derive(Debug, PartialEq, Eq)]
pub enum DataEnd {
    /// The terminating `.` line was read.
    Complete,
    /// The client went away first.
    Eof,
}

/// Where message data goes as it arrives: a `Vec` (tests) or a [`super::body::Body`]
/// (sessions: memory within a budget, disk beyond it).
pub trait Sink {
    /// Bytes so far.
    fn len(&self) -> usize;
    /// True when nothing arrived yet.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Appends bytes.
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()>;
}

impl Sink for Vec<u8> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

impl Sink for super::body::Body {
    fn len(&self) -> usize {
        super::body::Body::len(self)
    }
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.extend(bytes)
    }
}

/// Reads a DATA body up to the `CRLF.CRLF` terminator into `out` (unstuffed),
/// keeping at most `max` bytes and recording flaws. Only `.` + CRLF ends the
/// data; `.` + bare LF is data (and a flaw). Lines are taken straight from the
/// reader's buffer; only a line split across two reads is copied on its own.
pub async fn read_data<R: AsyncBufRead + Unpin, S: Sink>(
    r: &mut R,
    max: usize,
    out: &mut S,
    flaws: &mut BodyFlaws,
) -> std::io::Result<DataEnd> {
    let mut body = DataLines::new(max);
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok(DataEnd::Eof);
        }
        let (used, done) = body.feed(avail, out, flaws)?;
        r.consume(used);
        if done {
            return Ok(DataEnd::Complete);
        }
    }
}

/// The line framing of DATA, fed whatever the connection delivered.
struct DataLines {
    max: usize,
    in_header: bool,
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// The line being read grew past [`MAX_DATA_LINE`]; the rest is skipped.
    skipping: bool,
}

impl DataLines {
    fn new(max: usize) -> DataLines {
        DataLines {
            max,
            in_header: true,
            partial: Vec::new(),
            skipping: false,
        }
    }

    /// Takes the complete lines of `input` and keeps an unfinished tail. Returns
    /// the bytes used (up to the terminator line, so pipelined commands after it
    /// stay unread) and whether the terminator was seen.
    fn feed<S: Sink>(
        &mut self,
        input: &[u8],
        out: &mut S,
        flaws: &mut BodyFlaws,
    ) -> std::io::Result<(usize, bool)> {
        let mut start = 0;
        while let Some(i) = memchr::memchr(b'\n', &input[start..]) {
            let end = start + i + 1;
            let done = if self.skipping || self.partial.len() + (end - start) > MAX_DATA_LINE {
                self.skipping = false;
                self.partial.clear();
                flaws.line_too_long = true;
                false
            } else if self.partial.is_empty() {
                self.line(&input[start..end], out, flaws)?
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&input[start..end]);
                let done = self.line(&line, out, flaws)?;
                line.clear();
                self.partial = line;
                done
            };
            start = end;
            if done {
                return Ok((end, true));
            }
        }
        let tail = &input[start..];
        if !self.skipping && self.partial.len() + tail.len() <= MAX_DATA_LINE {
            self.partial.extend_from_slice(tail);
        } else {
            self.skipping = true;
            self.partial = Vec::new();
        }
        Ok((input.len(), false))
    }

    /// One complete line (ending in `\n`); true for the terminator.
    fn line<S: Sink>(
        &mut self,
        line: &[u8],
        out: &mut S,
        flaws: &mut BodyFlaws,
    ) -> std::io::Result<bool> {
        if line == b".\r\n" {
            return Ok(true);
        }
        let content = line.strip_prefix(b".").unwrap_or(line);
        flaws.scan(content);
        if self.in_header {
            if content == b"\r\n" || content == b"\n" {
                self.in_header = false;
            } else if out.len() + content.len() > MAX_HEADER_BYTES {
                flaws.header_too_big = true;
            }
        }
        if out.len() + content.len() > self.max {
            flaws.too_big = true;
        } else if !flaws.too_big {
            out.put(content)?;
        }
        Ok(false)
    }
}

/// Reads a BDAT chunk of exactly `size` bytes, appending it to `out` while the
/// total stays within `max` (the rest is read and discarded, and `too_big` set).
/// False if the client closed the connection first. The caller scans the whole
/// message for flaws after the last chunk (a CRLF may straddle two chunks).
pub async fn read_chunk<R: AsyncBufRead + Unpin, S: Sink>(
    r: &mut R,
    size: u64,
    max: usize,
    out: &mut S,
    flaws: &mut BodyFlaws,
) -> std::io::Result<bool> {
    let keep = !flaws.too_big && out.len() as u64 + size <= max as u64;
    if !keep {
        flaws.too_big = true;
        let copied = tokio::io::copy(&mut r.take(size), &mut tokio::io::sink()).await?;
        return Ok(copied == size);
    }
    let mut left = size;
    while left > 0 {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok(false);
        }
        let n = avail.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        out.put(&avail[..n])?;
        r.consume(n);
        left -= n as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn data(input: &[u8], max: usize) -> (DataEnd, Vec<u8>, BodyFlaws) {
        let mut r = tokio::io::BufReader::new(input);
        let (mut out, mut flaws) = (Vec::new(), BodyFlaws::default());
        let end = read_data(&mut r, max, &mut out, &mut flaws).await.unwrap();
        (end, out, flaws)
    }

    #[tokio::test]
    async fn lines_are_limited_and_the_rest_discarded() {
        let mut r = tokio::io::BufReader::with_capacity(
            16,
            &b"short\r\nthis line is far too long for the limit\r\nnext\r\n"[..],
        );
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut r, 20, &mut buf).await.unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"short\r\n");
        assert_eq!(
            read_line(&mut r, 20, &mut buf).await.unwrap(),
            Line::TooLong
        );
        assert_eq!(
            read_line(&mut r, 20, &mut buf).await.unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"next\r\n");
        assert_eq!(read_line(&mut r, 20, &mut buf).await.unwrap(), Line::Eof);
    }

    #[tokio::test]
    async fn data_is_unstuffed_and_ends_only_at_crlf_dot_crlf() {
        let (end, out, flaws) = data(
            b"Subject: x\r\n\r\n..leading dot\r\nbody\r\n.\r\nNOOP\r\n",
            1000,
        )
        .await;
        assert_eq!(end, DataEnd::Complete);
        assert_eq!(out, b"Subject: x\r\n\r\n.leading dot\r\nbody\r\n");
        assert_eq!(flaws, BodyFlaws::default());
    }

    #[tokio::test]
    async fn smuggling_attempts_are_flaws_not_terminators() {
        let (end, out, flaws) =
            data(b"Subject: x\r\n\r\nhi\n.\nMAIL FROM:<a@b>\r\n.\r\n", 1000).await;
        assert_eq!(end, DataEnd::Complete);
        assert!(flaws.bare_newline);
        assert!(
            out.ends_with(b"MAIL FROM:<a@b>\r\n"),
            "the smuggled command stayed in the body"
        );
        let (_, _, flaws) = data(b"a\rb\r\n.\r\n", 1000).await;
        assert!(flaws.bare_newline, "bare CR");
    }

    #[tokio::test]
    async fn nul_eight_bit_size_and_header_flaws() {
        let (_, _, f) = data(b"a\x00b\r\n.\r\n", 1000).await;
        assert!(f.nul && !f.eight_bit);
        let (_, _, f) = data("Subject: caf\u{e9}\r\n\r\n.\r\n".as_bytes(), 1000).await;
        assert!(f.eight_bit && !f.nul);
        let (end, out, f) = data(
            &[
                &b"x".repeat(100)[..],
                b"\r\n",
                &b"y".repeat(100)[..],
                b"\r\n.\r\n",
            ]
            .concat(),
            150,
        )
        .await;
        assert_eq!(end, DataEnd::Complete);
        assert!(f.too_big);
        assert!(out.len() <= 150);
        let huge_header: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("X-H{i}: {}\r\n", "v".repeat(60)).into_bytes())
            .collect();
        let (_, _, f) = data(&[&huge_header[..], b"\r\nbody\r\n.\r\n"].concat(), 1 << 30).await;
        assert!(f.header_too_big);
        let (end, _, _) = data(b"unterminated\r\n", 100).await;
        assert_eq!(end, DataEnd::Eof);
    }

    #[tokio::test]
    async fn a_line_over_the_limit_is_a_flaw_and_the_data_still_ends() {
        let long = [&b"a".repeat(MAX_DATA_LINE + 10)[..], b"\r\n"].concat();
        let input = [&b"Subject: x\r\n\r\n"[..], &long, b"after\r\n.\r\nQUIT\r\n"].concat();
        let mut r = tokio::io::BufReader::with_capacity(4096, &input[..]);
        let (mut out, mut flaws) = (Vec::new(), BodyFlaws::default());
        let end = read_data(&mut r, 1 << 30, &mut out, &mut flaws)
            .await
            .unwrap();
        assert_eq!(end, DataEnd::Complete);
        assert!(flaws.line_too_long);
        assert!(
            out.ends_with(b"after\r\n"),
            "the lines after it were read as data"
        );
        let mut rest = String::new();
        r.read_to_string(&mut rest).await.unwrap();
        assert_eq!(
            rest, "QUIT\r\n",
            "nothing after the terminator was consumed"
        );
    }

    #[tokio::test]
    async fn chunks_are_exact_and_bounded() {
        let mut r = tokio::io::BufReader::new(&b"0123456789NEXT"[..]);
        let (mut out, mut flaws) = (Vec::new(), BodyFlaws::default());
        assert!(
            read_chunk(&mut r, 4, 100, &mut out, &mut flaws)
                .await
                .unwrap()
        );
        assert!(
            read_chunk(&mut r, 6, 8, &mut out, &mut flaws)
                .await
                .unwrap()
        );
        assert!(flaws.too_big);
        assert_eq!(out, b"0123");
        let mut rest = String::new();
        r.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "NEXT", "the discarded chunk was consumed exactly");
        let mut r = tokio::io::BufReader::new(&b"abc"[..]);
        assert!(
            !read_chunk(&mut r, 10, 100, &mut Vec::new(), &mut BodyFlaws::default())
                .await
                .unwrap()
        );
    }
}

#[cfg(test)]
mod prop {
    use proptest::prelude::*;
    use tokio::io::AsyncReadExt;

    use super::*;

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    proptest! {
        /// Any bytes as command input: framing stays within the limit and the
        /// command parser answers every line with a request or an error.
        #[test]
        fn command_lines_never_panic(input in proptest::collection::vec(any::<u8>(), 0..2048), max in 1usize..600) {
            block_on(async {
                let mut r = tokio::io::BufReader::with_capacity(64, &input[..]);
                let mut line = Vec::new();
                for _ in 0..input.len() + 1 {
                    match read_line(&mut r, max, &mut line).await.unwrap() {
                        Line::Eof => break,
                        Line::TooLong => {}
                        Line::Complete => {
                            prop_assert!(line.len() <= max);
                            let _ = smtp_proto::Request::parse(&mut line.iter());
                        }
                    }
                }
                Ok(())
            })?;
        }

        /// DATA framing does not depend on how the input arrives: read through a
        /// buffer of any size it gives the same body, flaws and end as in one read,
        /// and leaves exactly the bytes after the terminator unread.
        #[test]
        fn data_is_the_same_however_it_is_split(
            lines in proptest::collection::vec(prop_oneof![
                Just(b".\r\n".to_vec()), Just(b"..x\r\n".to_vec()), Just(b"\r\n".to_vec()),
                Just(b"bare\n".to_vec()), Just(b"cr\rx\r\n".to_vec()), Just(b"n\x00ul\r\n".to_vec()),
                Just("caf\u{e9}\r\n".as_bytes().to_vec()),
                proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'.'), Just(b'\r'), Just(b'\n'), any::<u8>()], 0..120),
            ], 0..40),
            capacity in 1usize..80,
            max in 1usize..3000,
        ) {
            let input = lines.concat();
            let read = |capacity: usize| block_on(async {
                let mut r = tokio::io::BufReader::with_capacity(capacity, &input[..]);
                let (mut out, mut flaws) = (Vec::new(), BodyFlaws::default());
                let end = read_data(&mut r, max, &mut out, &mut flaws).await.unwrap();
                let mut rest = Vec::new();
                r.read_to_end(&mut rest).await.unwrap();
                (end, out, flaws, rest)
            });
            let whole = read(1 << 16);
            prop_assert_eq!(read(capacity), whole);
        }

        /// The vectorised flaw scan agrees with a byte-by-byte reading of its rules.
        #[test]
        fn scan_matches_the_bytewise_rules(bytes in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(0u8), Just(0x80u8), any::<u8>()], 0..200)) {
            let mut fast = BodyFlaws::default();
            fast.scan(&bytes);
            let mut slow = BodyFlaws::default();
            for (i, &b) in bytes.iter().enumerate() {
                match b {
                    0 => slow.nul = true,
                    b'\n' if i == 0 || bytes[i - 1] != b'\r' => slow.bare_newline = true,
                    b'\r' if bytes.get(i + 1) != Some(&b'\n') => slow.bare_newline = true,
                    0x80.. => slow.eight_bit = true,
                    _ => {}
                }
            }
            prop_assert_eq!(fast, slow);
        }

        /// Any bytes as DATA: the body kept never exceeds the limit, and data without
        /// a CRLF.CRLF line never completes.
        #[test]
        fn data_never_panics_or_overflows(input in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(0u8), any::<u8>()], 0..4096), max in 1usize..2048) {
            block_on(async {
                let mut r = tokio::io::BufReader::with_capacity(64, &input[..]);
                let (mut out, mut flaws) = (Vec::new(), BodyFlaws::default());
                let end = read_data(&mut r, max, &mut out, &mut flaws).await.unwrap();
                prop_assert!(out.len() <= max);
                let terminated = input.windows(3).any(|w| w == b".\r\n");
                if end == DataEnd::Complete {
                    prop_assert!(terminated);
                }
                Ok(())
            })?;
        }
    }
}
