//! A websocket's TLS connection as two halves that run at once: rustls makes the handshake
//! (its unbuffered API) and then hands over the traffic keys (its kernel API); the records are
//! then sealed and opened by [`super::records`] in the halves' own buffers. The receiving half
//! reads the socket in large pieces and opens the records where they landed; the sending half
//! builds each record where it is sent from. A TLS 1.3 key update from the service is followed
//! (rustls computes the next keys), and answered when it asks; session tickets are not kept.

use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use tokio_rustls::rustls::kernel::KernelConnection;
use tokio_rustls::rustls::unbuffered::{ConnectionState, EncodeError, UnbufferedStatus};
use tokio_rustls::rustls::{ClientConfig, ConnectionTrafficSecrets, pki_types::ServerName};

use super::records::{
    ALERT, APPLICATION_DATA, After, HANDSHAKE, KEY_UPDATE, MAX_HANDSHAKE, MAX_PLAIN, Opener,
    RecordError, Sealer, Version, invalid, next_message,
};

/// Ciphertext is read from the socket up to this much at a time (and the handshake's
/// messages, up to this much at once).
pub const READ: usize = 128 * 1024;
/// What bprof's own handshake messages may take.
const MAX_ENCODED: usize = 64 * 1024;

/// What both halves share: rustls's state, for the next keys; the receiving half's note that
/// the service asked for the sending half's keys to change.
struct Shared {
    kernel: Mutex<KernelConnection<ClientConnectionData>>,
    update: AtomicBool,
}

impl Shared {
    /// The next keys for sending (`tx`) or receiving, from rustls.
    fn next_keys(&self, tx: bool) -> io::Result<(u64, ConnectionTrafficSecrets)> {
        let mut kernel = self
            .kernel
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = if tx {
            kernel.update_tx_secret()
        } else {
            kernel.update_rx_secret()
        };
        next.map_err(|e| invalid(e.to_string()))
    }
}

/// The receiving half.
pub struct Incoming {
    tcp: OwnedReadHalf,
    open: Opener,
    buf: Box<[u8]>,
    /// The records not opened yet are `buf[start..end]`.
    start: usize,
    end: usize,
    /// The application data of the last [`Incoming::read`], in `buf`.
    pieces: Vec<Range<usize>>,
    /// A handshake message arriving in parts.
    hs: Vec<u8>,
    /// The service's close_notify came.
    ended: bool,
    /// The next read gives `pieces` again (see [`Incoming::give_back`]).
    again: bool,
    shared: Arc<Shared>,
}

/// The sending half.
pub struct Outgoing {
    tcp: OwnedWriteHalf,
    seal: Sealer,
    /// Records sealed and not sent yet.
    out: Vec<u8>,
    closed: bool,
    shared: Arc<Shared>,
}

/// The TLS handshake with `name` over `tcp` (certificate checked as rustls checks it), then
/// the connection in halves. Errors are the reason, for messages.
pub async fn handshake(
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    mut tcp: TcpStream,
) -> Result<(Incoming, Outgoing), String> {
    let mut conn = UnbufferedClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; READ].into_boxed_slice();
    let mut used = 0usize;
    let mut out = Vec::new();
    loop {
        enum Next {
            Again,
            Send,
            Read,
            Done,
        }
        let UnbufferedStatus { discard, state } =
            conn.process_tls_records(buf.get_mut(..used).unwrap_or_default());
        let next = match state.map_err(|e| e.to_string())? {
            ConnectionState::EncodeTlsData(mut e) => {
                let at = out.len();
                let mut room = 4096;
                loop {
                    out.resize(at.saturating_add(room), 0);
                    match e.encode(out.get_mut(at..).unwrap_or_default()) {
                        Ok(n) => {
                            out.truncate(at.saturating_add(n));
                            break;
                        }
                        // more room once, as much as asked (never less, never past the bound)
                        Err(EncodeError::InsufficientSize(s))
                            if s.required_size > room && s.required_size <= MAX_ENCODED =>
                        {
                            room = s.required_size;
                        }
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Next::Again
            }
            ConnectionState::TransmitTlsData(t) => {
                // sent right below, before anything else happens
                t.done();
                Next::Send
            }
            ConnectionState::BlockedHandshake => Next::Read,
            ConnectionState::WriteTraffic(_) => Next::Done,
            ConnectionState::PeerClosed | ConnectionState::Closed => {
                return Err("the server closed the connection during the handshake".into());
            }
            _ => return Err("the server sent data before the handshake was over".into()),
        };
        buf.copy_within(discard.min(used)..used, 0);
        used = used.saturating_sub(discard);
        match next {
            Next::Again => {}
            Next::Send => {
                tcp.write_all(&out).await.map_err(|e| e.to_string())?;
                out.clear();
            }
            Next::Read => {
                let room = buf.get_mut(used..).unwrap_or_default();
                if room.is_empty() {
                    return Err("a handshake message is too long".into());
                }
                match tcp.read(room).await.map_err(|e| e.to_string())? {
                    0 => return Err("the connection ended during the handshake".into()),
                    n => used = used.saturating_add(n),
                }
            }
            Next::Done => break,
        }
    }
    let (secrets, kernel) = conn
        .dangerous_into_kernel_connection()
        .map_err(|e| e.to_string())?;
    let keys = || -> Result<(Sealer, Opener), RecordError> {
        let version = Version::of(kernel.protocol_version())?;
        Ok((
            Sealer::new(version, &secrets.tx)?,
            Opener::new(version, &secrets.rx)?,
        ))
    };
    let (seal, open) = keys().map_err(|e| e.to_string())?;
    drop(secrets);
    let shared = Arc::new(Shared {
        kernel: Mutex::new(kernel),
        update: AtomicBool::new(false),
    });
    let (r, w) = tcp.into_split();
    Ok((
        Incoming {
            tcp: r,
            open,
            buf,
            start: 0,
            // what came after the handshake's last message
            end: used,
            pieces: Vec::new(),
            hs: Vec::new(),
            ended: false,
            again: false,
            shared: Arc::clone(&shared),
        },
        Outgoing {
            tcp: w,
            seal,
            out: Vec::new(),
            closed: false,
            shared,
        },
    ))
}

impl Incoming {
    /// Waits for the service's next application data: true when there is some (see
    /// [`Incoming::pieces`]), false at its end (its close_notify, or the connection's end).
    pub async fn read(&mut self) -> io::Result<bool> {
        if std::mem::take(&mut self.again) {
            return Ok(true);
        }
        self.pieces.clear();
        loop {
            self.open_all()?;
            if !self.pieces.is_empty() {
                return Ok(true);
            }
            if self.ended {
                return Ok(false);
            }
            // what is left is part of a record: to the front, and read after it
            self.buf.copy_within(self.start..self.end, 0);
            self.end = self.end.saturating_sub(self.start);
            self.start = 0;
            let room = self.buf.get_mut(self.end..).unwrap_or_default();
            if room.is_empty() {
                return Err(RecordError::TooLong(self.end).into());
            }
            match self.tcp.read(room).await? {
                0 => return Ok(false),
                n => self.end = self.end.saturating_add(n),
            }
        }
    }

    /// The application data the last [`Incoming::read`] gave, in order.
    pub fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        self.pieces
            .iter()
            .map(|r| self.buf.get(r.clone()).unwrap_or_default())
    }

    /// The last read's data after its first `taken` bytes is given again by the next
    /// [`Incoming::read`] (what the websocket's upgrade did not take is the tunnel's).
    pub fn give_back(&mut self, mut taken: usize) {
        for r in &mut self.pieces {
            let skip = taken.min(r.len());
            taken = taken.saturating_sub(skip);
            r.start = r.start.saturating_add(skip);
        }
        self.pieces.retain(|r| !r.is_empty());
        self.again = !self.pieces.is_empty();
    }

    /// Opens every complete record read.
    fn open_all(&mut self) -> io::Result<()> {
        while !self.ended {
            let at = self.start;
            let Some(rest) = self.buf.get_mut(at..self.end) else {
                break;
            };
            let Some(r) = self.open.open(rest)? else {
                break;
            };
            self.start = at.saturating_add(r.len);
            let plain = at.saturating_add(r.plain.start)..at.saturating_add(r.plain.end);
            match r.typ {
                APPLICATION_DATA if plain.is_empty() => {}
                APPLICATION_DATA => self.pieces.push(plain),
                HANDSHAKE => self.handshake(plain)?,
                ALERT => self.alert(plain)?,
                t => return Err(RecordError::Type(t).into()),
            }
        }
        Ok(())
    }

    /// A handshake record after the handshake: session tickets (not kept), a key update
    /// (TLS 1.3), a request to renegotiate (TLS 1.2: not done, which RFC 5246 allows).
    fn handshake(&mut self, plain: Range<usize>) -> io::Result<()> {
        let bytes = self.buf.get(plain).unwrap_or_default();
        if self.hs.len().saturating_add(bytes.len()) > MAX_HANDSHAKE {
            return Err(invalid(
                "a handshake message after the handshake is too long",
            ));
        }
        self.hs.extend_from_slice(bytes);
        while let Some(message) = next_message(&mut self.hs, self.open.version())? {
            if let After::KeyUpdate { asked } = message {
                // the new keys start with the next record (RFC 8446 §5.1)
                if !self.hs.is_empty() {
                    return Err(invalid("a key update not at the end of its record"));
                }
                self.open.rekey(&self.shared.next_keys(false)?)?;
                if asked {
                    self.shared.update.store(true, Ordering::SeqCst);
                }
            }
        }
        Ok(())
    }

    /// An alert: close_notify ends the service's side; user_canceled is passed over; any other
    /// is the end, with its number.
    fn alert(&mut self, plain: Range<usize>) -> io::Result<()> {
        match self.buf.get(plain) {
            Some(&[_, 0]) => {
                self.ended = true;
                Ok(())
            }
            Some(&[_, 90]) => Ok(()),
            Some(&[_, d]) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!("the service ended TLS with alert {d}"),
            )),
            _ => Err(invalid("a malformed alert")),
        }
    }
}

impl Outgoing {
    /// Adds one record of application data, its plaintext (at most [`MAX_PLAIN`] bytes)
    /// appended by `fill`; sent by [`Outgoing::send`].
    pub fn record(&mut self, fill: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> io::Result<()> {
        self.rekey_if_due()?;
        self.seal.seal(APPLICATION_DATA, &mut self.out, fill)
    }

    /// Adds `data` as records.
    pub fn data(&mut self, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(MAX_PLAIN) {
            self.record(|o| {
                o.extend_from_slice(chunk);
                Ok(())
            })?;
        }
        Ok(())
    }

    /// For tests: as if the keys had sealed all the records they may (the next record
    /// changes them first, or fails on TLS 1.2).
    #[doc(hidden)]
    pub fn wear_out(&mut self) {
        self.seal.wear_out();
    }

    /// For tests: whether the keys are worn (they change before the next record).
    #[doc(hidden)]
    pub fn worn(&self) -> bool {
        self.seal.worn()
    }

    /// Sends the records added so far.
    pub async fn send(&mut self) -> io::Result<()> {
        self.tcp.write_all(&self.out).await?;
        self.out.clear();
        Ok(())
    }

    /// Sends close_notify (once) and what is left, then shuts the socket's sending side.
    pub async fn close(&mut self) -> io::Result<()> {
        if !self.closed {
            self.closed = true;
            self.seal.seal(ALERT, &mut self.out, |o| {
                o.extend_from_slice(&[1, 0]);
                Ok(())
            })?;
        }
        self.send().await?;
        self.tcp.shutdown().await
    }

    /// A key update of our own when the service asked for one or the keys are worn (TLS 1.3:
    /// the message under the old keys, everything after under the new); TLS 1.2 cannot, and
    /// ends instead.
    fn rekey_if_due(&mut self) -> io::Result<()> {
        let asked = self.shared.update.swap(false, Ordering::SeqCst);
        if !asked && !self.seal.worn() {
            return Ok(());
        }
        if self.seal.version() != Version::Tls13 {
            return Err(RecordError::Exhausted.into());
        }
        self.seal.seal(HANDSHAKE, &mut self.out, |o| {
            o.extend_from_slice(&[KEY_UPDATE, 0, 0, 1, 0]);
            Ok(())
        })?;
        self.seal.rekey(&self.shared.next_keys(true)?)?;
        Ok(())
    }
}
