//! The connection under a session: the listener's stream, or that stream with
//! COMPRESS=DEFLATE (RFC 4978) raw deflate in both directions once the client asks.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::net::listener::Stream;

/// What a session reads from and writes to.
pub enum Conn {
    Raw(Stream),
    Deflate(Box<Deflate>),
}

impl Conn {
    /// Whether COMPRESS is already active.
    pub fn is_compressed(&self) -> bool {
        matches!(self, Conn::Deflate(_))
    }

    /// Turns compression on (after the tagged OK went out uncompressed).
    pub fn compress(self) -> Conn {
        match self {
            Conn::Raw(s) => Conn::Deflate(Box::new(Deflate::new(s))),
            c => c,
        }
    }
}

/// Raw deflate (no zlib header, RFC 1951) over a stream; each flush ends with a
/// sync flush so the client can decode every response as it arrives.
pub struct Deflate {
    inner: Stream,
    comp: Compress,
    decomp: Decompress,
    input: Vec<u8>,
    input_pos: usize,
    pending: Vec<u8>,
    scratch: Vec<u8>,
}

impl Deflate {
    fn new(inner: Stream) -> Deflate {
        Deflate {
            inner,
            comp: Compress::new(Compression::default(), false),
            decomp: Decompress::new(false),
            input: Vec::new(),
            input_pos: 0,
            pending: Vec::new(),
            scratch: vec![0; 16 * 1024],
        }
    }

    fn deflate(&mut self, mut data: &[u8], flush: FlushCompress) -> io::Result<()> {
        loop {
            self.pending.reserve(data.len() / 2 + 1024);
            let before_in = self.comp.total_in();
            let before_out = self.comp.total_out();
            self.comp
                .compress_vec(data, &mut self.pending, flush)
                .map_err(io::Error::other)?;
            let used = (self.comp.total_in() - before_in) as usize;
            let made = (self.comp.total_out() - before_out) as usize;
            data = &data[used..];
            // Done once all input is taken and the flush left spare room behind.
            if data.is_empty() && (made == 0 || self.pending.len() < self.pending.capacity()) {
                return Ok(());
            }
        }
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Deflate {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            // Inflating what is already buffered never waits, and a small read can
            // inflate to gigabytes (a deflate bomb): each chunk spends the task's
            // scheduling budget, so the session yields to the others every so often
            // instead of holding the worker thread for seconds. The inflater runs
            // even with no input left: it may hold output that did not fit into the
            // last buffer.
            let coop = ready!(tokio::task::coop::poll_proceed(cx));
            let before_in = me.decomp.total_in();
            let before_out = me.decomp.total_out();
            let out = buf.initialize_unfilled();
            me.decomp
                .decompress(&me.input[me.input_pos..], out, FlushDecompress::None)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let used = (me.decomp.total_in() - before_in) as usize;
            let made = (me.decomp.total_out() - before_out) as usize;
            me.input_pos += used;
            buf.advance(made);
            if made > 0 {
                coop.made_progress();
                return Poll::Ready(Ok(()));
            }
            if used > 0 {
                continue;
            }
            let mut raw = ReadBuf::new(&mut me.scratch);
            ready!(Pin::new(&mut me.inner).poll_read(cx, &mut raw))?;
            if raw.filled().is_empty() {
                return Poll::Ready(Ok(()));
            }
            // Keep what the inflater has not taken yet (it may need more input to
            // make progress on it).
            me.input.drain(..me.input_pos);
            me.input.extend_from_slice(raw.filled());
            me.input_pos = 0;
        }
    }
}

impl AsyncWrite for Deflate {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if me.pending.len() > 256 * 1024 {
            ready!(me.poll_drain(cx))?;
        }
        me.deflate(buf, FlushCompress::None)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        me.deflate(&[], FlushCompress::Sync)?;
        ready!(me.poll_drain(cx))?;
        Pin::new(&mut me.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        me.deflate(&[], FlushCompress::Sync)?;
        ready!(me.poll_drain(cx))?;
        Pin::new(&mut me.inner).poll_shutdown(cx)
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Raw(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Deflate(d) => Pin::new(d.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Raw(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Deflate(d) => Pin::new(d.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Raw(s) => Pin::new(s).poll_flush(cx),
            Conn::Deflate(d) => Pin::new(d.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Raw(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Deflate(d) => Pin::new(d.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    /// Issue 20.7: a 256 MiB line inflated from a 256 KiB stream, framed by the
    /// session's reader (a byte-by-byte scan), no longer holds the only worker
    /// thread: another task on the same thread gets many turns meanwhile. All of
    /// it is already received, so no read of it ever waits (the case that never
    /// yielded). Turns are counted, not timed: on a loaded machine a timer's
    /// lateness measured the other processes as much as this reader.
    #[tokio::test(flavor = "current_thread")]
    async fn inflating_a_bomb_lets_other_tasks_run() {
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..256 {
            enc.write_all(&chunk).unwrap();
        }
        enc.write_all(b"\r\n").unwrap();
        let bomb = enc.finish().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let mut deflate = Deflate::new(Stream::plain(tcp, Duration::from_secs(60)));
        deflate.input = bomb;
        let mut conn = Conn::Deflate(Box::new(deflate));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = done.clone();
        let other = tokio::spawn(async move {
            let mut turns = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                turns += 1;
                tokio::task::yield_now().await;
            }
            turns
        });
        tokio::task::yield_now().await;
        let mut reader = crate::imap::reader::Reader::new(1 << 20);
        reader.logged_in();
        let got = reader.next(&mut conn).await.unwrap();
        assert!(
            matches!(got, crate::imap::reader::Input::TooBig { .. }),
            "{got:?}"
        );
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(client);
        let turns = other.await.unwrap();
        // Without yielding: the turn before the read and none during it.
        assert!(turns >= 10, "the other task ran {turns} times");
    }
}
