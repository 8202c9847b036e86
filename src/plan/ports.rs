//! Local ports and addresses: the port `local_port: auto` derives from a profile name, the
//! loopback address a client is pointed at, and what to connect to a tunnel with.

use super::*;

/// The port `local_port: auto` means for a profile: the same on every machine (FNV-1a of the
/// name, in 50000..=59999), so a teammate's .rdp file and tunnel agree.
pub fn derived_port(profile: &str) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in profile.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    50000 + (h % 10000) as u16
}

/// The local port a profile's tunnel uses (before checking whether it is free).
pub fn local_port(profile: &Profile, requested: Option<u16>) -> u16 {
    match (requested, profile.local_port) {
        (Some(p), _) => p,
        (None, LocalPort::Port(p)) => p,
        (None, LocalPort::Auto(_)) => derived_port(&profile.name),
    }
}

/// Where a client is pointed at the local end of a tunnel: IPv4 loopback, never `localhost`
/// (which some clients resolve to `::1` first, where another user may listen).
pub fn local_address(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// What to point a client at for the VM's port behind a tunnel on local `port`, for the
/// services people reach that way.
pub fn connect_hint(resource_port: u16, port: u16) -> Option<String> {
    let a = local_address(port);
    let host = a.rsplit_once(':').map_or(a.as_str(), |(h, _)| h);
    Some(match resource_port {
        1433 => format!("SQL Server (Azure Data Studio, SSMS): {host},{port}"),
        5432 => format!("PostgreSQL: psql -h {host} -p {port}"),
        3306 => format!("MySQL: mysql -h {host} -P {port}"),
        6379 => format!("Redis: redis-cli -h {host} -p {port}"),
        27017 => format!("MongoDB: mongodb://{host}:{port}"),
        22 => format!("SSH: ssh -p {port} USER@{host}"),
        3389 => format!("an RDP client: {a}"),
        443 | 8443 => format!("a browser: https://{a}/"),
        80 | 8080 => format!("a browser: http://{a}/"),
        5985 | 5986 => format!("PowerShell remoting: -ComputerName {host} -Port {port}"),
        _ => return None,
    })
}
