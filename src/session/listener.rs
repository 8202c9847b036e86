//! Who listens on the local end of a tunnel. bprof points a client at `127.0.0.1:PORT` only
//! when every listening socket on PORT belongs to az's tunnel: another user of the machine can
//! bind the port (or `[::1]:PORT`) while az starts, and would then receive the session.
//!
//! Linux: the LISTEN sockets on the port (any local address) from `/proc/net/tcp` and
//! `/proc/net/tcp6`, and the socket inodes the tunnel's process group holds (`/proc/PID/fd`).
//! A socket not found in the group is foreign, also when it is another user's, whose fds bprof
//! cannot read. The parsers take the files' text, so they are tested with sample text.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::collections::HashSet;
use std::net::SocketAddr;

/// A socket in LISTEN state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub addr: SocketAddr,
    pub inode: u64,
}

/// Who listens on the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Nobody yet.
    Nobody,
    /// Only the tunnel (at least one socket, all of them the tunnel's).
    Tunnel,
    /// Someone else (this socket), whether the tunnel listens too or not.
    Foreign(SocketAddr),
}

/// The LISTEN sockets (state `0A`) on `port` in the text of `/proc/net/tcp` or
/// `/proc/net/tcp6`. Lines that do not parse are skipped.
pub fn listeners(table: &str, port: u16) -> Vec<Listener> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            if !state.eq_ignore_ascii_case("0A") {
                return None;
            }
            let addr = crate::sockets::socket_addr(local)?;
            (addr.port() == port).then_some(Listener {
                addr,
                inode: inode.parse().ok()?,
            })
        })
        .collect()
}

/// The process group of `/proc/PID/stat` (its 5th field). The command name (2nd, in
/// parentheses) may hold spaces and parentheses itself, so the fields are counted after the
/// last `)`.
pub fn process_group(stat: &str) -> Option<u32> {
    let (_, rest) = stat.rsplit_once(')')?;
    // state ppid pgrp ...
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// The inode of a file descriptor's link text `socket:[INODE]`.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Who listens, given the LISTEN sockets on the port and the socket inodes the tunnel holds.
pub fn judge(listeners: &[Listener], tunnel_inodes: &HashSet<u64>) -> Owner {
    if let Some(l) = listeners
        .iter()
        .find(|l| l.inode == 0 || !tunnel_inodes.contains(&l.inode))
    {
        return Owner::Foreign(l.addr);
    }
    if listeners.is_empty() {
        Owner::Nobody
    } else {
        Owner::Tunnel
    }
}

/// Who listens on `port`, the tunnel being process group `group`. An error: `/proc/net/tcp`
/// cannot be read (the IPv6 table may be missing: no IPv6).
#[cfg(target_os = "linux")]
pub fn check(port: u16, group: Option<u32>) -> std::io::Result<Owner> {
    let mut found = listeners(&std::fs::read_to_string("/proc/net/tcp")?, port);
    match std::fs::read_to_string("/proc/net/tcp6") {
        Ok(t) => found.extend(listeners(&t, port)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if found.is_empty() {
        return Ok(Owner::Nobody);
    }
    let inodes = group.map(group_socket_inodes).unwrap_or_default();
    Ok(judge(&found, &inodes))
}

/// The socket inodes held by the processes of process group `group` (those whose fds bprof
/// can read: its own).
#[cfg(target_os = "linux")]
fn group_socket_inodes(group: u32) -> HashSet<u64> {
    let mut inodes = HashSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return inodes;
    };
    for entry in procs.filter_map(Result::ok) {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let dir = entry.path();
        let in_group = std::fs::read_to_string(dir.join("stat"))
            .ok()
            .and_then(|s| process_group(&s))
            == Some(group);
        if !in_group {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(dir.join("fd")) else {
            continue;
        };
        inodes.extend(
            fds.filter_map(Result::ok)
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .filter_map(|link| socket_inode(&link.to_string_lossy())),
        );
    }
    inodes
}

#[cfg(test)]
mod tests {
    use super::*;

    // from a little-endian machine (x86-64), as the kernel prints them
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:D96F 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 8635 1 00000000c9526adb 100 0 0 10 0
   1: 00000000:D96F 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 9001 1 000000003b55806c 100 0 0 10 0
   2: 0100007F:D96F 0100007F:A000 01 00000000:00000000 00:00000000 00000000  1000        0 8700 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 640 1 000000003b55806c 100 0 0 10 0
   4: garbage
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:D96F 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 7777 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:D96F 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 7778 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:D96F 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 7779 1 0000000000000000 100 0 0 10 0
";

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn ipv4_listeners_on_the_port_only_in_listen_state() {
        assert_eq!(
            listeners(TCP, 0xD96F),
            [
                Listener {
                    addr: sa("127.0.0.1:55663"),
                    inode: 8635
                },
                Listener {
                    addr: sa("0.0.0.0:55663"),
                    inode: 9001
                },
            ]
        );
        assert_eq!(listeners(TCP, 22)[0].inode, 640);
        assert!(listeners(TCP, 1).is_empty());
        assert!(listeners("", 1).is_empty());
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn ipv6_listeners_loopback_any_and_mapped() {
        let l = listeners(TCP6, 55663);
        let addrs: Vec<SocketAddr> = l.iter().map(|l| l.addr).collect();
        assert_eq!(
            addrs,
            [
                sa("[::1]:55663"),
                sa("[::]:55663"),
                sa("[::ffff:127.0.0.1]:55663")
            ]
        );
        assert_eq!(l[0].inode, 7777);
    }

    #[test]
    fn process_group_is_counted_after_the_last_parenthesis() {
        let stat = "4242 (py) (evil 1 2 3) S 4000 4100 4000 34817 4100 4194560 210 0 0 0";
        assert_eq!(process_group(stat), Some(4100));
        assert_eq!(process_group("17 (az) S 1 17 17 0 -1"), Some(17));
        assert_eq!(process_group("17 (az"), None);
        assert_eq!(process_group("17 (a) S 1"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn check_reads_proc_for_a_real_listener() {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        // SAFETY: getpgrp has no preconditions.
        let own = u32::try_from(unsafe { libc::getpgrp() }).unwrap();
        assert_eq!(
            check(port, Some(own)).unwrap(),
            Owner::Tunnel,
            "this process's group"
        );
        let other = if own == 1 { 2 } else { 1 };
        assert_eq!(
            check(port, Some(other)).unwrap(),
            Owner::Foreign(l.local_addr().unwrap())
        );
        assert_eq!(
            check(port, None).unwrap(),
            Owner::Foreign(l.local_addr().unwrap())
        );
        drop(l);
        assert_eq!(check(port, Some(own)).unwrap(), Owner::Nobody);
    }

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode("socket:[8635]"), Some(8635));
        assert_eq!(socket_inode("pipe:[8635]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
    }

    #[test]
    fn ready_only_when_every_listener_is_the_tunnels() {
        let ours = Listener {
            addr: sa("127.0.0.1:5000"),
            inode: 1,
        };
        let theirs = Listener {
            addr: sa("[::1]:5000"),
            inode: 2,
        };
        let tunnel: HashSet<u64> = [1, 9].into();
        assert_eq!(judge(&[], &tunnel), Owner::Nobody);
        assert_eq!(judge(std::slice::from_ref(&ours), &tunnel), Owner::Tunnel);
        assert_eq!(
            judge(&[ours.clone(), theirs.clone()], &tunnel),
            Owner::Foreign(theirs.addr)
        );
        assert_eq!(
            judge(std::slice::from_ref(&theirs), &tunnel),
            Owner::Foreign(theirs.addr)
        );
        // an owner that cannot be found (another user's process) is foreign
        assert_eq!(
            judge(std::slice::from_ref(&ours), &HashSet::new()),
            Owner::Foreign(ours.addr)
        );
        let zero = Listener {
            addr: sa("127.0.0.1:5000"),
            inode: 0,
        };
        assert_eq!(
            judge(&[zero], &[0].into()),
            Owner::Foreign(sa("127.0.0.1:5000"))
        );
    }
}
