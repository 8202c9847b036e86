//! The native tunnel engine against the loopback fake bastion of the tests (`cargo bench
//! --bench tunnel`; Linux): the time from the token's arrival to a listening port, throughput
//! through the tunnel against a plain TCP echo served by the same fake process, the added
//! latency of a round trip, and bprof's peak RSS with three connections; then bprof's own CPU
//! (user + system) per GB echoed against the floor any client has, measured here in the same
//! run: 2 x one loopback TCP hop (sender and receiver), 2 x AES-128-GCM at the TLS record size,
//! 2 x memcpy, per GB echoed (1 GB up and 1 GB down), the floor's runs alternating with bprof's.
//! Prints Markdown tables (the README's).
//!
//! The fake az prints a token and notes the moment it did; bprof (the release build cargo
//! made for this bench) runs `run PROFILE --tunnel-only` against the fake's ARM and bastion.

#![allow(clippy::disallowed_methods)]

#[path = "../tests/cli/fake_bastion/mod.rs"]
mod fake_bastion;
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fake_bastion::FakeBastion;

const SUB: &str = "22222222-2222-2222-2222-222222222222";
/// Bytes per throughput run (`BENCH_MIB`, default 256).
fn volume() -> usize {
    std::env::var("BENCH_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(256)
        * 1024
        * 1024
}
/// Round trips per latency run.
const TRIPS: usize = 5000;

const FAKE_AZ: &str = r#"#!/bin/sh
# the bench's az: a token, and when it was handed over (ns since the epoch)
printf '{"accessToken": "eyJhbGciOiJub25lIn0.eyJvaWQiOiJvIn0.bench", "expires_on": %s, "tokenType": "Bearer"}\n' "$(( $(date +%s) + 3600 ))"
date +%s%N > "$BENCH_DIR/token-at"
"#;

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

struct Bprof(Child);

impl Drop for Bprof {
    fn drop(&mut self) {
        // SAFETY: kill only sends a signal to our own child.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGINT);
        }
        let _ = self.0.wait();
    }
}

fn setup(dir: &Path, fake: &FakeBastion, port: u16) -> Command {
    let yaml = format!(
        "version: 1\ntenants:\n  t:\n    id: 11111111-1111-1111-1111-111111111111\n    subscription: {SUB}\nbastions:\n  b:\n    tenant: t\n    resource_group: rg-net\n    name: bas-1\nvms:\n  v:\n    resource_group: rg-vm\n    name: vm-1\nprofiles:\n  db:\n    bastion: b\n    vm: v\n    mode: tunnel\n    resource_port: 22\n    local_port: {port}\n"
    );
    let az_profile = format!("{{\"subscriptions\": [{{\"id\": \"{SUB}\"}}]}}");
    let mut c = support::sandbox(
        dir,
        fake,
        &yaml,
        &az_profile,
        FAKE_AZ,
        &["run", "db", "--tunnel-only", "-q"],
    );
    c.stderr(Stdio::inherit());
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Milliseconds from the token's hand-over to the first accepted connection.
fn ready_ms(fake: &FakeBastion) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Bprof(setup(dir.path(), fake, port).spawn().unwrap());
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    let ready_at = loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(50)).is_ok() {
            break now_ns();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "bprof did not listen"
        );
        std::thread::sleep(Duration::from_micros(200));
    };
    let token_at: u128 = std::fs::read_to_string(dir.path().join("token-at"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    drop(child);
    (ready_at.saturating_sub(token_at)) as f64 / 1e6
}

/// MB/s of `volume()` bytes written and read back over `conns` connections at once.
fn throughput(addr: SocketAddr, conns: usize) -> f64 {
    let per = volume() / conns;
    let start = Instant::now();
    let workers: Vec<_> = (0..conns)
        .map(|_| std::thread::spawn(move || echo_through(addr, per)))
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    volume() as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// Mean microseconds of a 1-byte round trip.
fn round_trip_us(addr: SocketAddr) -> f64 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let mut b = [0u8; 1];
    for _ in 0..100 {
        s.write_all(b"x").unwrap();
        s.read_exact(&mut b).unwrap();
    }
    let start = Instant::now();
    for _ in 0..TRIPS {
        s.write_all(b"x").unwrap();
        s.read_exact(&mut b).unwrap();
    }
    start.elapsed().as_secs_f64() * 1e6 / TRIPS as f64
}

/// A `/proc/PID/status` field in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn peak_rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmHWM:")
}

/// User and system CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // state is field 3; utime and stime are 14 and 15 (11 and 12 after the `)`)
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// This process's user and system CPU seconds so far (every thread).
fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage of our own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// CPU seconds per GB of one loopback TCP hop, sender and receiver together (256 KiB writes and
/// reads: the floor is what a client that batches well pays).
fn hop_cpu_per_gb(bytes: usize) -> f64 {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let addr = l.local_addr().unwrap();
    let before = own_cpu_seconds();
    let sender = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let chunk = vec![7u8; 256 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            s.write_all(&chunk[..n]).unwrap();
            left -= n;
        }
    });
    let (mut r, _) = l.accept().unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    while got < bytes {
        let n = r.read(&mut buf).unwrap();
        assert!(n > 0);
        got += n;
    }
    sender.join().unwrap();
    (own_cpu_seconds() - before) / (bytes as f64 / 1e9)
}

/// CPU seconds per GB of AES-128-GCM sealing 16 KiB records (ring, as rustls uses it).
fn aes_cpu_per_gb(bytes: usize) -> f64 {
    use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[3u8; 16]).unwrap());
    let mut record = vec![5u8; 16 * 1024];
    let before = own_cpu_seconds();
    let mut n = 0usize;
    let mut i = 0u64;
    while n < bytes {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&i.to_be_bytes());
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut record,
            )
            .unwrap();
        let _ = std::hint::black_box(tag);
        n += record.len();
        i += 1;
    }
    (own_cpu_seconds() - before) / (bytes as f64 / 1e9)
}

/// CPU seconds per GB of copying 16 KiB buffers.
fn memcpy_cpu_per_gb(bytes: usize) -> f64 {
    let from = vec![9u8; 16 * 1024];
    let mut to = vec![0u8; 16 * 1024];
    let before = own_cpu_seconds();
    let mut n = 0;
    while n < bytes {
        to.copy_from_slice(std::hint::black_box(&from));
        std::hint::black_box(&mut to);
        n += from.len();
    }
    (own_cpu_seconds() - before) / (bytes as f64 / 1e9)
}

/// bprof's CPU seconds per GB echoed through one connection (`bytes` up and `bytes` down).
fn bprof_cpu_per_gb(pid: u32, tunnel: SocketAddr, bytes: usize) -> f64 {
    let before = cpu_seconds(pid);
    echo_through(tunnel, bytes);
    (cpu_seconds(pid) - before) / (bytes as f64 / 1e9)
}

/// `bytes` written and read back over one connection.
fn echo_through(addr: SocketAddr, bytes: usize) {
    let s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![7u8; 64 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            w.write_all(&chunk[..n]).unwrap();
            left -= n;
        }
    });
    let mut r = s;
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < bytes {
        let n = r.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended early");
        got += n;
    }
    writer.join().unwrap();
}

fn minimum(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let fake = FakeBastion::start();
    let ready = median((0..7).map(|_| ready_ms(&fake)).collect());

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Bprof(setup(dir.path(), &fake, port).spawn().unwrap());
    let tunnel = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    while TcpStream::connect(tunnel).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(5));
    }
    let echo = fake.echo_addr();
    let rss_idle = peak_rss_mib(child.0.id());
    let plain_rt = median((0..3).map(|_| round_trip_us(echo)).collect());
    let tunnel_rt = median((0..3).map(|_| round_trip_us(tunnel)).collect());
    let rss_one = peak_rss_mib(child.0.id());
    let mut rows = Vec::new();
    for conns in [1, 3] {
        let plain = median((0..3).map(|_| throughput(echo, conns)).collect());
        let through = median((0..3).map(|_| throughput(tunnel, conns)).collect());
        rows.push((conns, plain, through));
    }
    let rss = peak_rss_mib(child.0.id());
    // what is bprof's alone: its heap and stacks (the rest of its RSS is the binary's pages,
    // shared through the page cache)
    let (anon, file) = (
        status_mib(child.0.id(), "RssAnon:"),
        status_mib(child.0.id(), "RssFile:"),
    );
    let cpu = cpu_seconds(child.0.id());
    // CPU per GB: bprof's, five runs of at least 512 MiB, against the floor of the same run
    let per_run = volume().max(512 * 1024 * 1024);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    // the floor's runs and bprof's alternate, so that both see the machine at the same speed
    let mut floor_parts: Vec<(f64, f64, f64)> = Vec::new();
    let mut bprofs: Vec<f64> = Vec::new();
    for _ in 0..5 {
        floor_parts.push((
            hop_cpu_per_gb(per_run),
            aes_cpu_per_gb(per_run),
            memcpy_cpu_per_gb(per_run),
        ));
        bprofs.push(bprof_cpu_per_gb(child.0.id(), tunnel, per_run));
    }
    let floors: Vec<f64> = floor_parts
        .iter()
        .map(|(h, a, m)| 2.0 * h + 2.0 * a + 2.0 * m)
        .collect();
    // each run's own ratio: bprof against the floor measured right before it
    let pairs: Vec<f64> = bprofs.iter().zip(&floors).map(|(b, f)| b / f).collect();
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    drop(child);

    println!("| measure | bprof native | target |");
    println!("| --- | --- | --- |");
    println!("| listening after the token arrived (median of 7) | {ready:.1} ms | ≤ 50 ms |");
    for (conns, plain, through) in rows {
        println!(
            "| throughput, {conns} connection{} ({} MiB echoed) | {through:.0} MB/s = {:.0}% of the plain TCP echo's {plain:.0} MB/s | ≥ 80% |",
            if conns == 1 { "" } else { "s" },
            volume() / (1024 * 1024),
            through / plain * 100.0
        );
    }
    println!(
        "| peak RSS of bprof: listening / after 1 connection / after 3 at once | {rss_idle:.1} / {rss_one:.1} / {rss:.1} MiB | < 15 MiB |"
    );
    println!(
        "| of it after 3: private memory (heap, stacks) / the binary's and libraries' pages | {anon:.1} / {file:.1} MiB | |"
    );
    println!(
        "| bprof's CPU time for all of it ({} MiB through the tunnel) | {cpu:.2} s | |",
        6 * volume() / (1024 * 1024)
    );
    println!(
        "| added latency per 1-byte round trip (mean of {TRIPS}) | {:.0} µs ({tunnel_rt:.0} µs against {plain_rt:.0} µs direct) | < 1 ms |",
        tunnel_rt - plain_rt
    );
    let part = |f: fn(&(f64, f64, f64)) -> f64| {
        let v: Vec<f64> = floor_parts.iter().map(f).collect();
        (minimum(&v), median(v))
    };
    let (hop, aes, copy) = (part(|p| p.0), part(|p| p.1), part(|p| p.2));
    let (fmin, fmed) = (minimum(&floors), median(floors.clone()));
    let (bmin, bmed) = (minimum(&bprofs), median(bprofs.clone()));
    println!();
    println!(
        "CPU per GB echoed (1 GB up and 1 GB down), 5 runs of {} MiB each, min / median; load average before: {}, after: {}",
        per_run / (1024 * 1024),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        load_after
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!();
    println!("| measure | CPU-s per GB, min / median |");
    println!("| --- | --- |");
    println!(
        "| one loopback TCP hop (sender + receiver) | {:.3} / {:.3} |",
        hop.0, hop.1
    );
    println!(
        "| AES-128-GCM, 16 KiB records (ring) | {:.3} / {:.3} |",
        aes.0, aes.1
    );
    println!("| memcpy, 16 KiB buffers | {:.3} / {:.3} |", copy.0, copy.1);
    println!("| floor = 2 x hop + 2 x AES + 2 x memcpy | {fmin:.3} / {fmed:.3} |");
    println!("| bprof (user + system) | {bmin:.3} / {bmed:.3} |");
    println!(
        "| ratio bprof / floor (target ≤ 1.15) | {:.2} (min / min) / {:.2} (median / median) |",
        bmin / fmin,
        bmed / fmed
    );
    println!(
        "| ratio of each run to the floor measured right before it: min / median / max | {:.2} / {:.2} / {:.2} |",
        minimum(&pairs),
        median(pairs.clone()),
        pairs.iter().copied().fold(0.0, f64::max)
    );
}
