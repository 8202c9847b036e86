//! The pump: bytes both ways between a local stream and the bastion's websocket, then the
//! close.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::FRAME;

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
        let up = async {
            let mut buf = vec![0u8; FRAME];
            loop {
                match lr.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if sink
                            .send(Message::Binary(buf[..n].to_vec().into()))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
        };
        let down = async {
            while let Some(msg) = stream.next().await {
                match msg {
                    Ok(Message::Binary(b)) => {
                        if lw.write_all(&b).await.is_err() || lw.flush().await.is_err() {
                            return false;
                        }
                    }
                    Ok(Message::Text(t)) => {
                        if lw.write_all(t.as_bytes()).await.is_err() {
                            return false;
                        }
                    }
                    Ok(Message::Close(_)) => return true,
                    Ok(_) => {}
                    Err(_) => return true,
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
