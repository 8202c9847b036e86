//! The pump: bytes both ways between a local stream and the bastion's websocket, then the
//! close.

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{PAYLOAD, READ_BATCH};

/// How long a websocket close may wait for the service's close.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// Bytes both ways until either side ends or the engine stops; then the websocket is closed
/// (1000, waiting briefly for the service's close) and the local socket shut down.
pub(super) async fn pump<R, W>(
    mut lr: R,
    mut lw: W,
    ws: tokio_tungstenite::WebSocketStream<crate::azure::tls::Stream>,
    stop: &mut watch::Receiver<bool>,
) where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let mut remote_closed = false;
    {
        // each local read (up to a few frames) is cut into full frames, fed, then flushed at
        // once: the frames go to TLS in one write, every one a single record, and the bytes
        // are not copied on the way (the read buffer's parts become the frames)
        let up = async {
            let mut buf = BytesMut::with_capacity(READ_BATCH);
            loop {
                buf.reserve(READ_BATCH);
                let room = READ_BATCH.min(buf.capacity().saturating_sub(buf.len()));
                match lr.read_buf(&mut (&mut buf).limit(room)).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                while !buf.is_empty() {
                    let frame = buf.split_to(buf.len().min(PAYLOAD)).freeze();
                    if sink.feed(Message::Binary(frame)).await.is_err() {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
        };
        // frames that have arrived together are written to the local socket together
        let down = async {
            let mut out: Vec<u8> = Vec::with_capacity(READ_BATCH);
            while let Some(first) = stream.next().await {
                let mut msg = Some(first);
                while let Some(m) = msg.take() {
                    match m {
                        Ok(Message::Binary(b)) => out.extend_from_slice(&b),
                        Ok(Message::Text(t)) => out.extend_from_slice(t.as_bytes()),
                        Ok(Message::Close(_)) | Err(_) => {
                            let _ = lw.write_all(&out).await;
                            let _ = lw.flush().await;
                            return true;
                        }
                        Ok(_) => {}
                    }
                    if out.len() < READ_BATCH {
                        msg = stream.next().now_or_never().flatten();
                    }
                }
                if !out.is_empty() {
                    if lw.write_all(&out).await.is_err() || lw.flush().await.is_err() {
                        return false;
                    }
                    out.clear();
                }
            }
            true
        };
        tokio::select! {
            () = up => {}
            r = down => remote_closed = r,
            _ = stop.changed() => {}
        }
    }
    let _ = lw.shutdown().await;
    if !remote_closed {
        let close = async {
            let frame = CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            };
            if sink.send(Message::Close(Some(frame))).await.is_err() {
                return;
            }
            while let Some(Ok(m)) = stream.next().await {
                if m.is_close() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, close).await;
    } else {
        let _ = tokio::time::timeout(CLOSE_WAIT, sink.close()).await;
    }
}
