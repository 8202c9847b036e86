//! The native tunnel engine: bprof's own listener on 127.0.0.1, one bastion session per
//! accepted connection (`POST /api/tokens`, the websocket, its own `DELETE` at the end, however
//! it ends), and the pump between them. No Python, no az process but the one for the token.
//!
//! Threads: the engine runs on a thread of its own with a single-threaded tokio runtime; the
//! session layer holds an [`Engine`] and stays synchronous. Dropping the engine stops the
//! listener, closes every connection's websocket and deletes every open session (bounded),
//! then joins the thread.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::AzureError;
use super::arm::{self, Arm};
use super::bastion::{self, DataPlane, Grant, Target};
use super::http::Net;
use super::token::{AccessToken, TokenSource};
use crate::process::Signals;

/// Each local read becomes one websocket frame of at most this many bytes.
pub const FRAME: usize = 16 * 1024;
/// How long the engine waits, when it stops, for its connections to close and delete their
/// sessions.
pub const STOP_GRACE: Duration = Duration::from_secs(8);
/// How long a websocket close may wait for the service's close.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// What the engine connects: the plan's tunnel, and whose it is (for messages).
#[derive(Debug, Clone)]
pub struct Config {
    /// The profile's name and tenant id.
    pub profile: String,
    pub tenant: String,
    pub tunnel: crate::plan::NativeTunnel,
    /// The Azure client's settings (ARM endpoint, proxy, bundles, az for the token).
    pub azure: super::Config,
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
    dp: DataPlane,
    tokens: TokenSource,
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
    /// The local port differs from the one wanted (it was taken).
    pub moved_from: Option<u16>,
}

fn say(msg: &str) {
    crate::terminal::eprintln(&format!("bprof: {msg}"));
}

/// Binds 127.0.0.1:`port` (exclusively on Windows).
fn bind(port: u16) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    #[cfg(unix)]
    s.set_reuse_address(true)?;
    #[cfg(windows)]
    exclusive(&s)?;
    s.bind(&SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    s.listen(128)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// SO_EXCLUSIVEADDRUSE: no other socket may bind the port, even with SO_REUSEADDR.
#[cfg(windows)]
fn exclusive(s: &socket2::Socket) -> std::io::Result<()> {
    use std::os::windows::io::AsRawSocket;
    use windows_sys::Win32::Networking::WinSock::{SO_EXCLUSIVEADDRUSE, SOL_SOCKET, setsockopt};
    let on: i32 = 1;
    // SAFETY: a valid socket handle, a pointer to an i32 and its size.
    let r = unsafe {
        setsockopt(
            s.as_raw_socket() as usize,
            SOL_SOCKET,
            SO_EXCLUSIVEADDRUSE,
            (&on as *const i32).cast(),
            std::mem::size_of::<i32>() as i32,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Binds the wanted port, or (with `fallback`) one the OS picks when it is taken: no
/// check-then-bind race, the socket is bprof's from the start.
pub fn listen(
    port: u16,
    fallback: bool,
) -> Result<(std::net::TcpListener, Option<u16>), StartError> {
    match bind(port) {
        Ok(l) => Ok((l, None)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && fallback => bind(0)
            .map(|l| (l, Some(port)))
            .map_err(|source| StartError::Listen { port: 0, source }),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(PortBusy { port }.into()),
        Err(source) => Err(StartError::Listen { port, source }),
    }
}

/// Where the bastion's data plane is: the profile's `dns_name`, or ARM's read (which also
/// refuses a SKU or setting that cannot carry a tunnel, before anything listens).
async fn data_plane(
    net: &Net,
    tokens: &TokenSource,
    cfg: &Config,
) -> Result<DataPlane, AzureError> {
    if let Some(d) = &cfg.tunnel.dns_name {
        return DataPlane::from_profile(d);
    }
    let arm = Arm::from_config(net.clone(), &cfg.azure)?;
    let token = tokens.get()?;
    let facts = arm::bastion(
        &arm,
        &token.secret,
        &cfg.tunnel.subscription,
        &cfg.tunnel.resource_group,
        &cfg.tunnel.bastion,
    )
    .await?;
    if let Some(why) = facts.refusal(matches!(
        cfg.tunnel.target,
        crate::plan::TunnelTarget::Ip(_)
    )) {
        return Err(AzureError::Unusable {
            bastion: cfg.tunnel.bastion.clone(),
            why,
        });
    }
    match facts.dns_name.as_deref() {
        Some(d) if !d.is_empty() => DataPlane::from_arm(d),
        _ => Err(AzureError::Unusable {
            bastion: cfg.tunnel.bastion.clone(),
            why: "ARM's answer has no dnsName".into(),
        }),
    }
}

/// The token (one az process unless given), a runtime, the network and the data plane.
fn prepare(
    cfg: &Config,
    signals: &Signals,
    token: Option<AccessToken>,
) -> Result<(tokio::runtime::Runtime, Net, TokenSource, DataPlane), AzureError> {
    let net = Net::from_config(&cfg.azure)?;
    let tokens = TokenSource::new(
        &cfg.tunnel.subscription,
        signals.clone(),
        token,
        cfg.azure.az.clone(),
    );
    tokens.get()?;
    let rt = super::runtime("starting the tunnel engine")?;
    let dp = rt.block_on(data_plane(&net, &tokens, cfg))?;
    Ok((rt, net, tokens, dp))
}

/// `bprof proxy`: one session between stdin/stdout and the VM's port (ssh's ProxyCommand).
/// Nothing but the tunnel's bytes goes to stdout. Ends when either side ends or a signal
/// arrives; the session is deleted however it ends.
pub fn proxy(cfg: Config, signals: &Signals) -> Result<(), AzureError> {
    let (rt, net, tokens, dp) = prepare(&cfg, signals, None)?;
    let sh = Arc::new(Shared {
        net,
        dp,
        tokens,
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
            _ = super::until_signal(signals) => {
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
        let (rt, net, tokens, dp) = prepare(&cfg, signals, token)?;
        let (listener, moved_from) = listen(cfg.tunnel.port, cfg.tunnel.fallback)?;
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
            dp,
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
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The accept loop; at its end (stop, timeout) every connection is told to close and is
/// waited for.
async fn serve(
    listener: tokio::net::TcpListener,
    sh: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    // the connections' own stop: fired however the loop ends (stop or timeout)
    let (close_all, closing) = watch::channel(false);
    let deadline = sh.cfg.timeout().map(|t| tokio::time::Instant::now() + t);
    let timeout = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(timeout);
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((sock, peer)) => {
                    sh.stats.accepted.fetch_add(1, Ordering::SeqCst);
                    if let Some(why) = refuse_peer(&sh, peer) {
                        sh.stats.refused_peers.fetch_add(1, Ordering::SeqCst);
                        say(&format!("refused a connection from {peer}: {why}"));
                        drop(sock);
                        continue;
                    }
                    tasks.spawn(connection(sock, peer, Arc::clone(&sh), closing.clone()));
                }
                Err(e) => {
                    say(&format!("the tunnel's listener: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stop.changed() => break,
            () = &mut timeout => {
                say(&format!("the tunnel closed after its timeout of {} s", sh.cfg.timeout().map_or(0, |t| t.as_secs())));
                break;
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    let _ = close_all.send(true);
    let grace = tokio::time::sleep(STOP_GRACE);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            r = tasks.join_next() => if r.is_none() { break },
            () = &mut grace => {
                tasks.abort_all();
                break;
            }
        }
    }
}

/// Why a connection is refused before it spends a session: another user's process (Linux,
/// through the socket tables), or bprof's own client is not running.
fn refuse_peer(sh: &Shared, peer: SocketAddr) -> Option<String> {
    if !sh.gate.load(Ordering::SeqCst) {
        return Some("bprof accepts connections only while the client it started runs".into());
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getuid has no preconditions.
        let me = unsafe { libc::getuid() };
        match crate::sockets::peer_uid(peer, sh.local) {
            Some(uid) if uid == me => None,
            Some(uid) => Some(format!(
                "it is user {uid}'s, and each connection spends a session on your token"
            )),
            None => Some("its owner cannot be found (it may have closed)".into()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = peer;
        None
    }
}

/// One accepted connection: its own session, the pump, its own DELETE.
async fn connection(
    local: TcpStream,
    peer: SocketAddr,
    sh: Arc<Shared>,
    stop: watch::Receiver<bool>,
) {
    let _ = local.set_nodelay(true);
    let (r, w) = local.into_split();
    // a refusal was said; the listener serves on
    let _ = carry(r, w, format!("the connection from {peer}"), sh, stop).await;
}

/// One session over a local byte stream (`r`, `w`): a token, `POST /api/tokens`, the
/// websocket, the pump, the close, the DELETE. A refusal is said on stderr (and returned).
async fn carry<R, W>(
    r: R,
    w: W,
    who: String,
    sh: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Option<AzureError>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let token = {
        let sh = Arc::clone(&sh);
        match tokio::task::spawn_blocking(move || sh.tokens.get()).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                say(&format!("{who} is closed: {e}"));
                return Some(e);
            }
            Err(_) => return None,
        }
    };
    let previous = sh
        .open
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .last()
        .map(|g| (g.auth_token.clone(), g.node_id.clone()));
    // a stop while the session is being asked for lets the answer arrive (briefly): a
    // session the service granted is deleted like any other
    let create = bastion::create_session(
        &sh.net,
        &sh.dp,
        &sh.target,
        sh.cfg.tunnel.resource_port,
        &token.secret,
        previous.as_ref().map(|(a, n)| (a.as_str(), n.as_str())),
    );
    let mut stopping = false;
    let created = {
        tokio::pin!(create);
        tokio::select! {
            r = &mut create => r,
            _ = stop.changed() => {
                stopping = true;
                match tokio::time::timeout(STOP_GRACE / 2, &mut create).await {
                    Ok(r) => r,
                    Err(_) => return None,
                }
            }
        }
    };
    // an overlap the service does not take (the session it named may be ending): once more
    // on its own
    let created = match created {
        Err(AzureError::Refused { status, .. })
            if previous.is_some()
                && (400..500).contains(&status)
                && ![401, 403].contains(&status) =>
        {
            bastion::create_session(
                &sh.net,
                &sh.dp,
                &sh.target,
                sh.cfg.tunnel.resource_port,
                &token.secret,
                None,
            )
            .await
        }
        other => other,
    };
    drop(token);
    let grant = match created {
        Ok(g) => g,
        Err(e) => {
            sh.stats.failed_sessions.fetch_add(1, Ordering::SeqCst);
            refused(&who, &e, &sh.cfg);
            return Some(e);
        }
    };
    sh.stats.sessions.fetch_add(1, Ordering::SeqCst);
    sh.open
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(grant.clone());
    let ws = if stopping {
        None
    } else {
        tokio::select! {
            r = bastion::connect_websocket(&sh.net, &sh.dp, &grant) => Some(r),
            _ = stop.changed() => None,
        }
    };
    let mut failed = None;
    match ws {
        Some(Ok(ws)) => pump(r, w, ws, &mut stop).await,
        Some(Err(e)) => {
            sh.stats.failed_sessions.fetch_add(1, Ordering::SeqCst);
            refused(&who, &e, &sh.cfg);
            failed = Some(e);
        }
        None => {}
    }
    // no longer a session to overlap with
    sh.open
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|g| g.auth_token != grant.auth_token);
    match bastion::delete_session(&sh.net, &sh.dp, &grant).await {
        Ok(()) => {
            sh.stats.deleted.fetch_add(1, Ordering::SeqCst);
        }
        Err(e) => say(&format!(
            "the session of {who} may still be open on the bastion: its DELETE failed: {e}"
        )),
    }
    failed
}

fn refused(who: &str, e: &AzureError, cfg: &Config) {
    say(&format!("{who} is closed: {e}"));
    let h = match e {
        AzureError::Refused { hint: Some(h), .. } => {
            Some(super::known::fill(h, &cfg.profile, &cfg.tenant))
        }
        e => e.hint(),
    };
    if let Some(h) = h {
        say(&format!("hint: {h}"));
    }
}

/// Bytes both ways until either side ends or the engine stops; then the websocket is closed
/// (1000, waiting briefly for the service's close) and the local socket shut down.
async fn pump<R, W>(
    mut lr: R,
    mut lw: W,
    ws: tokio_tungstenite::WebSocketStream<super::tls::Stream>,
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
