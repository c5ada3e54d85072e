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
}

impl BodyFlaws {
    /// Checks whole lines (DATA) or a whole message (BDAT) for flaws.
    pub fn scan(&mut self, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                0 => self.nul = true,
                b'\n' if i == 0 || bytes[i - 1] != b'\r' => self.bare_newline = true,
                b'\r' if bytes.get(i + 1) != Some(&b'\n') => self.bare_newline = true,
                0x80.. => self.eight_bit = true,
                _ => {}
            }
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

/// Reads a DATA body up to the `CRLF.CRLF` terminator into `out` (unstuffed),
/// keeping at most `max` bytes and recording flaws. Only `.` + CRLF ends the
/// data; `.` + bare LF is data (and a flaw).
pub async fn read_data<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
    out: &mut Vec<u8>,
    flaws: &mut BodyFlaws,
) -> std::io::Result<DataEnd> {
    let mut line = Vec::with_capacity(1024);
    let mut in_header = true;
    loop {
        match read_line(r, MAX_DATA_LINE, &mut line).await? {
            Line::Eof => return Ok(DataEnd::Eof),
            Line::TooLong => {
                flaws.too_big = flaws.too_big || out.len() + MAX_DATA_LINE > max;
                continue;
            }
            Line::Complete => {}
        }
        if line == b".\r\n" {
            return Ok(DataEnd::Complete);
        }
        if !line.ends_with(b"\r\n") || line.len() < 2 {
            flaws.bare_newline = true;
        }
        let content = if line.first() == Some(&b'.') {
            &line[1..]
        } else {
            &line[..]
        };
        flaws.scan(content);
        if in_header {
            if content == b"\r\n" || content == b"\n" {
                in_header = false;
            } else if out.len() + content.len() > MAX_HEADER_BYTES {
                flaws.header_too_big = true;
            }
        }
        if out.len() + content.len() > max {
            flaws.too_big = true;
        } else if !flaws.too_big {
            out.extend_from_slice(content);
        }
    }
}

/// Reads a BDAT chunk of exactly `size` bytes, appending it to `out` while the
/// total stays within `max` (the rest is read and discarded, and `too_big` set).
/// False if the client closed the connection first. The caller scans the whole
/// message for flaws after the last chunk (a CRLF may straddle two chunks).
pub async fn read_chunk<R: AsyncBufRead + Unpin>(
    r: &mut R,
    size: u64,
    max: usize,
    out: &mut Vec<u8>,
    flaws: &mut BodyFlaws,
) -> std::io::Result<bool> {
    let keep = !flaws.too_big && out.len() as u64 + size <= max as u64;
    if !keep {
        flaws.too_big = true;
        let copied = tokio::io::copy(&mut r.take(size), &mut tokio::io::sink()).await?;
        return Ok(copied == size);
    }
    let got = r.take(size).read_to_end(out).await?;
    Ok(got as u64 == size)
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
