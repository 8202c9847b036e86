//! The fake's websockets: the bytes to and from the backend (an echo, or TCP), pings, the byte
//! budget after which a connection is cut, the close, TLS key updates.

use super::*;

/// The connection with the bytes already read put back in front, for the websocket handshake;
/// it updates its TLS keys as [`Config::rekey_every`] says.
pub(super) struct Replay<S> {
    pub(super) prefix: Vec<u8>,
    pub(super) pos: usize,
    pub(super) inner: S,
    pub(super) rekey: Option<Rekey>,
}

pub(super) struct Rekey {
    pub(super) every: usize,
    pub(super) written: usize,
    pub(super) state: Shared,
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = buf.remaining().min(self.prefix.len() - self.pos);
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Replay<Tls> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            let me = &mut *self;
            if let Some(r) = &mut me.rekey {
                r.written += n;
                if r.written >= r.every {
                    r.written = 0;
                    // sent with the next record; the client must answer with its own
                    if me.inner.get_mut().1.refresh_traffic_keys().is_ok() {
                        lock(&r.state).key_updates += 1;
                    }
                }
            }
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

pub(super) type Ws = WebSocketStream<Replay<Tls>>;

/// A backend's byte stream (a TCP connection, or one end of the in-memory echo).
pub(super) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// For the writer half: a message to send, or the order to cut the connection (after the
/// messages before it have gone out).
pub(super) enum Out {
    Msg(Message),
    Cut,
}

/// How a websocket ends.
pub(super) enum End {
    /// Cut the TCP connection: no close frame, no close_notify, a reset.
    Cut,
    /// Close (this frame, if the close handshake is not under way yet), then shut TLS down.
    Close(Option<CloseFrame>),
    /// The close handshake is over (or given up): shut TLS down.
    Done,
}

/// The payload bytes a websocket may still carry before it is cut.
pub(super) struct Budget(Option<AtomicUsize>);

impl Budget {
    /// How many of `len` bytes may go, and whether the connection is to be cut after them.
    pub(super) fn take(&self, len: usize) -> (usize, bool) {
        let Some(left) = &self.0 else {
            return (len, false);
        };
        let before = left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| {
                Some(l.saturating_sub(len))
            })
            .unwrap_or_default();
        let n = before.min(len);
        (n, before - n == 0)
    }
}

/// Counts the websocket while it is open, however its task ends.
pub(super) struct Open(Shared);

impl Drop for Open {
    fn drop(&mut self) {
        let mut state = lock(&self.0);
        state.open_websockets = state.open_websockets.saturating_sub(1);
    }
}

pub(super) async fn websocket(
    ws: Ws,
    backend: Backend,
    ping_every: Option<Duration>,
    drop_after_bytes: Option<usize>,
    state: &Shared,
) {
    lock(state).open_websockets += 1;
    let _open = Open(state.clone());
    let (backend, mut echo_end): (Box<dyn Io>, _) = match backend {
        Backend::Echo => {
            let (near, far) = tokio::io::duplex(64 * 1024);
            (Box::new(near), Some(far))
        }
        Backend::Tcp(addr) => match TcpStream::connect(addr).await {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                (Box::new(tcp), None)
            }
            Err(e) => {
                lock(state)
                    .errors
                    .push(format!("websocket backend {addr}: {e}"));
                let mut ws = ws;
                let frame = CloseFrame {
                    code: CloseCode::Error,
                    reason: "backend unreachable".into(),
                };
                let _ = tokio::time::timeout(CLOSE_WAIT, ws.close(Some(frame))).await;
                return;
            }
        },
    };
    let (mut back_read, mut back_write) = tokio::io::split(backend);
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Out>(16);
    let budget = Budget(drop_after_bytes.map(AtomicUsize::new));

    let end = tokio::select! {
        end = client_to_backend(&mut stream, &mut back_write, &budget, state) => end,
        end = to_client(&mut sink, &mut out_rx) => end,
        end = backend_to_client(&mut back_read, &out_tx, &budget) => end,
        end = pinger(ping_every, &out_tx) => end,
        end = echo(&mut echo_end) => end,
    };
    let Ok(mut ws) = stream.reunite(sink) else {
        return;
    };
    match end {
        End::Cut => {
            // a reset, once the socket closes as `ws` drops
            let _ = ws.get_ref().inner.get_ref().0.tcp.set_zero_linger();
            return;
        }
        End::Close(frame) => {
            let _ = tokio::time::timeout(CLOSE_WAIT, ws.close(frame)).await;
        }
        End::Done => {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.get_mut().inner.shutdown()).await;
}

pub(super) async fn client_to_backend(
    stream: &mut futures_util::stream::SplitStream<Ws>,
    backend: &mut (impl AsyncWrite + Unpin),
    budget: &Budget,
    state: &Shared,
) -> End {
    while let Some(message) = stream.next().await {
        match message {
            Ok(Message::Binary(payload)) => {
                let (n, cut) = budget.take(payload.len());
                if backend.write_all(&payload[..n]).await.is_err() {
                    return End::Close(Some(CloseFrame {
                        code: CloseCode::Error,
                        reason: "backend gone".into(),
                    }));
                }
                if cut {
                    let _ = backend.flush().await;
                    return End::Cut;
                }
            }
            Ok(Message::Pong(_)) => lock(state).pongs += 1,
            // answered by tungstenite itself
            Ok(Message::Ping(_)) => {}
            Ok(Message::Text(_)) => {
                return End::Close(Some(CloseFrame {
                    code: CloseCode::Unsupported,
                    reason: "binary frames only".into(),
                }));
            }
            // the client closed, or answered our close: send the reply that tungstenite queued
            Ok(Message::Close(_)) => return End::Close(None),
            Ok(Message::Frame(_)) => {}
            Err(_) => return End::Cut,
        }
    }
    End::Cut
}

pub(super) async fn to_client(
    sink: &mut futures_util::stream::SplitSink<Ws, Message>,
    out: &mut mpsc::Receiver<Out>,
) -> End {
    while let Some(next) = out.recv().await {
        match next {
            Out::Msg(message) => {
                let closing = matches!(message, Message::Close(_));
                if sink.send(message).await.is_err() {
                    return End::Cut;
                }
                if closing {
                    // the client's close frame ends the websocket first, normally
                    tokio::time::sleep(CLOSE_WAIT).await;
                    return End::Done;
                }
            }
            Out::Cut => return End::Cut,
        }
    }
    std::future::pending().await
}

pub(super) async fn backend_to_client(
    backend: &mut (impl AsyncRead + Unpin),
    out: &mpsc::Sender<Out>,
    budget: &Budget,
) -> End {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let code = match backend.read(&mut buf).await {
            Ok(0) => CloseCode::Normal,
            Err(_) => CloseCode::Error,
            Ok(n) => {
                let (n, cut) = budget.take(n);
                if n > 0 {
                    let payload = Bytes::copy_from_slice(&buf[..n]);
                    let _ = out.send(Out::Msg(Message::Binary(payload))).await;
                }
                if cut {
                    let _ = out.send(Out::Cut).await;
                    return std::future::pending().await;
                }
                continue;
            }
        };
        let frame = CloseFrame {
            code,
            reason: "".into(),
        };
        let _ = out.send(Out::Msg(Message::Close(Some(frame)))).await;
        return std::future::pending().await;
    }
}

pub(super) async fn pinger(every: Option<Duration>, out: &mpsc::Sender<Out>) -> End {
    if let Some(every) = every {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            ticks.tick().await;
            let ping = Message::Ping(Bytes::from_static(b"fake-bastion"));
            if out.send(Out::Msg(ping)).await.is_err() {
                break;
            }
        }
    }
    std::future::pending().await
}

/// The far end of the in-memory echo backend: sends back what it reads.
pub(super) async fn echo(far: &mut Option<tokio::io::DuplexStream>) -> End {
    if let Some(far) = far {
        let (mut read, mut write) = tokio::io::split(far);
        let _ = tokio::io::copy(&mut read, &mut write).await;
    }
    std::future::pending().await
}
