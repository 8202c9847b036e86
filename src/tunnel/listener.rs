//! The listener: 127.0.0.1:`port` bound (exclusively on Windows), the accept loop, and which
//! peers are refused before they spend a session.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::watch;

use super::session::carry;
use super::{PortBusy, STOP_GRACE, Shared, StartError, say};

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

/// The accept loop; at its end (stop, timeout) every connection is told to close and is
/// waited for.
pub(super) async fn serve(
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
