//! The kernel's socket tables (`/proc/net/tcp`, `/proc/net/tcp6` on Linux): who listens on a
//! port, and whose process is at the other end of a loopback connection. The parsers take the
//! files' text, so they are tested with sample text on every OS.
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6): the kernel prints each 32-bit
/// word of the address as a number in the machine's byte order, the port in hex.
pub fn socket_addr(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    // each 32-bit word, 8 hex digits, in the machine's byte order
    let words = addr
        .as_bytes()
        .chunks(8)
        .map(|hex| {
            let hex = std::str::from_utf8(hex).ok().filter(|h| h.len() == 8)?;
            Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
        })
        .collect::<Option<Vec<[u8; 4]>>>()?;
    let ip = match words.as_slice() {
        [w] => IpAddr::V4(Ipv4Addr::from(*w)),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (slot, word) in bytes.chunks_mut(4).zip([a, b, c, d]) {
                slot.copy_from_slice(word);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The uid owning the socket whose local end is `local` and remote end is `remote`, in the text
/// of `/proc/net/tcp` or `/proc/net/tcp6` (IPv4 addresses there may be IPv4-mapped IPv6).
pub fn socket_uid(table: &str, local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    let same = |a: SocketAddr, b: SocketAddr| {
        a.port() == b.port() && canonical(a.ip()) == canonical(b.ip())
    };
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid ...
        let (l, r, uid) = (socket_addr(f.get(1)?)?, socket_addr(f.get(2)?)?, f.get(7)?);
        (same(l, local) && same(r, remote))
            .then(|| uid.parse().ok())
            .flatten()
    })
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The uid of the process at the other end of a loopback connection that bprof accepted:
/// `peer` is the connecting socket's address, `ours` the listener's. None: not found (the
/// peer is gone, or this is not Linux).
pub fn peer_uid(peer: SocketAddr, ours: SocketAddr) -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|f| {
            let t = std::fs::read_to_string(f).ok()?;
            socket_uid(&t, peer, ours)
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (peer, ours);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connecting_sockets_owner_is_found() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1
   1: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 222 1
   2: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 333 1
";
        let ours: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let peer: SocketAddr = "127.0.0.1:54321".parse().unwrap();
        assert_eq!(socket_uid(table, peer, ours), Some(1001));
        assert_eq!(socket_uid(table, ours, peer), Some(1000));
        assert_eq!(
            socket_uid(table, "127.0.0.1:1".parse().unwrap(), ours),
            None
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_real_loopback_connection_is_ours() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_s, peer) = l.accept().unwrap();
        // SAFETY: getuid has no preconditions.
        let me = unsafe { libc::getuid() };
        assert_eq!(peer_uid(peer, l.local_addr().unwrap()), Some(me));
        drop(c);
    }
}
