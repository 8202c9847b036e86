//! The pump: bytes both ways between a local stream and the bastion's websocket, then the
//! close. The websocket's TLS connection is in halves ([`Incoming`], [`Outgoing`]) and each
//! direction is a task of its own: on the engine's two workers they run in parallel.
//!
//! Up: each local read (up to a few frames) becomes final, masked binary frames of at most
//! [`PAYLOAD`] bytes, each written straight into a TLS record of its own, sent at once. Down:
//! the records read are opened where they landed; the frame decoder reads their data; the
//! data of every frame goes to the local socket in one vectored write; a ping is answered by
//! the up direction; the service's close ends the session.

use std::io::IoSlice;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use super::frames::{self, Decoder, Event, Masks};
use super::{PAYLOAD, READ_BATCH};
use crate::azure::bastion::Websocket;
use crate::azure::tls::{Incoming, Outgoing};

/// How long a websocket close may wait for the service's close.
const CLOSE_WAIT: Duration = Duration::from_secs(3);
/// Pings waiting for their pongs (more are not answered: the service only needs to see life).
const PINGS: usize = 8;

/// Writes `parts` in order with vectored writes.
async fn write_parts<W>(w: &mut W, mut parts: Vec<&[u8]>) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    parts.retain(|p| !p.is_empty());
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

/// What the decoder found in `pieces`: the data to write, in order, pings sent on to the up
/// direction; whether the service closed (or broke the protocol).
fn decode<'a>(
    decoder: &mut Decoder,
    pieces: impl Iterator<Item = &'a [u8]>,
    events: &mut Vec<Event>,
    pings: &mpsc::Sender<Vec<u8>>,
) -> (Vec<&'a [u8]>, bool) {
    let mut data = Vec::new();
    let mut ended = false;
    for piece in pieces {
        events.clear();
        ended |= decoder.feed(piece, events).is_err();
        for e in events.drain(..) {
            match e {
                Event::Data(r) => data.push(piece.get(r).unwrap_or_default()),
                Event::Ping(p) => {
                    let _ = pings.try_send(p);
                }
                Event::Close(_) => ended = true,
            }
        }
        if ended {
            break;
        }
    }
    (data, ended)
}

/// The service's frames to the local socket, until the service closes or either side ends.
async fn down<W>(rx: &mut Incoming, lw: &mut W, pings: &mpsc::Sender<Vec<u8>>)
where
    W: AsyncWrite + Unpin,
{
    let mut decoder = Decoder::default();
    let mut events = Vec::new();
    loop {
        match rx.read().await {
            Ok(true) => {}
            Ok(false) | Err(_) => return,
        }
        let (data, ended) = decode(&mut decoder, rx.pieces(), &mut events, pings);
        if write_parts(lw, data).await.is_err() || lw.flush().await.is_err() || ended {
            return;
        }
    }
}

/// Local reads to frames, and pongs for the service's pings, until the local side ends.
async fn up<R>(
    lr: &mut R,
    tx: &mut Outgoing,
    masks: &mut Masks,
    pings: &mut mpsc::Receiver<Vec<u8>>,
) where
    R: AsyncRead + Unpin,
{
    let mut buf = vec![0u8; READ_BATCH];
    loop {
        let framed = tokio::select! {
            r = lr.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => buf
                    .get(..n)
                    .unwrap_or_default()
                    .chunks(PAYLOAD)
                    .try_for_each(|chunk| tx.record(|o| frames::binary(chunk, PAYLOAD, masks, o))),
            },
            Some(p) = pings.recv() => tx.record(|o| frames::pong(&p, masks, o)),
        };
        if framed.is_err() || tx.send().await.is_err() {
            return;
        }
    }
}

/// Bytes both ways until either side ends or the engine stops; then the websocket is closed
/// (1000; after the local side ended, waiting briefly for the service's close while its last
/// bytes still reach the local side) and both sockets are shut down.
pub(super) async fn pump<R, W>(mut lr: R, lw: W, ws: Websocket, stop: &mut watch::Receiver<bool>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let Websocket {
        incoming: mut rx,
        outgoing: mut tx,
    } = ws;
    let (ping_tx, mut ping_rx) = mpsc::channel(PINGS);
    let (quit, mut quitting) = watch::channel(false);
    let mut downward = tokio::spawn(async move {
        let mut lw = lw;
        tokio::select! {
            () = down(&mut rx, &mut lw, &ping_tx) => {}
            _ = quitting.changed() => {}
        }
        let _ = lw.shutdown().await;
    });
    let mut masks = Masks::new();
    // true: the service's side ended first (its close, its end, or the local side's failure)
    let down_first = tokio::select! {
        () = up(&mut lr, &mut tx, &mut masks, &mut ping_rx) => false,
        _ = &mut downward => true,
        _ = stop.changed() => false,
    };
    let closed = tx.record(|o| frames::close(1000, &mut masks, o)).is_ok();
    if down_first {
        // the service ended first: answer its close, end TLS
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            if closed {
                let _ = tx.send().await;
            }
            let _ = tx.close().await;
        })
        .await;
    } else {
        // the local side or the engine ended first: close, and let the service's last bytes
        // and its close arrive (briefly)
        let done = tokio::time::timeout(CLOSE_WAIT, async {
            if closed {
                let _ = tx.send().await;
            }
            let _ = (&mut downward).await;
        })
        .await
        .is_ok();
        if !done {
            let _ = quit.send(true);
            let _ = downward.await;
        }
        let _ = tokio::time::timeout(CLOSE_WAIT, tx.close()).await;
    }
}
