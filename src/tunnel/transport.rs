//! A session's TLS connection split in two halves, so that its two directions run in parallel.
//!
//! rustls (every system but macOS): the connection's state is shared behind a lock held only
//! while records are sealed or opened; the socket's reads and writes happen outside it, on the
//! socket's own halves, and in large pieces (up to [`RAW`] bytes a read, a whole batch of
//! records a write). macOS (native-tls): tokio's split, one lock around the stream.

use crate::azure::tls::Raw;

/// Ciphertext is read from the socket up to this much at a time.
#[cfg(not(target_os = "macos"))]
pub const RAW: usize = 2 * super::READ_BATCH;

#[cfg(target_os = "macos")]
pub type Reader = tokio::io::ReadHalf<Raw>;
#[cfg(target_os = "macos")]
pub type Writer = tokio::io::WriteHalf<Raw>;

/// The two halves of `raw`.
#[cfg(target_os = "macos")]
pub fn split(raw: Raw) -> (Reader, Writer) {
    tokio::io::split(raw)
}

#[cfg(not(target_os = "macos"))]
pub use rustls_halves::{Reader, Writer, split};

#[cfg(not(target_os = "macos"))]
mod rustls_halves {
    use std::io::{self, Read, Write};
    use std::pin::Pin;
    use std::sync::{Arc, Mutex, MutexGuard};
    use std::task::{Context, Poll, ready};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
    use tokio_rustls::rustls::ClientConnection;

    use super::{RAW, Raw};

    type Conn = Arc<Mutex<ClientConnection>>;

    fn lock(c: &Conn) -> MutexGuard<'_, ClientConnection> {
        c.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    /// The reading half: ciphertext from the socket, plaintext out.
    pub struct Reader {
        conn: Conn,
        tcp: OwnedReadHalf,
        raw: Box<[u8]>,
        start: usize,
        end: usize,
        eof: bool,
    }

    /// The writing half: plaintext in, sealed records to the socket.
    pub struct Writer {
        conn: Conn,
        tcp: OwnedWriteHalf,
        out: Vec<u8>,
        sent: usize,
        closing: bool,
    }

    /// The halves of `raw` (whatever rustls has buffered stays with them).
    pub fn split(raw: Raw) -> (Reader, Writer) {
        let (tcp, conn) = raw.into_inner();
        let conn = Arc::new(Mutex::new(conn));
        let (r, w) = tcp.into_split();
        (
            Reader {
                conn: Arc::clone(&conn),
                tcp: r,
                raw: vec![0; RAW].into_boxed_slice(),
                start: 0,
                end: 0,
                eof: false,
            },
            Writer {
                conn,
                tcp: w,
                out: Vec::new(),
                sent: 0,
                closing: false,
            },
        )
    }

    impl Reader {
        /// Plaintext rustls holds, into `out`: Some(result) when there was any, or the end.
        fn plaintext(&mut self, out: &mut ReadBuf<'_>) -> io::Result<Option<()>> {
            let mut c = lock(&self.conn);
            loop {
                match c.reader().read(out.initialize_unfilled()) {
                    Ok(n) => {
                        // 0: the service's close_notify, the end
                        out.advance(n);
                        return Ok(Some(()));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if self.start < self.end {
                    let mut pending = self.raw.get(self.start..self.end).unwrap_or_default();
                    let n = c.read_tls(&mut pending)?;
                    // nothing taken (after its close_notify): the rest is not read
                    self.start = if n == 0 {
                        self.end
                    } else {
                        self.start.saturating_add(n)
                    };
                    c.process_new_packets().map_err(invalid)?;
                    continue;
                }
                if self.eof {
                    let _ = c.read_tls(&mut io::empty())?;
                    c.process_new_packets().map_err(invalid)?;
                    return match c.reader().read(out.initialize_unfilled()) {
                        Ok(n) => {
                            out.advance(n);
                            Ok(Some(()))
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Some(())),
                        Err(e) => Err(e),
                    };
                }
                return Ok(None);
            }
        }
    }

    impl AsyncRead for Reader {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            out: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let me = self.get_mut();
            if out.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            loop {
                if me.plaintext(out)?.is_some() {
                    return Poll::Ready(Ok(()));
                }
                // the socket, outside the lock
                let mut rb = ReadBuf::new(&mut me.raw);
                ready!(Pin::new(&mut me.tcp).poll_read(cx, &mut rb))?;
                let n = rb.filled().len();
                me.start = 0;
                me.end = n;
                me.eof = n == 0;
            }
        }
    }

    impl Writer {
        /// Sends what is sealed and not yet sent.
        fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            while self.sent < self.out.len() {
                let rest = self.out.get(self.sent..).unwrap_or_default();
                let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, rest))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.sent = self.sent.saturating_add(n);
            }
            self.out.clear();
            self.sent = 0;
            Poll::Ready(Ok(()))
        }

        /// Moves the records rustls has sealed into `out`.
        fn take_sealed(&mut self, c: &mut ClientConnection) -> io::Result<()> {
            while c.wants_write() {
                c.write_tls(&mut self.out)?;
            }
            Ok(())
        }
    }

    impl AsyncWrite for Writer {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<io::Result<usize>> {
            let me = self.get_mut();
            ready!(me.poll_send(cx))?;
            let n = {
                let conn = Arc::clone(&me.conn);
                let mut c = lock(&conn);
                let n = c.writer().write(data)?;
                me.take_sealed(&mut c)?;
                n
            };
            // accepted: what is not sent now is sent by the next write or the flush
            match me.poll_send(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Ready(Ok(n)),
            }
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let me = self.get_mut();
            {
                let conn = Arc::clone(&me.conn);
                let mut c = lock(&conn);
                me.take_sealed(&mut c)?;
            }
            ready!(me.poll_send(cx))?;
            Pin::new(&mut me.tcp).poll_flush(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let me = self.get_mut();
            if !me.closing {
                me.closing = true;
                let conn = Arc::clone(&me.conn);
                let mut c = lock(&conn);
                c.send_close_notify();
                me.take_sealed(&mut c)?;
            }
            ready!(me.poll_send(cx))?;
            Pin::new(&mut me.tcp).poll_shutdown(cx)
        }
    }
}
