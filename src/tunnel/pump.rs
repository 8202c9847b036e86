//! The pump: bytes both ways between a local stream and the bastion's websocket, then the
//! close. The websocket's TLS connection is split ([`super::transport`]) and each direction is
//! a task of its own: on the engine's two workers they run in parallel.
//!
//! Up: each local read (up to a few frames) becomes final, masked binary frames of at most
//! [`PAYLOAD`] bytes (a frame with its header is one TLS record), written to TLS at once. Down:
//! what TLS gives is read by the frame decoder; the data of every frame in it goes to the local
//! socket in one vectored write; a ping is answered by the up direction; the service's close
//! ends the session.

use std::io::IoSlice;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use super::frames::{self, Decoder, Event, Masks};
use super::transport::{self, Reader, Writer};
use super::{PAYLOAD, READ_BATCH};

/// How long a websocket close may wait for the service's close.
const CLOSE_WAIT: Duration = Duration::from_secs(3);
/// Pings waiting for their pongs (more are not answered: the service only needs to see life).
const PINGS: usize = 8;

/// Writes the `ranges` of `buf` in order with vectored writes.
async fn write_ranges<W>(
    w: &mut W,
    buf: &[u8],
    ranges: &[std::ops::Range<usize>],
) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut parts: Vec<&[u8]> = ranges
        .iter()
        .filter_map(|r| buf.get(r.clone()))
        .filter(|p| !p.is_empty())
        .collect();
    let mut first = 0;
    while first < parts.len() {
        let slices: Vec<IoSlice<'_>> = parts.iter().skip(first).map(|p| IoSlice::new(p)).collect();
        let mut n = w.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let Some(p) = parts.get_mut(first) else { break };
            if n >= p.len() {
                n -= p.len();
                first += 1;
            } else {
                *p = p.get(n..).unwrap_or_default();
                n = 0;
            }
        }
    }
    Ok(())
}

/// The service's frames to the local socket, until the service closes or either side ends.
async fn down<W>(tr: &mut Reader, lw: &mut W, pings: &mpsc::Sender<Vec<u8>>)
where
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; READ_BATCH];
    let mut decoder = Decoder::default();
    let mut events = Vec::new();
    let mut data = Vec::new();
    loop {
        let n = match tr.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        events.clear();
        let broken = decoder
            .feed(buf.get(..n).unwrap_or_default(), &mut events)
            .is_err();
        data.clear();
        let mut closed = false;
        for e in events.drain(..) {
            match e {
                Event::Data(r) => data.push(r),
                Event::Ping(p) => {
                    let _ = pings.try_send(p);
                }
                Event::Close(_) => closed = true,
            }
        }
        if write_ranges(lw, &buf, &data).await.is_err() || lw.flush().await.is_err() {
            return;
        }
        if closed || broken {
            return;
        }
    }
}

/// Local reads to frames, and pongs for the service's pings, until the local side ends.
async fn up<R>(lr: &mut R, tw: &mut Writer, masks: &mut Masks, pings: &mut mpsc::Receiver<Vec<u8>>)
where
    R: AsyncRead + Unpin,
{
    let mut buf = vec![0u8; READ_BATCH];
    let mut out = Vec::with_capacity(READ_BATCH + READ_BATCH / PAYLOAD * 16 + 16);
    loop {
        out.clear();
        tokio::select! {
            r = lr.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if frames::binary(buf.get(..n).unwrap_or_default(), PAYLOAD, masks, &mut out).is_err() {
                        return;
                    }
                }
            },
            Some(p) = pings.recv() => {
                if frames::pong(&p, masks, &mut out).is_err() {
                    return;
                }
            }
        }
        if tw.write_all(&out).await.is_err() || tw.flush().await.is_err() {
            return;
        }
    }
}

/// Bytes both ways until either side ends or the engine stops; then the websocket is closed
/// (1000; after the local side ended, waiting briefly for the service's close while its last
/// bytes still reach the local side) and both sockets are shut down.
pub(super) async fn pump<R, W>(
    mut lr: R,
    lw: W,
    ws: crate::azure::tls::Raw,
    stop: &mut watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (mut tr, mut tw) = transport::split(ws);
    let (ping_tx, mut ping_rx) = mpsc::channel(PINGS);
    let (quit, mut quitting) = watch::channel(false);
    let mut downward = tokio::spawn(async move {
        let mut lw = lw;
        tokio::select! {
            () = down(&mut tr, &mut lw, &ping_tx) => {}
            _ = quitting.changed() => {}
        }
        let _ = lw.shutdown().await;
    });
    let mut masks = Masks::new();
    // true: the service's side ended first (its close, its end, or the local side's failure)
    let down_first = tokio::select! {
        () = up(&mut lr, &mut tw, &mut masks, &mut ping_rx) => false,
        _ = &mut downward => true,
        _ = stop.changed() => false,
    };
    let mut close = Vec::new();
    let _ = frames::close(1000, &mut masks, &mut close);
    if down_first {
        // the service ended first: answer its close, end TLS
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            let _ = tw.write_all(&close).await;
            let _ = tw.shutdown().await;
        })
        .await;
    } else {
        // the local side or the engine ended first: close, and let the service's last bytes
        // and its close arrive (briefly)
        let done = tokio::time::timeout(CLOSE_WAIT, async {
            let _ = tw.write_all(&close).await;
            let _ = tw.flush().await;
            let _ = (&mut downward).await;
        })
        .await
        .is_ok();
        if !done {
            let _ = quit.send(true);
            let _ = downward.await;
        }
        let _ = tokio::time::timeout(CLOSE_WAIT, tw.shutdown()).await;
    }
}
