//! macOS: the websocket's TLS connection (Security.framework, through native-tls) in halves
//! with the interface of the rustls ones (`halves.rs`): tokio's split, one lock around the
//! stream, plaintext in and out.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

type Raw = tokio_native_tls::TlsStream<TcpStream>;

/// Plaintext is read up to this much at a time.
pub const READ: usize = 64 * 1024;

/// The receiving half.
pub struct Incoming {
    r: ReadHalf<Raw>,
    buf: Box<[u8]>,
    /// The last read's data is `buf[from..n]`.
    from: usize,
    n: usize,
    /// The next read gives it again (see [`Incoming::give_back`]).
    again: bool,
}

/// The sending half.
pub struct Outgoing {
    w: WriteHalf<Raw>,
    out: Vec<u8>,
}

/// The connection in halves.
pub fn split(raw: Raw) -> (Incoming, Outgoing) {
    let (r, w) = tokio::io::split(raw);
    (
        Incoming {
            r,
            buf: vec![0u8; READ].into_boxed_slice(),
            from: 0,
            n: 0,
            again: false,
        },
        Outgoing { w, out: Vec::new() },
    )
}

impl Incoming {
    /// Waits for the service's next bytes: false at its end.
    pub async fn read(&mut self) -> io::Result<bool> {
        if std::mem::take(&mut self.again) {
            return Ok(true);
        }
        (self.from, self.n) = (0, 0);
        self.n = self.r.read(&mut self.buf).await?;
        Ok(self.n > 0)
    }

    /// What the last [`Incoming::read`] gave.
    pub fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        self.buf
            .get(self.from..self.n)
            .into_iter()
            .filter(|p| !p.is_empty())
    }

    /// The last read's data after its first `taken` bytes is given again by the next read.
    pub fn give_back(&mut self, taken: usize) {
        self.from = self.from.saturating_add(taken).min(self.n);
        self.again = self.from < self.n;
    }
}

impl Outgoing {
    /// Adds plaintext that `fill` appends; sent by [`Outgoing::send`].
    pub fn record(&mut self, fill: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> io::Result<()> {
        fill(&mut self.out)
    }

    pub fn data(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.extend_from_slice(data);
        Ok(())
    }

    pub async fn send(&mut self) -> io::Result<()> {
        self.w.write_all(&self.out).await?;
        self.out.clear();
        self.w.flush().await
    }

    pub async fn close(&mut self) -> io::Result<()> {
        self.send().await?;
        self.w.shutdown().await
    }
}
