//! The native tunnel engine: bprof's own listener on 127.0.0.1, one bastion session per
//! accepted connection (`POST /api/tokens`, the websocket, its own `DELETE` at the end, however
//! it ends), and the pump between them. No Python, no az process but the one for the token.
//!
//! Threads: the engine runs on a thread of its own with a tokio runtime of [`WORKERS`] worker
//! threads (each direction of a connection is a task, so both run at once); the session layer
//! holds an [`Engine`] and stays synchronous. Dropping the engine stops the
//! listener, closes every connection's websocket and deletes every open session (bounded),
//! then joins the thread.
//!
//! The room: this file holds the types, the [`Engine`] and `bprof proxy`'s [`proxy`];
//! `listener` binds the port and accepts (the accept loop, which peers are refused);
//! `session` is one connection's bastion session (the data plane, the token, `POST`, the
//! websocket, the `DELETE`); `frames` writes and reads websocket frames; `pump` moves the
//! bytes both ways (a task per direction, over the halves of the websocket's TLS connection,
//! [`crate::azure::tls::Incoming`] and [`crate::azure::tls::Outgoing`]) and closes the
//! websocket.

mod frames;
mod listener;
mod pump;
mod session;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::azure::AzureError;
use crate::azure::bastion::{Grant, Route, Target};
use crate::azure::http::Net;
use crate::azure::token::{AccessToken, TokenSource};
use crate::process::Signals;

pub use listener::listen;
use listener::serve;
use session::{carry, prepare};

/// A websocket frame is at most this many bytes, its header included: exactly one TLS record
/// (16 KiB of plaintext), so no frame costs a second, tiny record.
pub const FRAME: usize = 16 * 1024;
/// A client frame's header for payloads of 126 to 65,535 bytes: 2 bytes, a 16-bit length and
/// the 4-byte mask.
const FRAME_HEADER: usize = 8;
/// The payload of a full frame.
pub const PAYLOAD: usize = FRAME - FRAME_HEADER;
/// What one local read may take: several frames, written to TLS at once (fewer syscalls).
pub const READ_BATCH: usize = 4 * PAYLOAD;
/// The engine's runtime threads on a machine with enough cores: a connection's two directions
/// run in parallel.
pub const WORKERS: usize = 2;

/// The engine's runtime threads on a machine of `cores`: [`WORKERS`] from four cores up; below
/// that one (on two cores the directions' threads and the peers on the same machine compete
/// for the cores, and each hand-over between threads costs more CPU than it saves: measured in
/// the bench).
pub fn workers(cores: usize) -> usize {
    if cores >= 4 { WORKERS } else { 1 }
}
/// How long the engine waits, when it stops, for its connections to close and delete their
/// sessions.
pub const STOP_GRACE: Duration = Duration::from_secs(8);

/// What the engine connects: the plan's tunnel, and whose it is (for messages).
#[derive(Debug, Clone)]
pub struct Config {
    /// The profile's name and tenant id.
    pub profile: String,
    pub tenant: String,
    pub tunnel: crate::plan::NativeTunnel,
    /// The Azure client's settings (ARM endpoint, proxy, bundles, az for the token).
    pub azure: crate::azure::Config,
    /// Runtime threads: 1, or 2 for a connection's directions in parallel.
    pub workers: usize,
}

impl Config {
    /// The sessions' target.
    pub fn target(&self) -> Target {
        let t = &self.tunnel;
        match &t.target {
            crate::plan::TunnelTarget::Vm(id) => Target::Vm {
                resource_id: id.clone(),
            },
            crate::plan::TunnelTarget::Ip(ip) => Target::Ip {
                subscription: t.subscription.clone(),
                resource_group: t.resource_group.clone(),
                ip: ip.clone(),
            },
        }
    }

    fn timeout(&self) -> Option<Duration> {
        self.tunnel
            .timeout
            .map(|s| Duration::from_secs(u64::from(s)))
    }
}

/// The port could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("local port {port} is busy")]
pub struct PortBusy {
    pub port: u16,
}

/// Why the engine did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Azure(#[from] AzureError),
    #[error(transparent)]
    Busy(#[from] PortBusy),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Listen {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

/// Counters, for tests and the bench (`-v` prints them at the end).
#[derive(Debug, Default)]
pub struct Stats {
    pub accepted: AtomicU64,
    pub refused_peers: AtomicU64,
    pub sessions: AtomicU64,
    pub failed_sessions: AtomicU64,
    pub deleted: AtomicU64,
}

/// What the connections share.
struct Shared {
    net: Net,
    /// Where sessions are asked for (the bastion's host, or the Developer SKU's broker).
    route: Route,
    tokens: Arc<TokenSource>,
    cfg: Config,
    /// What each session connects to.
    target: Target,
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    local: SocketAddr,
    /// The sessions open now (the newest last): an overlapping session names one of them.
    open: Mutex<Vec<Grant>>,
    /// Connections are accepted only while this is true (bprof's own client runs).
    gate: Arc<AtomicBool>,
    stats: Arc<Stats>,
}

/// A running engine. Owned: dropping it closes everything it opened.
pub struct Engine {
    port: u16,
    stop: watch::Sender<bool>,
    gate: Arc<AtomicBool>,
    stats: Arc<Stats>,
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The token's refresher: dropping the sender stops it.
    refresher: Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
    /// The local port differs from the one wanted (it was taken).
    pub moved_from: Option<u16>,
}

fn say(msg: &str) {
    crate::terminal::eprintln(&format!("bprof: {msg}"));
}

/// `bprof proxy`: one session between stdin/stdout and the VM's port (ssh's ProxyCommand).
/// Nothing but the tunnel's bytes goes to stdout. Ends when either side ends or a signal
/// arrives; the session is deleted however it ends.
pub fn proxy(cfg: Config, signals: &Signals) -> Result<(), AzureError> {
    let (rt, net, tokens, route) = prepare(&cfg, signals, None)?;
    let sh = Arc::new(Shared {
        net,
        route,
        tokens: Arc::new(tokens),
        target: cfg.target(),
        cfg,
        local: SocketAddr::from(([127, 0, 0, 1], 0)),
        open: Mutex::new(Vec::new()),
        gate: Arc::new(AtomicBool::new(true)),
        stats: Arc::new(Stats::default()),
    });
    let (stop, stop_rx) = watch::channel(false);
    let failed = rt.block_on(async {
        let carried = carry(
            tokio::io::stdin(),
            tokio::io::stdout(),
            "stdin/stdout".into(),
            Arc::clone(&sh),
            stop_rx,
        );
        tokio::pin!(carried);
        tokio::select! {
            r = &mut carried => r,
            // ssh ends its ProxyCommand with SIGHUP: the session still ends (closed and
            // deleted, bounded by its timeouts) before bprof exits
            _ = crate::azure::until_signal(signals) => {
                let _ = stop.send(true);
                carried.await
            }
        }
    });
    // a read of stdin may still block a thread: do not wait for it
    rt.shutdown_timeout(Duration::from_millis(100));
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

impl Engine {
    /// Gets the token (one az process, unless `token` is given), finds the data plane, binds the listener, and serves
    /// on a thread of its own. `gate`: whether connections are accepted from the start.
    pub fn start(
        cfg: Config,
        signals: &Signals,
        gate_open: bool,
        token: Option<AccessToken>,
    ) -> Result<Engine, StartError> {
        let (rt, net, tokens, route) = prepare(&cfg, signals, token)?;
        let tokens = Arc::new(tokens);
        let (listener, moved_from) = listen(cfg.tunnel.port, cfg.tunnel.fallback)?;
        // the token is kept fresh ahead of its end: a connection never waits for az
        let (refresh_stop, stopped) = std::sync::mpsc::channel();
        let refresher = tokens
            .refresh_ahead(stopped, say)
            .map_err(|e| AzureError::Io {
                what: "starting the token's refresher".into(),
                why: e.to_string(),
            })?;
        let local = listener.local_addr().map_err(|source| StartError::Listen {
            port: cfg.tunnel.port,
            source,
        })?;
        let (stop, stop_rx) = watch::channel(false);
        let gate = Arc::new(AtomicBool::new(gate_open));
        let stats = Arc::new(Stats::default());
        let done = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            net,
            route,
            tokens,
            target: cfg.target(),
            cfg,
            local,
            open: Mutex::new(Vec::new()),
            gate: Arc::clone(&gate),
            stats: Arc::clone(&stats),
        });
        let finished = Arc::clone(&done);
        let thread = std::thread::Builder::new()
            .name("tunnel".into())
            .spawn(move || {
                rt.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => serve(l, shared, stop_rx).await,
                        Err(e) => say(&format!("the tunnel cannot listen: {e}")),
                    }
                });
                finished.store(true, Ordering::SeqCst);
                crate::process::notify();
            })
            .map_err(|e| AzureError::Io {
                what: "starting the tunnel engine".into(),
                why: e.to_string(),
            })?;
        Ok(Engine {
            port: local.port(),
            stop,
            gate,
            stats,
            done,
            thread: Some(thread),
            refresher: Some((refresh_stop, refresher)),
            moved_from,
        })
    }

    /// The local port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Accept connections from now on (bprof's own client has started) or not.
    pub fn set_gate(&self, open: bool) {
        self.gate.store(open, Ordering::SeqCst);
    }

    /// Whether it has ended by itself (its timeout).
    pub fn ended(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Tells it to stop without waiting (several engines stop together, then each is joined).
    pub fn signal_stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Stops it: no new connections; open ones closed and their sessions deleted (at most
    /// [`STOP_GRACE`]).
    pub fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some((stop, refresher)) = self.refresher.take() {
            drop(stop);
            let _ = refresher.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_workers_from_four_cores() {
        assert_eq!(super::workers(1), 1);
        assert_eq!(super::workers(2), 1);
        assert_eq!(super::workers(3), 1);
        assert_eq!(super::workers(4), 2);
        assert_eq!(super::workers(64), 2);
    }
}
